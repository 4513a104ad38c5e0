//! The state-machine side of Raft storage.
//!
//! The application state lives in memory (a [`Machine`]); durability comes
//! from the log plus snapshots kept in fjall. On start the last snapshot is
//! restored and openraft re-applies the committed log after it, so a state
//! acknowledged to a client survives `kill -9`.

use std::io::Cursor;
use std::sync::{Arc, RwLock};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use tokio::sync::watch;

use crate::codec;
use crate::error::FatalStorage;
use crate::machine::Machine;
use crate::types::{NodeId, NodeInfo, Payload, TypeConfig};

const SNAP_META: &[u8] = b"meta";
const SNAP_DATA: &[u8] = b"data";

/// A receiver that changes whenever a log index is applied; readers wait on
/// it (long-poll, SSE) instead of polling the state.
pub type AppliedWatch = watch::Receiver<u64>;

struct Inner<M> {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, NodeInfo>,
    machine: M,
    snapshots_built: u64,
}

thread_local! {
    static HELD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks that this thread holds the state lock, so that taking it again on
/// the same thread (which deadlocks as soon as a writer is queued between
/// the two) panics with a message instead. Costs a thread-local flag.
/// Not `Send`, so that it cannot be held across an `.await` (where another
/// task on this thread would take it for a nested lock).
struct LockHeld(std::marker::PhantomData<*const ()>);

impl LockHeld {
    fn enter(what: &str) -> Self {
        let again = HELD.with(|h| h.replace(true));
        assert!(
            !again,
            "state {what} while this thread already holds the state lock: a nested lock deadlocks the node"
        );
        LockHeld(std::marker::PhantomData)
    }
}

impl Drop for LockHeld {
    fn drop(&mut self) {
        HELD.with(|h| h.set(false));
    }
}

/// State-machine storage: the in-memory [`Machine`] plus fjall-kept snapshots.
pub struct SmStore<M: Machine> {
    inner: Arc<RwLock<Inner<M>>>,
    db: Database,
    snaps: Keyspace,
    applied: Arc<watch::Sender<u64>>,
    /// This node's id and its log's durable mark: entries it proposed as
    /// leader are applied only once its own disk holds them.
    own: Option<(NodeId, crate::Durable)>,
}

impl<M: Machine> Clone for SmStore<M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            db: self.db.clone(),
            snaps: self.snaps.clone(),
            applied: self.applied.clone(),
            own: self.own.clone(),
        }
    }
}

impl<M: Machine> SmStore<M> {
    /// Opens the snapshot keyspace in `db` and restores the last snapshot, if any.
    pub fn open(db: &Database) -> Result<Self, StorageError<NodeId>> {
        let snaps =
            db.keyspace("raft_snapshot", KeyspaceCreateOptions::default).fatal(ErrorSubject::Store, ErrorVerb::Read)?;
        let mut inner = Inner {
            last_applied: None,
            membership: StoredMembership::default(),
            machine: M::default(),
            snapshots_built: 0,
        };
        let this_snaps = snaps.clone();
        if let Some((meta, data)) = read_snapshot(&this_snaps)? {
            inner.machine = restore::<M>(&meta, &data)?;
            inner.last_applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
        }
        let idx = inner.last_applied.map(|l| l.index).unwrap_or(0);
        Ok(Self {
            inner: Arc::new(RwLock::new(inner)),
            db: db.clone(),
            snaps,
            applied: Arc::new(watch::channel(idx).0),
            own: None,
        })
    }

    /// Applies the entries node `me` proposed only once `durable` has
    /// passed them: the other half of the leader's parallel flush (see
    /// [`crate::Durable`]).
    pub fn wait_for_own_entries(mut self, me: NodeId, durable: crate::Durable) -> Self {
        self.own = Some((me, durable));
        self
    }

    /// Runs `f` on the current state (a local, possibly stale, read).
    ///
    /// `f` must not read the state again: the lock is not reentrant, and a
    /// second read waits behind any writer queued after the first, which
    /// waits for the first read: the node stops. Such a nested read panics
    /// at once (see [`LockHeld`]) instead of deadlocking only under load.
    pub fn read<R>(&self, f: impl FnOnce(&M) -> R) -> R {
        let _held = LockHeld::enter("read");
        f(&self.inner.read().expect("state lock poisoned").machine)
    }

    fn write(&self) -> (LockHeld, std::sync::RwLockWriteGuard<'_, Inner<M>>) {
        let held = LockHeld::enter("write");
        (held, self.inner.write().expect("state lock poisoned"))
    }

    /// Index of the last applied entry.
    pub fn last_applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Subscribes to "something was applied" notifications.
    pub fn watch(&self) -> AppliedWatch {
        self.applied.subscribe()
    }

    fn save_snapshot(&self, meta: &SnapshotMeta<NodeId, NodeInfo>, data: &[u8]) -> Result<(), StorageError<NodeId>> {
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let meta_bytes = codec::encode("snapshot meta", meta).fatal(subject.clone(), ErrorVerb::Write)?;
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        batch.insert(&self.snaps, SNAP_META, meta_bytes);
        batch.insert(&self.snaps, SNAP_DATA, data.to_vec());
        batch.commit().fatal(subject, ErrorVerb::Write)
    }
}

type SnapPair = (SnapshotMeta<NodeId, NodeInfo>, Vec<u8>);

/// Runs `f`, work in proportion to the whole state (encoding, decoding,
/// writing or reading a snapshot), on Tokio's blocking threads. On a
/// runtime worker it would stop every task queued behind it on that
/// worker for as long (on two cores, half the node), Raft's heartbeats
/// among them. A panic in `f` goes on in the caller; a task cancelled by
/// the runtime's shutdown is a storage error on `subject` and `verb`.
async fn off_workers<T: Send + 'static>(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    f: impl FnOnce() -> Result<T, StorageError<NodeId>> + Send + 'static,
) -> Result<T, StorageError<NodeId>> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StorageIOError::new(subject, verb, openraft::AnyError::new(&e)).into()),
    }
}

fn read_snapshot(snaps: &Keyspace) -> Result<Option<SnapPair>, StorageError<NodeId>> {
    let subject = ErrorSubject::Snapshot(None);
    let Some(meta) = snaps.get(SNAP_META).fatal(subject.clone(), ErrorVerb::Read)? else {
        return Ok(None);
    };
    let meta = codec::decode("snapshot meta", &meta).fatal(subject.clone(), ErrorVerb::Read)?;
    let data = snaps.get(SNAP_DATA).fatal(subject.clone(), ErrorVerb::Read)?.map(|d| d.to_vec()).unwrap_or_default();
    Ok(Some((meta, data)))
}

fn restore<M: Machine>(meta: &SnapshotMeta<NodeId, NodeInfo>, data: &[u8]) -> Result<M, StorageError<NodeId>> {
    M::restore(data).map_err(|e| {
        StorageIOError::new(
            ErrorSubject::Snapshot(Some(meta.signature())),
            ErrorVerb::Read,
            openraft::AnyError::new(&e),
        )
        .into()
    })
}

impl<M: Machine> RaftSnapshotBuilder<TypeConfig> for SmStore<M> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        // Only the copy is made under the lock (see [`Machine`]); encoding
        // a large state took hundreds of milliseconds during which no entry
        // could be applied on this node.
        let started = std::time::Instant::now();
        let (meta, machine) = {
            let (_held, mut inner) = self.write();
            let machine = inner.machine.clone();
            inner.snapshots_built += 1;
            let id = match inner.last_applied {
                Some(l) => format!("{}-{}-{}", l.leader_id, l.index, inner.snapshots_built),
                None => format!("none-{}", inner.snapshots_built),
            };
            let meta = SnapshotMeta {
                last_log_id: inner.last_applied,
                last_membership: inner.membership.clone(),
                snapshot_id: id,
            };
            (meta, machine)
        };
        let copied = started.elapsed();
        // Encoding and saving take time in proportion to the state
        // (encoding alone 1.1 s at 450,000 jobs, docs/benchmarks.md): on a
        // blocking thread, so that no runtime worker, and no task waiting
        // on one, stands still meanwhile.
        let store = self.clone();
        let (meta, data, encoded) = off_workers(ErrorSubject::Snapshot(None), ErrorVerb::Write, move || {
            let data = machine.snapshot().map_err(|e| {
                StorageIOError::new(ErrorSubject::Snapshot(None), ErrorVerb::Write, openraft::AnyError::new(&e))
            })?;
            drop(machine);
            let encoded = started.elapsed();
            store.save_snapshot(&meta, &data)?;
            Ok((meta, data, encoded))
        })
        .await?;
        tracing::info!(
            snapshot = %meta.snapshot_id,
            bytes = data.len(),
            copy_ms = copied.as_millis() as u64,
            encode_ms = (encoded - copied).as_millis() as u64,
            save_ms = (started.elapsed() - encoded).as_millis() as u64,
            "snapshot built"
        );
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl<M: Machine> RaftStateMachine<TypeConfig> for SmStore<M> {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, NodeInfo>), StorageError<NodeId>> {
        let _held = LockHeld::enter("read");
        let inner = self.inner.read().expect("state lock poisoned");
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Payload>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        if let Some((me, durable)) = &self.own {
            let own = entries.iter().rev().find(|e| e.log_id.leader_id.node_id == *me);
            if let Some(e) = own {
                durable.wait_for(e.log_id.index).await.fatal(ErrorSubject::Apply(e.log_id), ErrorVerb::Write)?;
            }
        }
        let mut out = Vec::new();
        let mut last = None;
        {
            let (_held, mut inner) = self.write();
            for e in entries {
                inner.last_applied = Some(e.log_id);
                last = Some(e.log_id.index);
                let resp = match e.payload {
                    EntryPayload::Blank => Vec::new(),
                    EntryPayload::Normal(Payload(cmd)) => inner.machine.apply(e.log_id.index, &cmd).map_err(|err| {
                        StorageIOError::new(
                            ErrorSubject::Apply(e.log_id),
                            ErrorVerb::Read,
                            openraft::AnyError::new(&err),
                        )
                    })?,
                    EntryPayload::Membership(m) => {
                        inner.membership = StoredMembership::new(Some(e.log_id), m);
                        Vec::new()
                    }
                };
                out.push(Payload(resp));
            }
        }
        if let Some(i) = last {
            self.applied.send_replace(i);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, NodeInfo>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let (store, owned_meta) = (self.clone(), meta.clone());
        let machine = off_workers(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, move || {
            let machine = restore::<M>(&owned_meta, &data)?;
            store.save_snapshot(&owned_meta, &data)?;
            Ok(machine)
        })
        .await?;
        {
            let (_held, mut inner) = self.write();
            inner.machine = machine;
            inner.last_applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
        }
        self.applied.send_replace(meta.last_log_id.map(|l| l.index).unwrap_or(0));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let snaps = self.snaps.clone();
        let found = off_workers(ErrorSubject::Snapshot(None), ErrorVerb::Read, move || read_snapshot(&snaps)).await?;
        Ok(found.map(|(meta, data)| Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::MachineError;

    #[derive(Clone, Default)]
    struct Empty;

    impl Machine for Empty {
        fn apply(&mut self, _index: u64, _command: &[u8]) -> Result<Vec<u8>, MachineError> {
            Ok(Vec::new())
        }
        fn snapshot(&self) -> Result<Vec<u8>, MachineError> {
            Ok(Vec::new())
        }
        fn restore(_bytes: &[u8]) -> Result<Self, MachineError> {
            Ok(Empty)
        }
    }

    fn store() -> (tempfile::TempDir, SmStore<Empty>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let sm = SmStore::open(&db).unwrap();
        (dir, sm)
    }

    #[test]
    fn a_nested_read_panics_at_once_instead_of_deadlocking_under_load() {
        let (_dir, sm) = store();
        let nested = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sm.read(|_| sm.read(|_| ()))));
        let msg = nested.expect_err("a nested read must panic");
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("already holds the state lock"), "{msg}");
        // The thread is free again: the panic did not leave the mark behind.
        sm.read(|_| ());
        sm.read(|_| ());
    }

    #[tokio::test]
    async fn reads_and_writes_one_after_the_other_on_a_thread_are_fine() {
        let (_dir, mut sm) = store();
        sm.read(|_| ());
        sm.applied_state().await.unwrap();
        sm.build_snapshot().await.unwrap();
        sm.read(|_| ());
    }

    /// A state whose encoding waits until another task of the runtime
    /// opens its gate: it can finish only if encoding leaves the
    /// runtime's threads free.
    #[derive(Clone, Default)]
    struct Gated(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

    impl Machine for Gated {
        fn apply(&mut self, _index: u64, _command: &[u8]) -> Result<Vec<u8>, MachineError> {
            Ok(Vec::new())
        }
        fn snapshot(&self) -> Result<Vec<u8>, MachineError> {
            let (open, cv) = &*self.0;
            let open = open.lock().unwrap();
            let (open, _) = cv.wait_timeout_while(open, std::time::Duration::from_secs(10), |o| !*o).unwrap();
            match *open {
                true => Ok(b"state".to_vec()),
                false => Err(MachineError("the snapshot was encoded on the runtime's only thread".into())),
            }
        }
        fn restore(_bytes: &[u8]) -> Result<Self, MachineError> {
            Ok(Gated::default())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn building_a_snapshot_leaves_the_runtime_free_for_other_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let mut sm = SmStore::<Gated>::open(&db).unwrap();
        let gate = sm.read(|m| m.0.clone());
        tokio::spawn(async move {
            *gate.0.lock().unwrap() = true;
            gate.1.notify_all();
        });
        let snap = sm.build_snapshot().await.expect("encoded while the other task ran");
        assert_eq!(snap.snapshot.into_inner(), b"state");
        let kept = sm.get_current_snapshot().await.unwrap().expect("the snapshot was saved");
        assert_eq!(kept.snapshot.into_inner(), b"state");
    }
}
