//! One error type for the library, split by who has to act: the user (bad input, exit 2)
//! or the run itself (exit 1). Every variant names the file or field it is about.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A spec file that does not parse or does not validate, located to line:column.
    #[error("{file}:{line}:{col}: {message}")]
    Spec { file: PathBuf, line: usize, col: usize, message: String },

    /// Any other user input that is wrong: `what` names the file and field.
    #[error("{what}: {message}")]
    Input { what: String, message: String },

    /// A model file that is truncated, corrupt, unsupported or inconsistent.
    #[error("model file {}: {message}", file.display())]
    Model { file: PathBuf, message: String },

    /// A file whose sha256 differs from the pinned one.
    #[error("checksum mismatch for {}: expected sha256 {expected}, got {actual}", file.display())]
    Checksum { file: PathBuf, expected: String, actual: String },

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, #[source] source: std::io::Error },

    /// A tensor operation failed while doing `context`.
    #[error("{context}: {source}")]
    Candle { context: String, #[source] source: candle_core::Error },

    /// Every source of a model was tried and none delivered verified files.
    #[error("could not fetch model `{model}`:\n  {}", attempts.join("\n  "))]
    Fetch { model: String, attempts: Vec<String> },

    #[error("{0}")]
    Run(String),
}

impl Error {
    /// 2 when the user must fix an input, 1 when the run itself failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Spec { .. } | Error::Input { .. } | Error::Model { .. } | Error::Checksum { .. } => 2,
            _ => 1,
        }
    }

    pub fn input(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Input { what: what.into(), message: message.into() }
    }

    pub fn model(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model { file: file.into(), message: message.into() }
    }

    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub fn run(message: impl Into<String>) -> Self {
        Error::Run(message.into())
    }
}

/// Attach context to candle errors: `tensor.matmul(&w).ctx("attention scores")?`.
pub trait CandleContext<T> {
    fn ctx(self, context: impl Into<String>) -> Result<T>;
}

impl<T> CandleContext<T> for std::result::Result<T, candle_core::Error> {
    fn ctx(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Candle { context: context.into(), source })
    }
}
