//! The ways a history can be unusable. Every variant that comes from the input names its line, so
//! a user can open the file at the right place; none of them is a verdict about the system.

use std::path::PathBuf;

/// Why a history could not be checked. These are operating errors (bad input), never a verdict:
/// a checker that guessed past a bad line could report a violation that is not there.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A line is not well-formed in its format (JSON, EDN, a Jepsen log line) or a field has the
    /// wrong type.
    #[error("line {line}: {reason}")]
    Syntax {
        /// The 1-based line number in the input.
        line: usize,
        /// What is wrong, in words.
        reason: String,
    },
    /// Invocations and completions do not pair up: a completion with no open invocation, a
    /// second invocation while one is open, or a completion naming another operation.
    #[error("line {line}: {reason}")]
    Pairing {
        /// The 1-based line number of the offending event.
        line: usize,
        /// What is wrong, in words.
        reason: String,
    },
    /// The model cannot interpret an operation: an unknown `f`, or arguments of the wrong shape.
    #[error("line {line}: {f}: {reason}")]
    Operation {
        /// The 1-based line number of the operation's invocation.
        line: usize,
        /// The operation's name.
        f: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// The model's parameters are missing or contradict the history (for example a bank with no
    /// initial balances).
    #[error("model: {0}")]
    Model(String),
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl Error {
    /// The input line the error is about, when there is one; the CLI prints it and tests assert
    /// it.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Syntax { line, .. }
            | Error::Pairing { line, .. }
            | Error::Operation { line, .. } => Some(*line),
            Error::Model(_) | Error::Io { .. } => None,
        }
    }
}
