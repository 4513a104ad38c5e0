//! A failed job says why: a job cut short by a lost worker (its agent killed, its machine gone) fails with a
//! clear cause rather than silently, so that its owner knows what happened and whether to run it again.

use super::{CheckConfig, Verdict, Violation};
use crate::history::{rel, History, OpKind};

/// The invariant's name in verdicts.
pub const NAME: &str = "failures_have_causes";

/// Checks every `JobEnded` record: a job that ended `failed` must carry a cause that is not blank.
pub fn check(h: &History, _cfg: &CheckConfig) -> Verdict {
    let origin = h.origin();
    let mut checked = 0;
    let mut violations = Vec::new();
    for op in h.ops.iter().filter(|o| o.may_have_happened()) {
        let OpKind::JobEnded { job, state, cause } = &op.kind else { continue };
        checked += 1;
        if state == "failed" && cause.as_deref().is_none_or(|c| c.trim().is_empty()) {
            violations.push(Violation::new(
                format!("job {job} failed without a cause (recorded at {})", rel(op.invoke, origin)),
                [op],
            ));
        }
    }
    Verdict::new(NAME, checked, violations, vec![])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixture::{excerpt_ids, Hb};
    use crate::check::Status;

    #[test]
    fn failures_with_causes_hold_and_a_silent_failure_is_a_violation() {
        let mut b = Hb::new();
        b.ended("A", "completed", None, 10);
        b.ended("B", "failed", Some("the worker's agent stopped calling in (no heartbeat for 45 s)"), 20);
        b.ended("C", "cancelled", None, 30);
        let v = check(&b.h, &CheckConfig::default());
        assert_eq!((v.status(), v.checked), (Status::Holds, 3));
        let silent = b.ended("D", "failed", None, 40);
        let blank = b.ended("E", "failed", Some("  "), 50);
        let v = check(&b.h, &CheckConfig::default());
        assert_eq!(v.status(), Status::Violated);
        assert_eq!(v.violations.len(), 2);
        assert!(v.violations[0].message.starts_with("job D failed without a cause"), "{}", v.violations[0].message);
        assert_eq!(excerpt_ids(&v.violations[0]), vec![silent]);
        assert_eq!(excerpt_ids(&v.violations[1]), vec![blank]);
    }
}
