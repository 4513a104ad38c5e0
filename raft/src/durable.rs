//! How far this node's own Raft log is on disk: the mark behind the
//! leader's parallel flush.
//!
//! openraft 0.9 waits for the leader's own fsync of a batch before it sends
//! the batch to any follower (`RaftCore::append_to_log`), so every commit
//! paid two disk syncs one after the other, and openraft's core loop stood
//! still during the first. The Raft thesis (section 10.2.1) lets a leader
//! write its log in parallel with replicating it, as long as an entry
//! counts as committed only once a majority holds it durably. Here the log
//! store tells openraft at once that a leader's own entries are flushed, so
//! replication starts at once, and the [`Durable`] mark keeps the majority
//! rule where it matters:
//!
//! - the state machine applies an entry this node proposed only once the
//!   mark has passed it, so nothing is acknowledged to a client, or acted
//!   on, before this node's disk and a follower's hold it;
//! - every AppendEntries this node sends carries a commit index no higher
//!   than the mark, so no follower applies an entry its leader could still
//!   lose.
//!
//! What openraft itself believes committed may then run a little ahead of
//! the true commit on the leader; if the leader dies meanwhile, those
//! entries were applied nowhere and acknowledged to no one, and Raft's
//! election rules decide whether they survive, as for any uncommitted entry.

use std::sync::Arc;

use openraft::LogId;
use tokio::sync::watch;

use crate::types::NodeId;

/// The mark: the id of the last entry this node's log holds on disk, or
/// the error that stopped the log's writer.
#[derive(Clone, Debug, Default)]
struct Mark {
    upto: Option<LogId<NodeId>>,
    failed: Option<String>,
}

/// The shared durable mark of one node's Raft log; cheap to clone.
///
/// It exists so that the state machine and the peer network, which openraft
/// drives separately from the log store, can wait on and respect what the
/// log store has really synced.
#[derive(Clone)]
pub struct Durable {
    tx: Arc<watch::Sender<Mark>>,
}

/// The log's writer failed; nothing after the mark will ever be on disk.
#[derive(Debug, thiserror::Error)]
#[error("the Raft log cannot be written: {0}")]
pub struct NotDurable(pub String);

impl Durable {
    /// A mark starting at `upto`, the last entry found on disk at start.
    pub(crate) fn new(upto: Option<LogId<NodeId>>) -> Self {
        Self { tx: Arc::new(watch::Sender::new(Mark { upto, failed: None })) }
    }

    /// Entries up to `upto` are on disk. Also used to move the mark back
    /// when a follower's log is truncated.
    pub(crate) fn set(&self, upto: Option<LogId<NodeId>>) {
        self.tx.send_modify(|m| m.upto = upto);
    }

    /// The writer failed: every waiter gets the error, now and later.
    pub(crate) fn fail(&self, why: String) {
        self.tx.send_modify(|m| m.failed = Some(why));
    }

    /// The id of the last entry on disk.
    pub fn upto(&self) -> Option<LogId<NodeId>> {
        self.tx.borrow().upto
    }

    /// Waits until the entry at `index` is on disk.
    pub async fn wait_for(&self, index: u64) -> Result<(), NotDurable> {
        let reached = |m: &Mark| m.failed.is_some() || m.upto.is_some_and(|u| u.index >= index);
        let mut rx = self.tx.subscribe();
        let mark = rx.wait_for(reached).await.map_err(|_| NotDurable("the log store is gone".into()))?;
        match &mark.failed {
            Some(why) => Err(NotDurable(why.clone())),
            None => Ok(()),
        }
    }

    /// The commit index a follower may be told: `committed`, lowered to the
    /// mark when this node's own disk is behind it.
    pub fn clamp(&self, committed: Option<LogId<NodeId>>) -> Option<LogId<NodeId>> {
        let upto = self.upto();
        match (committed, upto) {
            (Some(c), Some(u)) if u.index < c.index => Some(u),
            (Some(_), None) => None,
            (c, _) => c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn id(index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(3, 1), index)
    }

    #[test]
    fn a_commit_index_is_never_told_past_the_mark() {
        let d = Durable::new(None);
        assert_eq!(d.clamp(Some(id(5))), None, "nothing on disk: no commit index");
        assert_eq!(d.clamp(None), None);
        d.set(Some(id(3)));
        assert_eq!(d.clamp(Some(id(5))), Some(id(3)), "lowered to the mark");
        assert_eq!(d.clamp(Some(id(2))), Some(id(2)), "below the mark: unchanged");
        d.set(Some(id(9)));
        assert_eq!(d.clamp(Some(id(5))), Some(id(5)));
    }

    #[tokio::test]
    async fn waiters_wake_when_the_mark_passes_them_or_the_writer_fails() {
        let d = Durable::new(Some(id(1)));
        d.wait_for(1).await.expect("already on disk");
        let waiting = tokio::spawn({
            let d = d.clone();
            async move { d.wait_for(4).await }
        });
        d.set(Some(id(3)));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "3 is not 4");
        d.set(Some(id(4)));
        waiting.await.unwrap().expect("4 reached");
        let failing = tokio::spawn({
            let d = d.clone();
            async move { d.wait_for(10).await }
        });
        d.fail("disk full".into());
        let err = failing.await.unwrap().expect_err("the writer failed");
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(d.wait_for(11).await.is_err(), "later waiters see the failure too");
    }
}
