//! The cluster recovers: once faults are healed, every acknowledged job ends within a bound.

use super::facts::{acked_at, acked_submits, is_terminal, job_read};
use super::{CheckConfig, Verdict, Violation};
use crate::history::{rel, History, Op, OpKind};

/// The invariant's name in verdicts.
pub const NAME: &str = "terminal_after_heal";

/// Checks that no read invoked past the deadline (the heal, or the job's acknowledgement if later, plus
/// [`CheckConfig::terminal_within`]) shows an acknowledged job unended or missing. A job never seen ended and
/// not read past its deadline is undecided: the run stopped polling it too early.
pub fn check(h: &History, cfg: &CheckConfig) -> Verdict {
    let heal = cfg.heal_time(h);
    let within = cfg.terminal_within_nanos();
    let origin = h.origin();
    let last_fault: Option<&Op> = h.faults().max_by_key(|o| match o.kind {
        OpKind::Fault { end, .. } => end.unwrap_or(u64::MAX),
        _ => 0,
    });
    let acked = acked_submits(h);
    let mut violations = Vec::new();
    let mut inconclusive = Vec::new();
    for (&job, &submit) in &acked {
        let deadline = heal.max(acked_at(submit)).saturating_add(within);
        let mut reads: Vec<&Op> = h.ops.iter().filter(|o| job_read(o).is_some_and(|(j, _)| j == job)).collect();
        reads.sort_by_key(|o| (o.invoke, o.id));
        let ended = |o: &Op| job_read(o).and_then(|(_, v)| v).is_some_and(|v| is_terminal(&v.state));
        if let Some(late) = reads.iter().find(|o| o.invoke >= deadline && !ended(o)) {
            let state = job_read(late).and_then(|(_, v)| v).map_or("missing", |v| v.state.as_str());
            let excerpt = [Some(submit), last_fault, Some(late)];
            violations.push(Violation::new(
                format!(
                    "job {job} was still {state} at {}, past its deadline {} ({:.1}s after the heal at {})",
                    rel(late.invoke, origin),
                    rel(deadline, origin),
                    cfg.terminal_within.as_secs_f64(),
                    rel(heal, origin)
                ),
                excerpt.into_iter().flatten(),
            ));
        } else if !reads.iter().any(|o| ended(o)) {
            inconclusive.push(format!(
                "job {job} was never seen ended, and not read after its deadline {}",
                rel(deadline, origin)
            ));
        }
    }
    Verdict::new(NAME, acked.len(), violations, inconclusive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixture::{excerpt_ids, Hb};
    use crate::check::Status;
    use std::time::Duration;

    fn verdict(b: &Hb) -> Verdict {
        check(&b.h, &CheckConfig { terminal_within: Duration::from_millis(100), ..CheckConfig::default() })
    }

    #[test]
    fn a_job_ending_in_time_holds() {
        let mut b = Hb::new();
        b.submit("A", 0, 10);
        b.fault(20, 100);
        b.read("A", 150, 160, "running", 1, Some("w"));
        b.read("A", 190, 199, "completed", 1, Some("w"));
        b.read("A", 300, 310, "completed", 1, Some("w"));
        let v = verdict(&b);
        assert_eq!((v.status(), v.checked), (Status::Holds, 1));
    }

    #[test]
    fn a_job_still_running_past_the_deadline_is_a_violation() {
        let mut b = Hb::new();
        let submit = b.submit("A", 0, 10);
        let fault = b.fault(20, 100);
        b.read("A", 150, 160, "running", 1, Some("w"));
        let late = b.read("A", 200, 210, "running", 1, Some("w"));
        let v = verdict(&b);
        assert_eq!(v.status(), Status::Violated);
        assert!(v.violations[0]
            .message
            .contains("job A was still running at +200.000ms, past its deadline +200.000ms"));
        assert_eq!(excerpt_ids(&v.violations[0]), vec![submit, fault, late]);
    }

    #[test]
    fn the_deadline_counts_from_a_late_acknowledgement() {
        let mut b = Hb::new();
        b.fault(0, 10);
        b.submit("A", 100, 150);
        b.read("A", 240, 245, "queued", 0, None);
        b.read("A", 260, 270, "failed", 1, None);
        assert_eq!(verdict(&b).status(), Status::Holds);
    }

    #[test]
    fn a_job_not_polled_long_enough_is_undecided() {
        let mut b = Hb::new();
        b.submit("A", 0, 10);
        b.read("A", 20, 30, "running", 1, Some("w"));
        assert_eq!(verdict(&b).status(), Status::Inconclusive);
    }
}
