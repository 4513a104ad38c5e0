//! One job file (`.github/buildomat/jobs/*.sh`): a bash program whose
//! `#:` comment block is TOML configuration. Parsed here exactly as
//! buildomat reads it, then checked strictly, so a mistake is reported at
//! its line before any worker is started.

mod error;
mod lenient;
mod names;
mod parse;
mod raw;
mod toolchain;

use std::collections::BTreeMap;

use bm_api::output_rule::OutputRule;
use serde::Serialize;

pub use error::{JobFileError, JobFileErrorKind};
pub(crate) use lenient::{name_of, skipped_by_buildomat};
pub use names::MAX_PUBLISH_NAME;
pub use parse::parse_job_file;
pub use toolchain::RustToolchain;

use crate::warning::Warning;

/// How a job executes. buildomat defines only `basic`; the field exists so
/// the format can grow, and any other value is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variety {
    /// One bash program run in an ephemeral environment of its target.
    Basic,
}

/// One validated job file: what bm needs to submit it as a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobFile {
    /// The file as the caller named it; every later error points here.
    pub path: String,
    /// The check-run name, unique within a commit; dependencies refer to it.
    pub name: String,
    /// The line of `name`, for errors about the name (e.g. duplicates).
    pub name_line: usize,
    /// Always [`Variety::Basic`] today.
    pub variety: Variety,
    /// `false` keeps the file in the repository without running it.
    pub enable: bool,
    /// The target environment; `None` lets the caller pick its default.
    pub target: Option<String>,
    /// Output rules as written (each already checked with
    /// [`OutputRule::parse`]), ready for `JobSubmit::output_rules`.
    pub output_rules: Vec<String>,
    /// Dependency name (the folder `/input/NAME`) to the job it waits for.
    pub dependencies: BTreeMap<String, Dependency>,
    /// Outputs to publish at a predictable URL.
    pub publish: Vec<Publish>,
    /// The Rust toolchain to install; `None` when absent or `false`.
    pub rust_toolchain: Option<RustToolchain>,
    /// `true`: do not clone the repository; work in `/work`.
    pub skip_clone: bool,
    /// Other private repositories (`owner/repository`) the job may read.
    pub access_repos: Vec<String>,
    /// The whole file, verbatim: bash ignores the `#:` lines.
    pub script: String,
}

/// One `[dependencies.NAME]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dependency {
    /// The `name` of the job waited for.
    pub job: String,
    /// The line of `job = …`, for errors about the job named.
    pub line: usize,
}

/// One `[[publish]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Publish {
    /// The absolute path of the output file to publish.
    pub from_output: String,
    /// The group of files in the URL.
    pub series: String,
    /// The file's public name within the series.
    pub name: String,
    /// The line of `from_output`, for warnings about it.
    pub line: usize,
}

/// A job file that parsed, with the advice found on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedJobFile {
    /// The job.
    pub job: JobFile,
    /// Things buildomat accepts but that look like mistakes.
    pub warnings: Vec<Warning>,
}

impl JobFile {
    /// Parses one job file; on failure, the first error. Use
    /// [`parse_job_file`] to get every error and the warnings.
    pub fn parse(path: &str, text: &str) -> Result<JobFile, JobFileError> {
        parse_job_file(path, text).map(|p| p.job).map_err(|mut e| e.swap_remove(0))
    }

    /// The output rules, parsed; they were checked when the file was.
    pub fn parsed_output_rules(&self) -> Vec<OutputRule> {
        self.output_rules.iter().filter_map(|r| OutputRule::parse(r).ok()).collect()
    }
}

#[cfg(test)]
mod tests;
