//! What a run did and found, in figures a person can read at a glance, with the checker's report attached.

use std::collections::BTreeMap;
use std::fmt::{self, Display, Formatter};
use std::path::PathBuf;

use bm_api::jobs::{Job, JobState};

use super::facts::FactCounts;
use super::faults::AgentHit;
use super::schedule::Planned;
use crate::check::{Report, Status};
use crate::history::{History, OpKind, Outcome};

/// How many operations of one kind ended each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Succeeded.
    pub ok: usize,
    /// Refused.
    pub fail: usize,
    /// Outcome unknown.
    pub unknown: usize,
}

/// The result of a run, returned to the binary and to tests.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The faults planned.
    pub schedule: Vec<Planned>,
    /// Operations by kind (`submit_job`, `read_job`, …) and outcome.
    pub ops: BTreeMap<String, Tally>,
    /// Faults actually injected, by kind name.
    pub faults: BTreeMap<String, usize>,
    /// The jobs whose agent was killed, and how they ended.
    pub agent_hits: Vec<HitJob>,
    /// The other jobs that did not complete, counted by how they ended (state and cause), so that a run shows
    /// what else cut jobs short.
    pub other_ends: BTreeMap<String, usize>,
    /// What the derived facts covered.
    pub facts: FactCounts,
    /// Jobs still unfinished when the run stopped waiting.
    pub unfinished: Vec<String>,
    /// Workers not destroyed when the run stopped waiting.
    pub undestroyed: Vec<String>,
    /// The checker's verdicts.
    pub report: Report,
    /// The run folder (history, node logs) if it was kept.
    pub kept: Option<PathBuf>,
}

/// A job whose agent a fault killed, as it stood at the end of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HitJob {
    /// The job.
    pub job: String,
    /// The worker whose agent was killed.
    pub worker: String,
    /// Its state at the end (`failed` is expected; `completed` if it had finished already).
    pub state: String,
    /// Why it failed, as the cluster says.
    pub failure: Option<String>,
}

/// How the jobs that did not complete and were not hit by an agent fault ended: (state and cause, count).
pub fn other_ends(hits: &[AgentHit], jobs: &[Job]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for j in jobs.iter().filter(|j| j.state != JobState::Completed && !hits.iter().any(|h| h.job == j.id)) {
        *out.entry(ending(j.state.as_str(), j.failure.as_deref())).or_default() += 1;
    }
    out
}

/// A job's end for people: its state, and the cause when there is one.
fn ending(state: &str, failure: Option<&str>) -> String {
    match failure {
        Some(why) => format!("{state} ({why})"),
        None => state.to_string(),
    }
}

/// How each job an agent fault hit ended, from the final job list.
pub fn hits(hits: &[AgentHit], jobs: &[Job]) -> Vec<HitJob> {
    hits.iter()
        .map(|h| {
            let job = jobs.iter().find(|j| j.id == h.job);
            HitJob {
                job: h.job.clone(),
                worker: h.worker.clone(),
                state: job.map_or_else(|| "missing".into(), |j| j.state.as_str().to_string()),
                failure: job.and_then(|j| j.failure.clone()),
            }
        })
        .collect()
}

impl RunSummary {
    /// Whether no invariant was violated (undecided ones are shown but do not fail a run).
    pub fn ok(&self) -> bool {
        self.report.violated().is_empty()
    }

    /// How many submits were acknowledged.
    pub fn acked_submits(&self) -> usize {
        self.ops.get("submit_job").map_or(0, |t| t.ok)
    }

    /// How many faults were injected in all.
    pub fn faults_injected(&self) -> usize {
        self.faults.values().sum()
    }
}

/// Operations of a history by kind and outcome; facts and faults are left out.
pub fn tally(h: &History) -> BTreeMap<String, Tally> {
    let mut out: BTreeMap<String, Tally> = BTreeMap::new();
    for op in &h.ops {
        let name = match op.kind {
            OpKind::SubmitJob { .. } => "submit_job",
            OpKind::ReadJob { .. } => "read_job",
            OpKind::ListJobs { .. } => "list_jobs",
            OpKind::CancelJob { .. } => "cancel_job",
            OpKind::ReadLog { .. } => "read_log",
            OpKind::ReadOutput { .. } => "read_output",
            _ => continue,
        };
        let t = out.entry(name.into()).or_default();
        match op.outcome {
            Outcome::Ok(_) => t.ok += 1,
            Outcome::Fail(_) => t.fail += 1,
            Outcome::Unknown(_) => t.unknown += 1,
        }
    }
    out
}

impl Display for RunSummary {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "operations:")?;
        for (k, t) in &self.ops {
            writeln!(f, "  {k:<12} {:>6} ok {:>5} failed {:>5} unknown", t.ok, t.fail, t.unknown)?;
        }
        let faults: Vec<String> = self.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(f, "faults injected: {} ({})", self.faults_injected(), faults.join(", "))?;
        let c = &self.facts;
        writeln!(
            f,
            "jobs: {} completed, {} ended otherwise, {} runs, {} workers destroyed",
            c.completed, c.not_completed, c.runs, c.destroyed
        )?;
        if !self.agent_hits.is_empty() {
            let mut by_end: BTreeMap<String, usize> = BTreeMap::new();
            for h in &self.agent_hits {
                *by_end.entry(ending(&h.state, h.failure.as_deref())).or_default() += 1;
            }
            let ends: Vec<String> = by_end.iter().map(|(e, n)| format!("{n} {e}")).collect();
            writeln!(f, "jobs whose agent was killed: {}: {}", self.agent_hits.len(), ends.join("; "))?;
        }
        if !self.other_ends.is_empty() {
            let ends: Vec<String> = self.other_ends.iter().map(|(e, n)| format!("{n} {e}")).collect();
            writeln!(f, "other jobs that did not complete: {}", ends.join("; "))?;
        }
        if !self.unfinished.is_empty() {
            writeln!(f, "jobs unfinished when the run stopped waiting: {}", self.unfinished.join(", "))?;
        }
        if !self.undestroyed.is_empty() {
            writeln!(f, "workers not destroyed when the run stopped waiting: {}", self.undestroyed.join(", "))?;
        }
        writeln!(f, "invariants:")?;
        for v in &self.report.verdicts {
            let s = match v.status() {
                Status::Holds => "ok",
                Status::Violated => "VIOLATED",
                Status::Inconclusive => "inconclusive",
            };
            writeln!(f, "  {:<26} {s:<12} ({} checked)", v.name, v.checked)?;
        }
        if !self.report.ok() {
            write!(f, "\n{}", self.report)?;
        }
        if let Some(d) = &self.kept {
            writeln!(f, "run folder (history.jsonl, node logs): {}", d.display())?;
        }
        Ok(())
    }
}
