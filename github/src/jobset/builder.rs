//! Assembling a job set from the entries of a jobs folder, wherever they
//! come from (a checkout on disk, or the GitHub contents API on the node),
//! and checking what only shows across files.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{JobSetError, JobSetErrorKind as K, JobSetErrors};
use super::graph::Graph;
use super::publish_check::publish_warnings;
use super::{DisabledJob, JobSet, LoadedJobSet, MAX_JOBS};
use crate::jobfile::{self, parse_job_file, JobFile};
use crate::warning::Warning;

/// Collects the entries of one jobs folder, then checks them as a set.
/// Add entries in a stable order (e.g. sorted by name) so messages are too.
#[derive(Debug, Default)]
pub struct JobSetBuilder {
    partial: bool,
    enabled: Vec<JobFile>,
    disabled: Vec<DisabledJob>,
    /// Names of files that failed to parse, so jobs depending on them are
    /// not also reported.
    broken: BTreeSet<String>,
    errors: Vec<JobSetError>,
    warnings: Vec<Warning>,
}

impl JobSetBuilder {
    /// A builder for a whole jobs folder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder for a few job files checked on their own (`bm jobfile
    /// check a.sh b.sh`): a dependency on a job not among them is not
    /// an error, since that job may well exist in the folder.
    pub fn partial() -> Self {
        JobSetBuilder { partial: true, ..Self::default() }
    }

    /// Adds one regular file of the jobs folder. Any name but `*.sh` is
    /// refused, as buildomat does.
    pub fn add_file(&mut self, path: &str, text: &str) {
        if !path.ends_with(".sh") {
            return self.add_unexpected(path, false);
        }
        match parse_job_file(path, text) {
            Ok(parsed) => {
                self.warnings.extend(parsed.warnings);
                if parsed.job.enable {
                    self.enabled.push(parsed.job);
                } else {
                    self.disabled.push(DisabledJob { path: path.to_string(), name: parsed.job.name });
                }
            }
            Err(errors) => match jobfile::skipped_by_buildomat(text) {
                // buildomat drops a disabled job before checking the rest.
                Some(name) => {
                    self.warnings.extend(errors.into_iter().map(|e| Warning {
                        message: format!(
                            "{} (ignored because the job is disabled; it is an error once enabled)",
                            e.kind
                        ),
                        path: e.path,
                        line: Some(e.line),
                    }));
                    self.disabled.push(DisabledJob { path: path.to_string(), name });
                }
                None => {
                    self.broken.extend(jobfile::name_of(text));
                    self.errors.extend(errors.into_iter().map(JobSetError::from));
                }
            },
        }
    }

    /// Adds an entry that is not a regular file (a folder, a device), or a
    /// file that must be refused without reading it.
    pub fn add_unexpected(&mut self, path: &str, folder: bool) {
        self.errors.push(JobSetError::at(path, None, K::UnexpectedEntry { folder }));
    }

    /// Adds an entry that could not be read (I/O error, not UTF-8).
    pub fn add_unreadable(&mut self, path: &str, why: impl Into<String>) {
        self.errors.push(JobSetError::at(path, None, K::Read(why.into())));
    }

    /// Checks the set: unique names, a bounded count, dependencies that
    /// name enabled jobs, no cycles. Returns the jobs in topological order,
    /// or every error found.
    pub fn finish(mut self) -> Result<LoadedJobSet, JobSetErrors> {
        self.check_names_and_count();
        let deps = self.resolve_dependencies();
        let graph = Graph::new(deps);
        for cycle in graph.cycles() {
            let (first, second) = (&self.enabled[cycle[0]], &self.enabled[cycle[1]]);
            let line = first.dependencies.values().find(|d| d.job == second.name).map(|d| d.line);
            let names = cycle.iter().map(|&i| self.enabled[i].name.clone()).collect();
            self.errors.push(JobSetError::at(&first.path, line, K::Cycle(names)));
        }
        self.warnings.extend(publish_warnings(&self.enabled));
        if !self.errors.is_empty() {
            self.errors.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
            return Err(JobSetErrors { errors: self.errors, warnings: self.warnings });
        }
        let Some(order) = graph.topological_order() else {
            unreachable!("a graph without cycles has a topological order");
        };
        let mut slots: Vec<Option<JobFile>> = self.enabled.into_iter().map(Some).collect();
        let jobs = order.into_iter().filter_map(|i| slots[i].take()).collect();
        Ok(LoadedJobSet { jobs: JobSet { jobs, disabled: self.disabled }, warnings: self.warnings })
    }

    fn check_names_and_count(&mut self) {
        let mut first: BTreeMap<&str, &JobFile> = BTreeMap::new();
        for job in &self.enabled {
            if let Some(other) = first.get(job.name.as_str()) {
                self.errors.push(JobSetError::at(
                    &job.path,
                    Some(job.name_line),
                    K::DuplicateName { name: job.name.clone(), other: format!("{}:{}", other.path, other.name_line) },
                ));
            } else {
                first.insert(&job.name, job);
            }
        }
        if let Some(extra) = self.enabled.get(MAX_JOBS) {
            self.errors.push(JobSetError::at(&extra.path, None, K::TooManyJobs { max: MAX_JOBS }));
        }
    }

    /// For each enabled job, the indices of the jobs it waits for; reports
    /// dependencies that name no enabled job.
    fn resolve_dependencies(&mut self) -> Vec<Vec<usize>> {
        // With duplicate names (already an error), the first job wins.
        let index: BTreeMap<&str, usize> =
            self.enabled.iter().enumerate().rev().map(|(i, j)| (j.name.as_str(), i)).collect();
        let disabled: BTreeMap<&str, &str> = self.disabled.iter().map(|d| (d.name.as_str(), d.path.as_str())).collect();
        let mut all = Vec::with_capacity(self.enabled.len());
        for job in &self.enabled {
            let mut deps = Vec::new();
            for (dependency, dep) in &job.dependencies {
                if let Some(&i) = index.get(dep.job.as_str()) {
                    deps.push(i);
                    continue;
                }
                let kind = if let Some(path) = disabled.get(dep.job.as_str()) {
                    K::DisabledDependency {
                        dependency: dependency.clone(),
                        job: dep.job.clone(),
                        disabled_path: path.to_string(),
                    }
                } else if self.partial || self.broken.contains(&dep.job) {
                    continue;
                } else {
                    K::UnknownDependency { dependency: dependency.clone(), job: dep.job.clone() }
                };
                self.errors.push(JobSetError::at(&job.path, Some(dep.line), kind));
            }
            all.push(deps);
        }
        all
    }
}
