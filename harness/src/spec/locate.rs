//! Turning TOML byte spans into `file:line:col` errors that name the field.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::Error;

/// A spec's text and path, for parsing and for locating errors.
pub struct SpecSource<'a> {
    pub path: PathBuf,
    pub text: &'a str,
}

impl<'a> SpecSource<'a> {
    pub fn new(path: &Path, text: &'a str) -> Self {
        SpecSource { path: path.to_path_buf(), text }
    }

    /// Parse strictly. toml's messages name the field (`unknown field `seeed``, `missing
    /// field `kind``, `invalid type ... for key `seed``); we add file:line:col.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        toml::from_str(self.text).map_err(|e| {
            let message = e.message().trim().to_string();
            let (line, col) = e.span().map(|s| self.line_col(s.start)).unwrap_or((1, 1));
            let message = match self.key_at(e.span()) {
                // "unknown/missing field `x`" already names its field (and the span of a
                // missing field points at its table, not at a key).
                Some(key) if !message.contains(" field `") => format!("field `{key}`: {message}"),
                _ => message,
            };
            Error::Spec { file: self.path.clone(), line, col, message }
        })
    }

    /// An error at a span of the spec (from a `toml::Spanned` value).
    pub fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> Error {
        let (line, col) = self.line_col(span.start);
        Error::Spec { file: self.path.clone(), line, col, message: message.into() }
    }

    /// The byte offset of the first `[name…` or `[[name…` table header (a line that
    /// starts with it, so comments do not count); 0 when there is none.
    pub fn table_offset(&self, name: &str) -> usize {
        let mut offset = 0;
        for line in self.text.split_inclusive('\n') {
            let header = line.trim_start().trim_start_matches('[');
            if line.trim_start().starts_with('[') && header.starts_with(name) {
                return offset + (line.len() - line.trim_start().len());
            }
            offset += line.len();
        }
        0
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        (line, before[line_start..].chars().count() + 1)
    }

    /// The `key = ` on the line of a span pointing at a value, for type errors whose
    /// message does not say which field they are about.
    fn key_at(&self, span: Option<Range<usize>>) -> Option<String> {
        let span = span?;
        let start = self.text[..span.start.min(self.text.len())].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line = &self.text[start..];
        let line = line.lines().next()?;
        let (key, _) = line.split_once('=')?;
        let key = key.trim().trim_matches('"');
        (!key.is_empty() && !key.starts_with('[') && !key.starts_with('#')).then(|| key.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_offset_skips_comments() {
        let text = "name = \"x\"\n# see [reproduce]\n  [[reproduce.across_machines]]\npattern = \"*\"\n";
        let src = SpecSource::new(Path::new("t.toml"), text);
        assert_eq!(src.line_col(src.table_offset("reproduce")), (3, 3));
        assert_eq!(src.table_offset("cluster"), 0);
    }

    #[test]
    fn line_col_counts_from_one() {
        let s = SpecSource::new(Path::new("x.toml"), "a = 1\nbb = 2\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(6), (2, 1));
        assert_eq!(s.line_col(11), (2, 6));
    }
}
