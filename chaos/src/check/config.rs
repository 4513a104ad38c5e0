//! The knobs of a check: when the cluster was healed, how long jobs may take to end, how hard to search.

use std::time::Duration;

use super::lin::LinLimits;
use crate::history::History;

/// How to judge a history. The defaults suit a run that records its faults and polls jobs until they end.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// When the cluster was healed, on the history's time scale; reads invoked from then on are the *final*
    /// reads that lost-job, output and deadline checks are judged on. `None`: when the last recorded fault
    /// ended, or the start of the history if there were none.
    pub healed_at: Option<u64>,
    /// How long an acknowledged job may take to end, counted from the heal (or from its acknowledgement, if
    /// later).
    pub terminal_within: Duration,
    /// Bounds of the linearizability search, per job.
    pub lin: LinLimits,
    /// Most candidate histories shrinking one linearizability violation may check.
    pub shrink_checks: usize,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            healed_at: None,
            terminal_within: Duration::from_secs(60),
            lin: LinLimits::default(),
            shrink_checks: 100,
        }
    }
}

impl CheckConfig {
    /// When the cluster was healed (see [`CheckConfig::healed_at`]).
    pub fn heal_time(&self, history: &History) -> u64 {
        self.healed_at.or_else(|| history.last_fault_end()).unwrap_or_else(|| history.origin())
    }

    /// [`CheckConfig::terminal_within`] in nanoseconds.
    pub(crate) fn terminal_within_nanos(&self) -> u64 {
        u64::try_from(self.terminal_within.as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpKind, Outcome, Value};

    #[test]
    fn the_heal_is_configured_or_the_last_fault_end_or_the_start() {
        let mut h = History::new();
        h.push(1, OpKind::SubmitJob { name: "a".into() }, 5, Some(6), Outcome::Ok(Value::Job("J".into())));
        let cfg = CheckConfig::default();
        assert_eq!(cfg.heal_time(&h), 5);
        h.push(0, OpKind::Fault { kind: "x".into(), start: 7, end: Some(9) }, 7, Some(9), Outcome::Ok(Value::Done));
        assert_eq!(cfg.heal_time(&h), 9);
        assert_eq!(CheckConfig { healed_at: Some(3), ..cfg }.heal_time(&h), 3);
    }
}
