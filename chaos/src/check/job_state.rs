//! Job state is linearizable: submits, cancels and reads of each job fit one sequential order that respects real
//! time and bm's lifecycle ([`JobStateModel`]).

use std::collections::BTreeMap;

use super::facts::acked_submits;
use super::lin::{self, JobInput, JobStateModel, LinOp, Linearizability};
use super::{CheckConfig, Verdict, Violation};
use crate::history::{History, Op, OpKind, Outcome, Value};

/// The invariant's name in verdicts.
pub const NAME: &str = "linearizable_job_state";

/// Checks each acknowledged job's operations for linearizability against [`JobStateModel`]. Failed operations
/// never happened and are left out; a cancel with unknown outcome may take effect any time after it was invoked,
/// or never; reads with unknown outcome tell nothing. A violation's excerpt is the job's operations shrunk to a
/// few that are already contradictory; a job the search could not decide within the limits is inconclusive.
pub fn check(h: &History, cfg: &CheckConfig) -> Verdict {
    let acked = acked_submits(h);
    let mut per_job: BTreeMap<&str, Vec<LinOp<JobInput, Value>>> = BTreeMap::new();
    for op in &h.ops {
        if let Some((job, lin_op)) = to_lin(op) {
            if acked.contains_key(job) {
                per_job.entry(job).or_default().push(lin_op);
            }
        }
    }
    let mut violations = Vec::new();
    let mut inconclusive = Vec::new();
    for (job, ops) in per_job.iter() {
        match lin::check(&JobStateModel, ops, &cfg.lin) {
            Linearizability::Linearizable => {}
            Linearizability::Inconclusive(why) => inconclusive.push(format!("job {job}: {why}")),
            Linearizability::NotLinearizable => {
                let small = lin::shrink(&JobStateModel, ops.clone(), &cfg.lin, cfg.shrink_checks);
                let excerpt: Vec<&Op> = small.iter().filter_map(|o| h.get(o.id)).collect();
                violations.push(Violation::new(
                    format!(
                        "job {job}: its {} operations are not linearizable; these {} already contradict each other",
                        ops.len(),
                        small.len()
                    ),
                    excerpt,
                ));
            }
        }
    }
    Verdict::new(NAME, per_job.len(), violations, inconclusive)
}

/// The job an operation is about and how the model sees it, for the operations the model covers.
fn to_lin(op: &Op) -> Option<(&str, LinOp<JobInput, Value>)> {
    let (job, input) = match (&op.kind, &op.outcome) {
        (OpKind::SubmitJob { .. }, Outcome::Ok(Value::Job(id))) => (id.as_str(), JobInput::Submit),
        (OpKind::ReadJob { job, .. }, Outcome::Ok(Value::View(_))) => (job.as_str(), JobInput::Read),
        (OpKind::CancelJob { job }, Outcome::Ok(_) | Outcome::Unknown(_)) => (job.as_str(), JobInput::Cancel),
        _ => return None,
    };
    let lin_op = match &op.outcome {
        // A success without a recorded completion is placed like an unknown outcome, but keeps its output.
        Outcome::Ok(v) => LinOp { id: op.id, invoke: op.invoke, complete: op.complete, input, output: Some(v.clone()) },
        _ => LinOp::unknown(op.id, op.invoke, input),
    };
    Some((job, lin_op))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixture::{excerpt_ids, Hb};
    use crate::check::lin::LinLimits;
    use crate::check::Status;

    fn verdict(b: &Hb) -> Verdict {
        check(&b.h, &CheckConfig::default())
    }

    #[test]
    fn jobs_moving_forward_hold() {
        let mut b = Hb::new();
        b.submit("A", 0, 10);
        b.submit("B", 0, 10);
        b.read("A", 20, 30, "queued", 0, None);
        b.read("B", 20, 30, "running", 1, Some("w"));
        b.read("A", 25, 40, "assigned", 1, Some("w2"));
        b.cancel("B", 50, Some(60), Outcome::Ok(Value::Done));
        b.read("B", 70, 80, "cancelled", 1, Some("w"));
        let v = verdict(&b);
        assert_eq!((v.status(), v.checked), (Status::Holds, 2));
    }

    #[test]
    fn a_stale_read_after_a_newer_state_is_a_violation_with_a_small_excerpt() {
        let mut b = Hb::new();
        let submit = b.submit("A", 0, 10);
        b.read("A", 20, 30, "queued", 0, None);
        let newer = b.read("A", 40, 50, "running", 1, Some("w"));
        b.read("A", 60, 70, "running", 1, Some("w"));
        let stale = b.read("A", 80, 90, "queued", 0, None);
        b.read("A", 100, 110, "completed", 1, Some("w"));
        let v = verdict(&b);
        assert_eq!(v.status(), Status::Violated);
        assert!(v.violations[0].message.contains("its 6 operations are not linearizable; these 3"), "{:?}", v);
        assert_eq!(excerpt_ids(&v.violations[0]), vec![submit, newer, stale]);
    }

    #[test]
    fn a_failed_cancel_did_not_happen_and_an_unknown_one_may_have() {
        let mut b = Hb::new();
        b.submit("A", 0, 10);
        b.cancel("A", 20, Some(30), Outcome::Fail("conflict".into()));
        b.read("A", 40, 50, "running", 1, Some("w"));
        b.cancel("A", 60, None, Outcome::Unknown("timeout".into()));
        b.read("A", 70, 80, "running", 1, Some("w"));
        b.read("A", 90, 95, "cancelled", 1, Some("w"));
        assert_eq!(verdict(&b).status(), Status::Holds);
    }

    #[test]
    fn too_many_operations_are_inconclusive() {
        let mut b = Hb::new();
        b.submit("A", 0, 10);
        for i in 0..10 {
            b.read("A", 20 + i, 40 + i, "queued", 0, None);
        }
        let cfg = CheckConfig { lin: LinLimits { max_ops: 5, max_steps: 1_000 }, ..CheckConfig::default() };
        let v = check(&b.h, &cfg);
        assert_eq!(v.status(), Status::Inconclusive);
        assert!(v.inconclusive[0].starts_with("job A: 11 operations"), "{:?}", v.inconclusive);
    }
}
