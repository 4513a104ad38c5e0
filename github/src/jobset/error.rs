//! Errors in a commit's set of jobs: the per-file errors plus what can only
//! be seen across files (stray files, shared names, dangling or circular
//! dependencies). A set is refused with all of them at once, so an author
//! fixes everything in one round.

use std::fmt;

use thiserror::Error;

use crate::jobfile::{JobFileError, JobFileErrorKind};
use crate::warning::Warning;

/// One reason a job set is refused, with where to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct JobSetError {
    /// The job file (or stray entry) to fix.
    pub path: String,
    /// The 1-based line in it, when one line is to blame.
    pub line: Option<usize>,
    /// What is wrong; callers match on it to tell mistakes apart.
    pub kind: JobSetErrorKind,
}

/// What can be wrong with a job set.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum JobSetErrorKind {
    /// A mistake within one job file.
    #[error("{0}")]
    JobFile(JobFileErrorKind),
    /// The jobs folder holds something other than `*.sh` files; buildomat
    /// refuses such a folder as well.
    #[error("unexpected {} in the jobs folder: it may hold only `*.sh` job files", if *.folder { "folder" } else { "file" })]
    UnexpectedEntry {
        /// A subfolder rather than a file.
        folder: bool,
    },
    /// The file could not be read, or is not UTF-8 text.
    #[error("cannot read: {0}")]
    Read(String),
    /// Two enabled jobs share a name (it names the check run and is what
    /// dependencies refer to).
    #[error("job name {name:?} is also used by {other}; job names must be unique within a commit")]
    DuplicateName {
        /// The shared name.
        name: String,
        /// `path:line` of the other job.
        other: String,
    },
    /// A dependency names a job that no job file in the commit defines.
    #[error("dependency {dependency:?} waits for job {job:?}, but no job in this commit has that name")]
    UnknownDependency {
        /// The key under `[dependencies]`.
        dependency: String,
        /// The job name it waits for.
        job: String,
    },
    /// A dependency names a disabled job, which will never run.
    #[error(
        "dependency {dependency:?} waits for job {job:?}, which is disabled (`enable = false` in {disabled_path})"
    )]
    DisabledDependency {
        /// The key under `[dependencies]`.
        dependency: String,
        /// The job name it waits for.
        job: String,
        /// The disabled job's file.
        disabled_path: String,
    },
    /// Jobs wait for each other in a circle; the names go round it and end
    /// where they began (`a -> b -> a`).
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// More enabled jobs than one commit may hold.
    #[error("too many jobs: at most {max} enabled jobs are allowed in one commit")]
    TooManyJobs {
        /// The limit, [`super::MAX_JOBS`].
        max: usize,
    },
}

impl fmt::Display for JobSetError {
    /// `path:line: message`, or `path: message` when no line is to blame.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path, line, self.kind),
            None => write!(f, "{}: {}", self.path, self.kind),
        }
    }
}

impl From<JobFileError> for JobSetError {
    fn from(e: JobFileError) -> Self {
        JobSetError { path: e.path, line: Some(e.line), kind: JobSetErrorKind::JobFile(e.kind) }
    }
}

impl JobSetError {
    pub(crate) fn at(path: &str, line: Option<usize>, kind: JobSetErrorKind) -> Self {
        JobSetError { path: path.to_string(), line, kind }
    }
}

/// Why a job set was refused: every error found (never empty), plus the
/// warnings, which are still worth showing.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct JobSetErrors {
    /// The errors, ordered by file then line.
    pub errors: Vec<JobSetError>,
    /// Advice found on the way.
    pub warnings: Vec<Warning>,
}

impl fmt::Display for JobSetErrors {
    /// One error per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
