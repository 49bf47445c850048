//! Reading histories written by other tools, and reading history files in any supported format.

pub mod edn;
pub mod jepsen_edn;
pub mod jepsen_log;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::Error;
use crate::history::{read_text, History};

/// A history file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Conclave's JSON lines (docs/HISTORY.md).
    #[default]
    Json,
    /// Jepsen's `jepsen.util` log lines for a CAS register.
    JepsenLog,
    /// Jepsen/Knossos EDN maps, one per line, for key-value operations.
    JepsenEdn,
}

impl Format {
    /// Every format, in the order the help text lists them.
    pub const ALL: &'static [Format] = &[Format::Json, Format::JepsenLog, Format::JepsenEdn];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::JepsenLog => "jepsen-log",
            Format::JepsenEdn => "jepsen-edn",
        }
    }

    /// What the format holds, in one line, for help texts.
    pub fn description(self) -> &'static str {
        match self {
            Format::Json => "Conclave's JSON lines (docs/HISTORY.md)",
            Format::JepsenLog => "Jepsen's `jepsen.util` log lines for one CAS register",
            Format::JepsenEdn => "Jepsen/Knossos EDN maps, one per line, for key-value operations",
        }
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Format::ALL.iter().copied().find(|format| format.as_str() == name).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
            format!("unknown format {name:?} (expected one of {})", names.join(", "))
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a history from text in `format`.
pub fn parse_history(text: &str, format: Format) -> Result<History, Error> {
    match format {
        Format::Json => History::parse_jsonl(text),
        Format::JepsenLog => jepsen_log::parse_jepsen_log(text),
        Format::JepsenEdn => jepsen_edn::parse_jepsen_edn(text),
    }
}

/// Reads and parses a history file: the crate's only file-system access.
pub fn read_history(path: &Path, format: Format) -> Result<History, Error> {
    parse_history(&read_text(path)?, format)
}
