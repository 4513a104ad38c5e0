//! The handle workloads record operations through while a run goes on.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::clock::Clock;
use super::kind::OpKind;
use super::op::{Op, Outcome};
use super::ops::History;

/// What an operation still pending when the history is taken shows as its outcome.
const PENDING: &str = "not completed";

/// Records a run's history from many threads or tasks at once. Clones share one history; recording takes a short
/// lock and never blocks on anything else, so workloads can call it on their hot path.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    inner: Arc<Inner>,
}

/// What the clones of a [`Recorder`] share.
#[derive(Debug, Default)]
struct Inner {
    clock: Clock,
    /// Operations indexed by id.
    ops: Mutex<Vec<Op>>,
}

/// An invoked operation awaiting its outcome; give it back to [`Recorder::complete`]. Dropping it instead leaves
/// the operation's outcome unknown, which is the truth when a workload gives up on it.
#[must_use = "complete the operation, or its outcome stays unknown"]
#[derive(Debug)]
pub struct Pending {
    id: u64,
}

impl Pending {
    /// The operation's id in the history.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Recorder {
    /// A recorder with an empty history, its clock starting now.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current time on the history's scale (nanoseconds since the UNIX epoch, monotonic).
    pub fn now(&self) -> u64 {
        self.inner.clock.now()
    }

    /// Records that `process` invokes `kind` now; call [`Recorder::complete`] with the result.
    pub fn invoke(&self, process: u64, kind: OpKind) -> Pending {
        let mut ops = self.ops();
        let id = ops.len() as u64;
        // Read the clock under the lock, so ids and invocation times agree.
        let invoke = self.now();
        ops.push(Op { id, process, kind, invoke, complete: None, outcome: Outcome::Unknown(PENDING.into()) });
        Pending { id }
    }

    /// Records the outcome of an invoked operation, completing it now.
    pub fn complete(&self, pending: Pending, outcome: Outcome) {
        let mut ops = self.ops();
        let complete = self.now();
        if let Some(op) = ops.get_mut(pending.id as usize) {
            op.complete = Some(complete.max(op.invoke));
            op.outcome = outcome;
        }
    }

    /// Records a fact that happened now (a job's log append, a worker destroyed): invoked and completed at once,
    /// outcome `Ok(Done)`. Returns its id.
    pub fn record(&self, process: u64, kind: OpKind) -> u64 {
        let now = self.now();
        self.record_at(process, kind, now, Some(now), Outcome::Ok(super::Value::Done))
    }

    /// Records an operation whose times are known already (say, read from an agent's records); times are on the
    /// history's scale (see [`crate::history::clock::unix_nanos`]). Returns its id.
    pub fn record_at(&self, process: u64, kind: OpKind, invoke: u64, complete: Option<u64>, outcome: Outcome) -> u64 {
        let mut ops = self.ops();
        let id = ops.len() as u64;
        ops.push(Op { id, process, kind, invoke, complete, outcome });
        id
    }

    /// A copy of the history so far; operations still pending show as never completed, outcome unknown.
    pub fn history(&self) -> History {
        History { ops: self.ops().clone() }
    }

    /// The operations, whatever a panicking recorder left behind (a record is pushed whole or not at all).
    fn ops(&self) -> MutexGuard<'_, Vec<Op>> {
        self.inner.ops.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Value;

    #[test]
    fn clones_record_into_one_history() {
        let rec = Recorder::new();
        let other = rec.clone();
        let a = rec.invoke(1, OpKind::SubmitJob { name: "a".into() });
        let b = other.invoke(2, OpKind::ReadJob { job: "J".into(), node: None });
        other.complete(a, Outcome::Ok(Value::Job("J".into())));
        let fact = rec.record(0, OpKind::WorkerDestroyed { worker: "w".into() });
        drop(b);
        let h = rec.history();
        assert_eq!(h.len(), 3);
        assert_eq!(h.ops[0].outcome, Outcome::Ok(Value::Job("J".into())));
        assert!(h.ops[0].complete.unwrap() >= h.ops[0].invoke);
        assert_eq!((h.ops[1].complete, &h.ops[1].outcome), (None, &Outcome::Unknown(PENDING.into())));
        assert_eq!(h.ops[fact as usize].outcome, Outcome::Ok(Value::Done));
    }

    #[test]
    fn threads_record_concurrently() {
        let rec = Recorder::new();
        let threads: Vec<_> = (0..4)
            .map(|p| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let h = rec.invoke(p, OpKind::ListJobs { node: None });
                        rec.complete(h, Outcome::Ok(Value::Jobs(vec![])));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let h = rec.history();
        assert_eq!(h.len(), 400);
        assert!(h.ops.iter().enumerate().all(|(i, o)| o.id == i as u64 && o.complete.is_some()));
        assert!(h.ops.windows(2).all(|w| w[0].invoke <= w[1].invoke));
    }
}
