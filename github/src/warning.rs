//! Things in job files that buildomat accepts but that are probably not
//! what the author meant. They never stop a job set from loading, so that
//! every job file buildomat runs also runs on bm; `bm jobfile check` shows
//! them so authors can fix them anyway.

use std::fmt;

use serde::Serialize;

/// One piece of advice about a job file, located like an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The job file (or jobs folder entry) it is about.
    pub path: String,
    /// The 1-based line in that file, when one line is to blame.
    pub line: Option<usize>,
    /// What looks wrong and what to do about it.
    pub message: String,
}

impl Warning {
    /// A warning about one line of a file.
    pub(crate) fn at(path: &str, line: usize, message: impl Into<String>) -> Self {
        Warning { path: path.to_string(), line: Some(line), message: message.into() }
    }
}

impl fmt::Display for Warning {
    /// `path:line: warning: message`, the shape compilers use, so editors
    /// can jump to it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: warning: {}", self.path, line, self.message),
            None => write!(f, "{}: warning: {}", self.path, self.message),
        }
    }
}
