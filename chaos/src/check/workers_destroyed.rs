//! Nothing leaks: every worker that ran a job is destroyed by the end of the run.

use std::collections::{BTreeMap, BTreeSet};

use super::{CheckConfig, Verdict, Violation};
use crate::history::{rel, History, Op, OpKind};

/// The invariant's name in verdicts.
pub const NAME: &str = "workers_destroyed";

/// Checks that every worker named in a `JobRanOn` record has a `WorkerDestroyed` record somewhere in the history.
pub fn check(h: &History, _cfg: &CheckConfig) -> Verdict {
    let origin = h.origin();
    let mut last_run: BTreeMap<&str, &Op> = BTreeMap::new();
    let mut destroyed: BTreeSet<&str> = BTreeSet::new();
    for op in h.ops.iter().filter(|o| o.may_have_happened()) {
        match &op.kind {
            OpKind::JobRanOn { worker, .. } => {
                let last = last_run.entry(worker).or_insert(op);
                if op.invoke > last.invoke {
                    *last = op;
                }
            }
            OpKind::WorkerDestroyed { worker } => {
                destroyed.insert(worker);
            }
            _ => {}
        }
    }
    let violations = last_run
        .iter()
        .filter(|(w, _)| !destroyed.contains(*w))
        .map(|(w, &op)| {
            let job = op.kind.job().unwrap_or("?");
            Violation::new(
                format!(
                    "worker {w} ran jobs (the last, {job}, recorded at {}) but was never destroyed",
                    rel(op.invoke, origin)
                ),
                [op],
            )
        })
        .collect();
    Verdict::new(NAME, last_run.len(), violations, vec![])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixture::{excerpt_ids, Hb};
    use crate::check::Status;

    #[test]
    fn destroyed_workers_hold_and_a_leaked_one_is_a_violation() {
        let mut b = Hb::new();
        b.ran("A", "w1", 0, Some(10));
        b.ran("B", "w2", 0, Some(10));
        let last = b.ran("C", "w2", 20, Some(30));
        b.destroyed("w1", 40);
        let v = check(&b.h, &CheckConfig::default());
        assert_eq!((v.status(), v.checked), (Status::Violated, 2));
        assert!(v.violations[0].message.contains("worker w2 ran jobs (the last, C,"), "{}", v.violations[0].message);
        assert_eq!(excerpt_ids(&v.violations[0]), vec![last]);
        b.destroyed("w2", 50);
        assert_eq!(check(&b.h, &CheckConfig::default()).status(), Status::Holds);
    }
}
