//! Faults stop nothing: with a majority connected, partitions, crashes, pauses, membership changes and bad links
//! may slow a job down but never cut it short. Only a job whose agent a fault killed (its worker lost) may end
//! otherwise, and only a client's cancel may cancel one. Every chaos job's script succeeds, so every other job
//! must complete.

use std::collections::{BTreeMap, BTreeSet};

use super::{CheckConfig, Verdict, Violation};
use crate::history::{History, Op, OpKind};

/// The invariant's name in verdicts.
pub const NAME: &str = "jobs_complete";

/// Checks every `JobEnded` record: a job that did not complete must have had its agent killed (an `AgentKilled`
/// record), or have been cancelled after a cancel that may have happened. The excerpt shows the end and the
/// job's runs, so the faults printed with the report can be set against them.
pub fn check(h: &History, _cfg: &CheckConfig) -> Verdict {
    let mut hit: BTreeSet<&str> = BTreeSet::new();
    let mut cancelled: BTreeSet<&str> = BTreeSet::new();
    let mut runs: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in h.ops.iter().filter(|o| o.may_have_happened()) {
        match &op.kind {
            OpKind::AgentKilled { job, .. } => {
                hit.insert(job);
            }
            OpKind::CancelJob { job } => {
                cancelled.insert(job);
            }
            OpKind::JobRanOn { job, .. } => runs.entry(job).or_default().push(op),
            _ => {}
        }
    }
    let mut checked = 0;
    let mut violations = Vec::new();
    for op in h.ops.iter().filter(|o| o.may_have_happened()) {
        let OpKind::JobEnded { job, state, cause } = &op.kind else { continue };
        checked += 1;
        let excused = match state.as_str() {
            "completed" => true,
            "cancelled" => cancelled.contains(job.as_str()),
            _ => hit.contains(job.as_str()),
        };
        if !excused {
            let why = cause.as_deref().map_or_else(String::new, |c| format!(" ({c})"));
            let involved = runs.get(job.as_str()).into_iter().flatten().copied().chain([op]);
            violations
                .push(Violation::new(format!("job {job} ended {state}{why}, yet no fault killed its agent"), involved));
        }
    }
    Verdict::new(NAME, checked, violations, vec![])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixture::{excerpt_ids, Hb};
    use crate::check::Status;
    use crate::history::{Outcome, Value};

    fn verdict(b: &Hb) -> Verdict {
        check(&b.h, &CheckConfig::default())
    }

    #[test]
    fn completed_jobs_and_jobs_whose_agent_was_killed_hold() {
        let mut b = Hb::new();
        b.ended("A", "completed", None, 10);
        b.h.push(0, OpKind::AgentKilled { job: "B".into(), worker: "w".into() }, 5, Some(5), Outcome::Ok(Value::Done));
        b.ended("B", "failed", Some("the worker's agent stopped calling in"), 20);
        b.cancel("C", 1, None, Outcome::Unknown("timeout".into()));
        b.ended("C", "cancelled", None, 30);
        let v = verdict(&b);
        assert_eq!((v.status(), v.checked), (Status::Holds, 3));
    }

    #[test]
    fn a_job_cut_short_by_anything_else_is_a_violation_showing_its_runs() {
        let mut b = Hb::new();
        let ran = b.ran("A", "w1", 10, Some(40));
        let end = b.ended("A", "failed", Some("output upload failed: 503"), 40);
        b.cancel("C", 1, None, Outcome::Fail("refused".into()));
        b.ended("C", "cancelled", None, 30);
        let v = verdict(&b);
        assert_eq!(v.status(), Status::Violated);
        assert_eq!(v.violations.len(), 2);
        let msg = &v.violations[0].message;
        assert_eq!(msg, "job A ended failed (output upload failed: 503), yet no fault killed its agent");
        assert_eq!(excerpt_ids(&v.violations[0]), vec![ran, end]);
        assert!(v.violations[1].message.starts_with("job C ended cancelled, yet"), "{}", v.violations[1].message);
    }
}
