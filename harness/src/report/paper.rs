//! `paper/paper.md` is prose written by hand around generated blocks: every
//! `<!-- gapbench:table NAME -->` … `<!-- /gapbench:table -->` pair is refilled from
//! `paper/tables/NAME.md` on each `gapbench report`, so no result is ever typed into
//! the paper. Then the paper is rendered to self-contained-enough HTML (figures are
//! linked relative to `paper/`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const OPEN: &str = "<!-- gapbench:table ";
const CLOSE: &str = "<!-- /gapbench:table -->";

/// Refill every generated block of `paper_md` from `<out>/tables/`. A block naming a
/// table no run produced says so, with the command that would produce it.
pub fn refresh(paper_md: &Path, out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(paper_md).map_err(Error::io(paper_md))?;
    let new =
        refill(&text, |name| std::fs::read_to_string(out.join("tables").join(format!("{name}.md"))).ok())
            .map_err(|e| Error::input(paper_md.display().to_string(), e))?;
    if new != text {
        crate::record::atomic::write_atomic(paper_md, new.as_bytes())?;
    }
    Ok(())
}

fn refill(text: &str, table: impl Fn(&str) -> Option<String>) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let after = &rest[i + OPEN.len()..];
        let end_tag = after.find("-->").ok_or("an unterminated `<!-- gapbench:table` marker")?;
        let name = after[..end_tag].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
            return Err(format!("table marker `{name}`: names are letters, digits, `-` and `_`"));
        }
        let body_start = &after[end_tag + 3..];
        let close = body_start.find(CLOSE).ok_or(format!("table `{name}` has no `{CLOSE}`"))?;
        let content = table(name).unwrap_or_else(|| {
            format!(
                "_No run has produced `tables/{name}.md` yet: run the experiment, then `gapbench report`._\n"
            )
        });
        out.push_str(&format!("{OPEN}{name} -->\n\n{}\n{CLOSE}", content.trim_end()));
        rest = &body_start[close + CLOSE.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Render Markdown (CommonMark with tables) to an HTML page.
pub fn render_html(paper_md: &Path, html: &Path) -> Result<PathBuf> {
    use pulldown_cmark::{html, Options, Parser};
    let text = std::fs::read_to_string(paper_md).map_err(Error::io(paper_md))?;
    let mut body = String::new();
    html::push_html(&mut body, Parser::new_ext(&text, Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES));
    let title = text.lines().find_map(|l| l.strip_prefix("# ")).unwrap_or("gapbench");
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>\n\
         body {{ font-family: 'DejaVu Sans', sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; line-height: 1.45; }}\n\
         table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }}\n\
         th, td {{ border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: right; }}\n\
         th:first-child, td:first-child {{ text-align: left; }}\n\
         img {{ max-width: 100%; }}\n code {{ font-size: 0.9em; }}\n</style></head>\n<body>\n{body}</body></html>\n"
    );
    crate::record::atomic::write_atomic(html, page.as_bytes())?;
    Ok(html.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_refilled_and_prose_kept() {
        let text = "# T\nprose\n<!-- gapbench:table a -->\nold\n<!-- /gapbench:table -->\nmore\n\
                    <!-- gapbench:table b --><!-- /gapbench:table -->\n";
        let out = refill(text, |n| (n == "a").then(|| "| x |\n| --- |\n| 1 |\n".to_string())).unwrap();
        assert!(out.contains("prose") && out.contains("more"));
        assert!(out.contains("| 1 |") && !out.contains("old"));
        assert!(out.contains("No run has produced `tables/b.md`"));
        // Idempotent.
        let again = refill(&out, |n| (n == "a").then(|| "| x |\n| --- |\n| 1 |\n".to_string())).unwrap();
        assert_eq!(out, again);
        assert!(refill("<!-- gapbench:table a -->", |_| None).is_err());
        assert!(refill("<!-- gapbench:table a/b --><!-- /gapbench:table -->", |_| None).is_err());
    }
}
