//! The Raft log on fjall.
//!
//! Entries live in their own keyspace keyed by big-endian index, so a range
//! scan is a log range. Vote, committed id and last purged id live in a small
//! meta keyspace.
//!
//! openraft 0.9 calls `append` once per client write, from its core loop, so
//! `append` must not wait for the disk. It parks the entries in a pending
//! map (which readers see at once) and hands them to one flusher thread. The
//! flusher writes every append that queued up meanwhile in one batch, fsyncs
//! once, and only then tells openraft they are durable: a group commit, so
//! many clients share each fsync. Truncate and purge go through the same
//! thread, in order, and their callers wait for them.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{mpsc, Arc, Mutex};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, RaftLogReader, StorageError, Vote};

use crate::codec;
use crate::error::FatalStorage;
use crate::types::{NodeId, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

type Done = mpsc::Sender<Result<(), String>>;

/// Work for the flusher thread, done in the order it was sent.
enum Op {
    /// Write these entries, fsync, then report.
    Append(Vec<Entry<TypeConfig>>, LogFlushed<TypeConfig>),
    /// Remove entries from this index on, fsync.
    Truncate(u64, Done),
    /// Remove entries up to and including this index.
    Purge(u64, Done),
    /// Record the committed log id (encoded) with the next write; never waited for.
    Committed(Vec<u8>),
}

/// Durable Raft log storage on a fjall database.
#[derive(Clone)]
pub struct LogStore {
    db: Database,
    logs: Keyspace,
    meta: Keyspace,
    /// Appended, not yet written to fjall: readers look here too.
    pending: Arc<Mutex<BTreeMap<u64, Entry<TypeConfig>>>>,
    /// The committed id last saved, as openraft reads it back.
    committed: Arc<Mutex<Option<LogId<NodeId>>>>,
    flusher: mpsc::Sender<Op>,
}

impl LogStore {
    /// Opens (or creates) the log keyspaces in `db` and starts the flusher.
    pub fn open(db: &Database) -> Result<Self, fjall::Error> {
        let logs = db.keyspace("raft_log", KeyspaceCreateOptions::default)?;
        let meta = db.keyspace("raft_meta", KeyspaceCreateOptions::default)?;
        let pending = Arc::new(Mutex::new(BTreeMap::new()));
        let (tx, rx) = mpsc::channel::<Op>();
        let flusher = Flusher { db: db.clone(), logs: logs.clone(), meta: meta.clone(), pending: pending.clone() };
        std::thread::Builder::new()
            .name("bm-raft-flush".into())
            .spawn(move || flusher.run(rx))
            .expect("spawn log flusher thread");
        let mut this = Self { db: db.clone(), logs, meta, pending, committed: Default::default(), flusher: tx };
        let committed = this.read_meta::<Option<LogId<NodeId>>>(COMMITTED).ok().flatten().flatten();
        this.committed = Arc::new(Mutex::new(committed));
        Ok(this)
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError<NodeId>> {
        let Some(bytes) = self.meta.get(key).fatal(ErrorSubject::Store, ErrorVerb::Read)? else {
            return Ok(None);
        };
        let v = codec::decode("raft metadata", &bytes).fatal(ErrorSubject::Store, ErrorVerb::Read)?;
        Ok(Some(v))
    }

    fn write_meta<T: serde::Serialize>(&self, key: &[u8], v: &T, sync: bool) -> Result<(), StorageError<NodeId>> {
        let bytes = codec::encode("raft metadata", v).fatal(ErrorSubject::Store, ErrorVerb::Write)?;
        self.meta.insert(key, bytes).fatal(ErrorSubject::Store, ErrorVerb::Write)?;
        if sync {
            self.db.persist(PersistMode::SyncAll).fatal(ErrorSubject::Store, ErrorVerb::Write)?;
        }
        Ok(())
    }

    /// The id of the last entry stored (appended, or purged behind a
    /// snapshot): what a pre-vote compares to know whether a candidate's
    /// log is at least as complete as this node's.
    pub fn last_log_id(&self) -> Option<LogId<NodeId>> {
        let last = self.last_entry_id().ok().flatten();
        last.or_else(|| self.read_meta::<Option<LogId<NodeId>>>(LAST_PURGED).ok().flatten().flatten())
    }

    fn last_entry_id(&self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        if let Some((_, e)) = self.pending.lock().expect("pending lock").last_key_value() {
            return Ok(Some(*e.get_log_id()));
        }
        let Some(guard) = self.logs.last_key_value() else { return Ok(None) };
        let (_, v) = guard.into_inner().fatal(ErrorSubject::Logs, ErrorVerb::Read)?;
        let e: Entry<TypeConfig> = codec::decode("raft log entry", &v).fatal(ErrorSubject::Logs, ErrorVerb::Read)?;
        Ok(Some(*e.get_log_id()))
    }

    /// Sends an op to the flusher and waits for it.
    fn wait_for(&self, op: impl FnOnce(Done) -> Op, verb: ErrorVerb) -> Result<(), StorageError<NodeId>> {
        let (tx, rx) = mpsc::channel();
        let stopped = || std::io::Error::other("log flusher stopped");
        self.flusher.send(op(tx)).map_err(|_| stopped()).fatal(ErrorSubject::Logs, verb)?;
        rx.recv()
            .map_err(|_| stopped())
            .fatal(ErrorSubject::Logs, verb)?
            .map_err(std::io::Error::other)
            .fatal(ErrorSubject::Logs, verb)
    }
}

/// The thread that owns writes to the log keyspace.
struct Flusher {
    db: Database,
    logs: Keyspace,
    meta: Keyspace,
    pending: Arc<Mutex<BTreeMap<u64, Entry<TypeConfig>>>>,
}

impl Flusher {
    fn run(self, rx: mpsc::Receiver<Op>) {
        let mut next = None;
        loop {
            let op = match next.take() {
                Some(op) => op,
                None => match rx.recv() {
                    Ok(op) => op,
                    Err(_) => return,
                },
            };
            match op {
                Op::Committed(c) => {
                    // Best effort, unsynced: losing it only means re-applying.
                    let _ = self.meta.insert(COMMITTED, c);
                }
                Op::Append(entries, cb) => {
                    let mut group = vec![(entries, cb)];
                    // Take every append already queued; stop at anything else.
                    while let Ok(more) = rx.try_recv() {
                        match more {
                            Op::Append(e, c) => group.push((e, c)),
                            Op::Committed(c) => {
                                let _ = self.meta.insert(COMMITTED, c);
                            }
                            other => {
                                next = Some(other);
                                break;
                            }
                        }
                    }
                    let res = self.write_group(&group);
                    for (_, cb) in group {
                        cb.log_io_completed(res.as_ref().map(|_| ()).map_err(|e| std::io::Error::other(e.clone())));
                    }
                }
                Op::Truncate(from, done) => {
                    let _ = done.send(self.remove((Bound::Included(from), Bound::Unbounded), true));
                }
                Op::Purge(upto, done) => {
                    let _ = done.send(self.remove((Bound::Unbounded, Bound::Included(upto)), false));
                }
            }
        }
    }

    fn write_group(&self, group: &[(Vec<Entry<TypeConfig>>, LogFlushed<TypeConfig>)]) -> Result<(), String> {
        let mut batch = self.db.batch();
        let mut indexes = Vec::new();
        for (entries, _) in group {
            for e in entries {
                let bytes = codec::encode("raft log entry", e).map_err(|e| e.to_string())?;
                let i = e.get_log_id().index;
                batch.insert(&self.logs, key(i), bytes);
                indexes.push(i);
            }
        }
        batch.commit().map_err(|e| e.to_string())?;
        self.db.persist(PersistMode::SyncAll).map_err(|e| e.to_string())?;
        let mut pending = self.pending.lock().expect("pending lock");
        for i in indexes {
            pending.remove(&i);
        }
        Ok(())
    }

    fn remove(&self, range: (Bound<u64>, Bound<u64>), sync: bool) -> Result<(), String> {
        self.pending.lock().expect("pending lock").retain(|i, _| !range.contains(i));
        let (lo, hi) = key_bounds(range);
        let mut batch = self.db.batch();
        for kv in self.logs.range((lo, hi)) {
            batch.remove(&self.logs, kv.key().map_err(|e| e.to_string())?);
        }
        batch.commit().map_err(|e| e.to_string())?;
        if sync {
            self.db.persist(PersistMode::SyncAll).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_bounds(range: impl RangeBounds<u64>) -> (Bound<[u8; 8]>, Bound<[u8; 8]>) {
    let map = |b: Bound<&u64>| match b {
        Bound::Included(i) => Bound::Included(key(*i)),
        Bound::Excluded(i) => Bound::Excluded(key(*i)),
        Bound::Unbounded => Bound::Unbounded,
    };
    (map(range.start_bound()), map(range.end_bound()))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        // Pending first: an entry leaves it only after it is in fjall, so
        // reading in this order never misses one.
        let mut out: BTreeMap<u64, Entry<TypeConfig>> = {
            let pending = self.pending.lock().expect("pending lock");
            pending.range(range.clone()).map(|(i, e)| (*i, e.clone())).collect()
        };
        let (lo, hi) = key_bounds(range);
        for kv in self.logs.range((lo, hi)) {
            let (_, v) = kv.into_inner().fatal(ErrorSubject::Logs, ErrorVerb::Read)?;
            let e: Entry<TypeConfig> =
                codec::decode("raft log entry", &v).fatal(ErrorSubject::Logs, ErrorVerb::Read)?;
            out.entry(e.get_log_id().index).or_insert(e);
        }
        Ok(out.into_values().collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged: Option<LogId<NodeId>> = self.read_meta(LAST_PURGED)?;
        let last = self.last_entry_id()?.or(last_purged);
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write_meta(VOTE, vote, true)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        // Never wait for the disk here: openraft calls this from its core loop
        // on every commit, and a wait behind an fsync would serialise writes.
        // Unsynced: losing it only means re-applying from the snapshot.
        *self.committed.lock().expect("committed lock") = committed;
        let bytes = codec::encode("raft metadata", &committed).fatal(ErrorSubject::Store, ErrorVerb::Write)?;
        let _ = self.flusher.send(Op::Committed(bytes));
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(*self.committed.lock().expect("committed lock"))
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        {
            let mut pending = self.pending.lock().expect("pending lock");
            for e in &entries {
                pending.insert(e.get_log_id().index, e.clone());
            }
        }
        if let Err(mpsc::SendError(Op::Append(_, cb))) = self.flusher.send(Op::Append(entries, callback)) {
            cb.log_io_completed(Err(std::io::Error::other("log flusher stopped")));
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.wait_for(|d| Op::Truncate(log_id.index, d), ErrorVerb::Delete)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // Record the purge point first: a crash between the two steps leaves
        // extra entries below it, which are ignored, never a hole.
        self.write_meta(LAST_PURGED, &log_id, true)?;
        self.wait_for(|d| Op::Purge(log_id.index, d), ErrorVerb::Delete)
    }
}
