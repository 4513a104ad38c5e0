//! A job runs once: never on two workers at the same time, and not twice at all (bm does not retry jobs).

use std::collections::BTreeMap;

use super::{CheckConfig, Verdict, Violation};
use crate::history::{rel, History, Op, OpKind};

/// The invariant's name in verdicts.
pub const NAME: &str = "single_runner";

/// One recorded run of a job.
struct Run<'a> {
    op: &'a Op,
    worker: &'a str,
    start: u64,
    /// `u64::MAX` when it had not ended.
    end: u64,
}

impl Run<'_> {
    /// Whether the two runs were under way at the same time.
    fn overlaps(&self, other: &Run<'_>) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Checks the agents' `JobRanOn` records: every run of a job after its first is a violation, and the message
/// says whether it overlapped an earlier run (the fencing failure) and on which workers.
pub fn check(h: &History, _cfg: &CheckConfig) -> Verdict {
    let origin = h.origin();
    let mut runs: BTreeMap<&str, Vec<Run<'_>>> = BTreeMap::new();
    for op in h.ops.iter().filter(|o| o.may_have_happened()) {
        if let OpKind::JobRanOn { job, worker, start, end } = &op.kind {
            runs.entry(job).or_default().push(Run { op, worker, start: *start, end: end.unwrap_or(u64::MAX) });
        }
    }
    let mut violations = Vec::new();
    for (job, runs) in &mut runs {
        runs.sort_by_key(|r| (r.start, r.op.id));
        for (i, run) in runs.iter().enumerate().skip(1) {
            let earlier = &runs[..i];
            let (other, overlapping) = match earlier.iter().find(|e| e.overlaps(run)) {
                Some(e) => (e, true),
                None => (&earlier[i - 1], false),
            };
            let how = match (overlapping, other.worker == run.worker) {
                (true, false) => "overlapping it on a different worker",
                (true, true) => "overlapping it on the same worker",
                (false, false) => "after it ended, on a different worker",
                (false, true) => "after it ended, on the same worker",
            };
            violations.push(Violation::new(
                format!(
                    "job {job} ran {} times: run {} on {} from {} to {}, {how} (run on {} from {} to {})",
                    runs.len(),
                    i + 1,
                    run.worker,
                    rel(run.start, origin),
                    end_text(run.end, origin),
                    other.worker,
                    rel(other.start, origin),
                    end_text(other.end, origin),
                ),
                [other.op, run.op],
            ));
        }
    }
    Verdict::new(NAME, runs.len(), violations, vec![])
}

/// A run's end in messages.
fn end_text(end: u64, origin: u64) -> String {
    if end == u64::MAX {
        "(still running)".into()
    } else {
        rel(end, origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixture::{excerpt_ids, Hb};
    use crate::check::Status;

    fn verdict(b: &Hb) -> Verdict {
        check(&b.h, &CheckConfig::default())
    }

    #[test]
    fn one_run_per_job_holds() {
        let mut b = Hb::new();
        b.ran("A", "w1", 0, Some(100));
        b.ran("B", "w1", 0, Some(50));
        b.ran("C", "w2", 10, None);
        let v = verdict(&b);
        assert_eq!((v.status(), v.checked), (Status::Holds, 3));
    }

    #[test]
    fn two_overlapping_runs_on_different_workers_are_a_violation() {
        let mut b = Hb::new();
        let first = b.ran("A", "w1", 0, Some(100));
        let second = b.ran("A", "w2", 50, None);
        let v = verdict(&b);
        assert_eq!(v.status(), Status::Violated);
        let msg = &v.violations[0].message;
        assert!(msg.contains("overlapping it on a different worker"), "{msg}");
        assert!(msg.contains("(still running)"), "{msg}");
        let mut ids = excerpt_ids(&v.violations[0]);
        ids.sort();
        assert_eq!(ids, vec![first, second]);
    }

    #[test]
    fn a_second_run_after_the_first_ended_is_a_violation_too() {
        let mut b = Hb::new();
        b.ran("A", "w1", 0, Some(100));
        b.ran("A", "w1", 200, Some(300));
        let v = verdict(&b);
        assert_eq!(v.violations.len(), 1);
        assert!(v.violations[0].message.contains("after it ended, on the same worker"), "{}", v.violations[0].message);
    }

    #[test]
    fn runs_that_merely_touch_do_not_overlap() {
        let mut b = Hb::new();
        b.ran("A", "w1", 0, Some(100));
        b.ran("A", "w2", 100, Some(150));
        b.ran("A", "w3", 120, Some(130));
        let v = verdict(&b);
        assert_eq!(v.violations.len(), 2);
        assert!(v.violations[0].message.contains("run 2 on w2") && v.violations[0].message.contains("after it ended"));
        assert!(v.violations[1].message.contains("run 3 on w3") && v.violations[1].message.contains("(run on w2"));
    }
}
