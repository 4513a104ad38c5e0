//! A whole history and the questions every checker asks of it.

use serde::{Deserialize, Serialize};

use super::kind::OpKind;
use super::op::{Op, Outcome};

/// Every operation of a run, in the order recorded. This is what a run saves (as JSON lines, see
/// [`History::to_jsonl`]) and what the checker reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The operations; ids are unique.
    pub ops: Vec<Op>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an operation whose times are already known (hand-made histories, records converted from another
    /// process) and returns its id: one more than the largest id so far.
    pub fn push(&mut self, process: u64, kind: OpKind, invoke: u64, complete: Option<u64>, outcome: Outcome) -> u64 {
        let id = self.ops.iter().map(|o| o.id + 1).max().unwrap_or(0);
        self.ops.push(Op { id, process, kind, invoke, complete, outcome });
        id
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operation with this id.
    pub fn get(&self, id: u64) -> Option<&Op> {
        self.ops.iter().find(|o| o.id == id)
    }

    /// The earliest invocation time, which reports count from; 0 for an empty history.
    pub fn origin(&self) -> u64 {
        self.ops.iter().map(|o| o.invoke).min().unwrap_or(0)
    }

    /// The latest time anything in the history happened.
    pub fn end(&self) -> u64 {
        self.ops.iter().map(|o| o.complete.unwrap_or(o.invoke).max(o.invoke)).max().unwrap_or(0)
    }

    /// The recorded faults, for reports.
    pub fn faults(&self) -> impl Iterator<Item = &Op> {
        self.ops.iter().filter(|o| matches!(o.kind, OpKind::Fault { .. }))
    }

    /// When the last fault ended: `None` without faults, `u64::MAX` if some fault was never healed. Reads
    /// invoked after this time are the "final" reads several invariants are judged on.
    pub fn last_fault_end(&self) -> Option<u64> {
        self.faults()
            .filter_map(|o| match o.kind {
                OpKind::Fault { end, .. } => Some(end.unwrap_or(u64::MAX)),
                _ => None,
            })
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Value;

    fn fault(h: &mut History, start: u64, end: Option<u64>) {
        h.push(0, OpKind::Fault { kind: "partition".into(), start, end }, start, end, Outcome::Ok(Value::Done));
    }

    #[test]
    fn ids_count_up_and_times_span_the_ops() {
        let mut h = History::new();
        let a = h.push(1, OpKind::SubmitJob { name: "a".into() }, 50, Some(80), Outcome::Unknown("timeout".into()));
        let b = h.push(2, OpKind::CancelJob { job: "j".into() }, 10, None, Outcome::Unknown("pending".into()));
        assert_eq!((a, b), (0, 1));
        assert_eq!((h.origin(), h.end()), (10, 80));
        assert_eq!(h.get(1).unwrap().process, 2);
    }

    #[test]
    fn the_last_fault_end_is_the_latest_or_never() {
        let mut h = History::new();
        assert_eq!(h.last_fault_end(), None);
        fault(&mut h, 10, Some(30));
        fault(&mut h, 20, Some(25));
        assert_eq!(h.last_fault_end(), Some(30));
        fault(&mut h, 40, None);
        assert_eq!(h.last_fault_end(), Some(u64::MAX));
    }
}
