//! All the jobs of one commit (`.github/buildomat/jobs/*.sh`), checked
//! together: what the node submits for a push, what `bm local run` runs,
//! and what `bm jobfile check` vouches for.

mod builder;
mod error;
mod graph;
mod load;
mod publish_check;
mod select;

use serde::Serialize;

pub use builder::JobSetBuilder;
pub use error::{JobSetError, JobSetErrorKind, JobSetErrors};
pub use load::{load_jobs_dir, load_repo, JOBS_DIR};
pub use select::UnknownJobsError;

use crate::jobfile::JobFile;
use crate::warning::Warning;

/// The most enabled jobs one commit may hold. buildomat's limit is
/// nominally 32, but its check lets a 33rd job through; bm accepts the same
/// 33 so that no repository that works there breaks here.
pub const MAX_JOBS: usize = 33;

/// The enabled jobs of a commit, valid as a whole: unique names, every
/// dependency resolved, no cycles.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JobSet {
    /// Every job after the jobs it depends on; jobs ready together keep the
    /// order their files were added in (file-name order from a folder).
    jobs: Vec<JobFile>,
    /// Jobs left out with `enable = false`.
    disabled: Vec<DisabledJob>,
}

/// A job file left out of the set by `enable = false`, kept so tools can
/// say it is there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DisabledJob {
    /// The job file.
    pub path: String,
    /// Its `name`.
    pub name: String,
}

/// A job set that loaded, with the advice found on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedJobSet {
    /// The jobs.
    pub jobs: JobSet,
    /// Things buildomat accepts but that look like mistakes.
    pub warnings: Vec<Warning>,
}

impl JobSet {
    /// The enabled jobs, each after the jobs it depends on: submitting them
    /// in this order means every dependency already exists.
    pub fn jobs(&self) -> &[JobFile] {
        &self.jobs
    }

    /// The disabled job files, by path.
    pub fn disabled(&self) -> &[DisabledJob] {
        &self.disabled
    }

    /// The enabled job called `name`.
    pub fn get(&self, name: &str) -> Option<&JobFile> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// The job names in topological order.
    pub fn names(&self) -> Vec<&str> {
        self.jobs.iter().map(|j| j.name.as_str()).collect()
    }

    /// How many jobs are enabled.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no job is enabled (a commit without jobs is valid).
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The enabled jobs, by value, in topological order.
    pub fn into_jobs(self) -> Vec<JobFile> {
        self.jobs
    }
}

#[cfg(test)]
mod tests;
