//! No acknowledged job is lost: once bm said "submitted, id J", every final read must find J.

use super::facts::{acked_at, acked_submits, node_name};
use super::{CheckConfig, Verdict, Violation};
use crate::history::{rel, History, Op, OpKind, Value};

/// The invariant's name in verdicts.
pub const NAME: &str = "lost_jobs";

/// Checks that every acknowledged job is found by every final read that could see it: `ReadJob` of it, and
/// `ListJobs` (taken to list every job), invoked after the heal and after the acknowledgement. A job no final
/// read looked at is undecided, not passed.
pub fn check(h: &History, cfg: &CheckConfig) -> Verdict {
    let heal = cfg.heal_time(h);
    let origin = h.origin();
    let acked = acked_submits(h);
    let mut violations = Vec::new();
    let mut inconclusive = Vec::new();
    for (&job, &submit) in &acked {
        let from = heal.max(acked_at(submit));
        let mut seen = false;
        let mut missing: Vec<&Op> = Vec::new();
        for op in h.ops.iter().filter(|o| o.invoke >= from) {
            match (&op.kind, op.ok()) {
                (OpKind::ReadJob { job: j, .. }, Some(Value::View(view))) if j == job => match view {
                    Some(_) => seen = true,
                    None => missing.push(op),
                },
                (OpKind::ListJobs { .. }, Some(Value::Jobs(ids))) => match ids.iter().any(|id| id == job) {
                    true => seen = true,
                    false => missing.push(op),
                },
                _ => {}
            }
        }
        if let Some(&first) = missing.first() {
            let nodes: Vec<String> = missing.iter().map(|o| read_node(o)).collect();
            violations.push(Violation::new(
                format!(
                    "job {job}, acknowledged at {}, is missing from {} final read(s) ({}), the first at {}",
                    rel(acked_at(submit), origin),
                    missing.len(),
                    nodes.join(", "),
                    rel(first.invoke, origin)
                ),
                [submit, first],
            ));
        } else if !seen {
            inconclusive.push(format!(
                "job {job}, acknowledged at {}, was not read after the heal at {}",
                rel(acked_at(submit), origin),
                rel(heal, origin)
            ));
        }
    }
    Verdict::new(NAME, acked.len(), violations, inconclusive)
}

/// The node a job read or listing went to.
fn read_node(op: &Op) -> String {
    match op.kind {
        OpKind::ReadJob { node, .. } | OpKind::ListJobs { node } => node_name(node),
        _ => node_name(None),
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
    fn acknowledged_jobs_found_by_final_reads_hold() {
        let mut b = Hb::new();
        b.submit("A", 0, 10);
        b.submit("B", 0, 10);
        b.fault(20, 100);
        b.read("A", 110, 120, "completed", 1, None);
        b.list(2, 110, 120, &["A", "B"]);
        let v = verdict(&b);
        assert_eq!((v.status(), v.checked), (Status::Holds, 2));
    }

    #[test]
    fn a_lost_ack_is_a_violation_showing_the_submit_and_the_read() {
        let mut b = Hb::new();
        let submit = b.submit("A", 0, 10);
        b.fault(20, 100);
        // Reads during the fault do not count as final.
        b.missing("A", 3, 50, 60);
        b.read("A", 110, 120, "queued", 0, None);
        let read = b.missing("A", 2, 130, 140);
        b.list(3, 150, 160, &[]);
        let v = verdict(&b);
        assert_eq!(v.status(), Status::Violated);
        assert_eq!(v.violations.len(), 1);
        let msg = &v.violations[0].message;
        assert!(msg.contains("missing from 2 final read(s) (node 2, node 3)"), "{msg}");
        assert_eq!(excerpt_ids(&v.violations[0]), vec![submit, read]);
    }

    #[test]
    fn a_listing_made_before_the_ack_does_not_count() {
        let mut b = Hb::new();
        b.list(1, 0, 5, &[]);
        b.submit("A", 0, 10);
        b.read("A", 20, 30, "queued", 0, None);
        assert_eq!(verdict(&b).status(), Status::Holds);
    }

    #[test]
    fn a_job_never_read_after_the_heal_is_undecided() {
        let mut b = Hb::new();
        b.submit("A", 0, 10);
        b.read("A", 20, 30, "queued", 0, None);
        b.fault(40, 100);
        let v = verdict(&b);
        assert_eq!(v.status(), Status::Inconclusive);
        assert!(v.inconclusive[0].contains("job A"), "{:?}", v.inconclusive);
    }

    #[test]
    fn unacknowledged_submits_are_not_counted() {
        let mut b = Hb::new();
        b.h.push(
            1,
            OpKind::SubmitJob { name: "x".into() },
            0,
            None,
            crate::history::Outcome::Unknown("timeout".into()),
        );
        b.list(1, 20, 30, &[]);
        let v = verdict(&b);
        assert_eq!((v.status(), v.checked), (Status::Holds, 0));
    }
}
