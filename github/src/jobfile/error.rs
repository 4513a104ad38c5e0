//! Errors in one job file. Each carries the file and the 1-based line to
//! fix, so `bm jobfile check`, `bm local run` and the check run on GitHub
//! can all say `path:line: what is wrong`.

use thiserror::Error;

/// One mistake in one job file, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{path}:{line}: {kind}")]
pub struct JobFileError {
    /// The job file as the caller named it (e.g. `.github/buildomat/jobs/build.sh`).
    pub path: String,
    /// 1-based line in the job file (not in the extracted TOML).
    pub line: usize,
    /// What is wrong; callers match on it to tell mistakes apart.
    pub kind: JobFileErrorKind,
}

/// What can be wrong with a job file.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum JobFileErrorKind {
    /// The first line is not `#!…`; buildomat refuses such files too.
    #[error("a job file must begin with an interpreter line such as `#!/bin/bash`")]
    NoInterpreter,
    /// No `#:` lines (or only blank ones) follow the interpreter line.
    #[error(
        "no frontmatter: the interpreter line must be followed by `#:` lines \
         giving at least `name` and `variety`, e.g. `#: name = \"build\"` and `#: variety = \"basic\"`"
    )]
    NoFrontmatter,
    /// The TOML is malformed, a key is unknown or missing, or a value has
    /// the wrong type; the message is the TOML parser's.
    #[error("{0}")]
    Toml(String),
    /// `variety` is not one bm implements.
    #[error("variety {0:?} is not supported; the only variety is \"basic\"")]
    UnsupportedVariety(String),
    /// `name = ""`.
    #[error("`name` must not be empty")]
    EmptyName,
    /// An `output_rules` entry does not parse; the text names the rule.
    #[error("{0}")]
    OutputRule(String),
    /// A dependency name cannot be used as the folder `/input/NAME`.
    #[error("dependency name {name:?} {reason}")]
    DependencyName {
        /// The key under `[dependencies]`.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A `publish` entry's `from_output` is not one absolute file path.
    #[error("publish from_output {value:?} {reason}")]
    PublishFromOutput {
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A `publish` entry's `series` or `name` is not a short URL-safe word.
    #[error("publish {field} {value:?} {reason}")]
    PublishName {
        /// `series` or `name`.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An `access_repos` entry is not `owner/repository`.
    #[error("access_repos entry {0:?} must be a GitHub repository as `owner/repository`")]
    AccessRepo(String),
    /// `rust_toolchain = ""`.
    #[error("rust_toolchain must name a toolchain (e.g. \"stable\") or be true or false")]
    EmptyToolchain,
}

impl JobFileError {
    /// Builds an error at one line of `path`.
    pub(crate) fn new(path: &str, line: usize, kind: JobFileErrorKind) -> Self {
        JobFileError { path: path.to_string(), line, kind }
    }
}
