//! Picking some jobs out of a set with everything they need, for
//! `bm local run JOB…`: a job cannot run without the jobs it depends on.

use std::collections::BTreeSet;

use thiserror::Error;

use super::JobSet;
use crate::jobfile::JobFile;

/// Some requested job names are not in the set.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "no job named {}; the jobs are: {}",
    quoted(unknown),
    if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
)]
pub struct UnknownJobsError {
    /// The names asked for that no enabled job has.
    pub unknown: Vec<String>,
    /// The names there are, in topological order.
    pub known: Vec<String>,
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

impl JobSet {
    /// The jobs called `names` plus every job they depend on, directly or
    /// not, in topological order.
    pub fn select<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<&JobFile>, UnknownJobsError> {
        let unknown: Vec<String> =
            names.iter().map(|n| n.as_ref()).filter(|n| self.get(n).is_none()).map(str::to_string).collect();
        if !unknown.is_empty() {
            return Err(UnknownJobsError { unknown, known: self.names().into_iter().map(str::to_string).collect() });
        }
        let mut wanted: BTreeSet<&str> = BTreeSet::new();
        let mut todo: Vec<&str> = names.iter().map(|n| n.as_ref()).collect();
        while let Some(name) = todo.pop() {
            if wanted.insert(name) {
                if let Some(job) = self.get(name) {
                    todo.extend(job.dependencies.values().map(|d| d.job.as_str()));
                }
            }
        }
        Ok(self.jobs.iter().filter(|j| wanted.contains(j.name.as_str())).collect())
    }
}
