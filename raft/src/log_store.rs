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
//!
//! Entries this node appends as the leader of the current term are
//! reported flushed at once, before the fsync, so that openraft replicates
//! them while they are written here (see [`crate::Durable`], which keeps
//! them from being applied or told committed before they are on disk).
//! Entries appended as a follower are reported only once synced: a
//! follower's answer counts toward the majority.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{mpsc, Arc, Mutex};

use bm_api::latency::micros;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, RaftLogReader, StorageError, Vote,
};

use crate::codec;
use crate::error::FatalStorage;
use crate::types::{NodeId, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

type Done = mpsc::Sender<Result<(), String>>;

/// Whom to tell once an append is synced: openraft, unless it was told
/// already (a leader's own entries).
type Report = Option<LogFlushed<TypeConfig>>;

/// Work for the flusher thread, done in the order it was sent.
enum Op {
    /// Write these entries, fsync, then report (when openraft still waits
    /// for the report: not for a leader's own entries).
    Append(Vec<Entry<TypeConfig>>, Report),
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
    /// This node's id, when its own entries may be reported flushed early.
    me: Option<NodeId>,
    /// The vote last saved: whether this node leads the current term.
    vote: Arc<Mutex<Option<Vote<NodeId>>>>,
    /// How far the log is on disk.
    durable: crate::Durable,
}

impl LogStore {
    /// Opens (or creates) the log keyspaces in `db` and starts the flusher.
    /// With `me`, the node's id, entries this node appends as leader are
    /// reported flushed before their fsync (the leader's parallel flush);
    /// without, every append is reported once synced.
    pub fn open(db: &Database, me: Option<NodeId>) -> Result<Self, fjall::Error> {
        let logs = db.keyspace("raft_log", KeyspaceCreateOptions::default)?;
        let meta = db.keyspace("raft_meta", KeyspaceCreateOptions::default)?;
        let pending = Arc::new(Mutex::new(BTreeMap::new()));
        let (tx, rx) = mpsc::channel::<Op>();
        let durable = crate::Durable::new(last_written(&logs).ok().flatten());
        let flusher = Flusher {
            db: db.clone(),
            logs: logs.clone(),
            meta: meta.clone(),
            pending: pending.clone(),
            durable: durable.clone(),
        };
        std::thread::Builder::new()
            .name("bm-raft-flush".into())
            .spawn(move || {
                crate::sched::prefer_low_latency();
                flusher.run(rx)
            })
            .expect("spawn log flusher thread");
        let mut this = Self {
            db: db.clone(),
            logs,
            meta,
            pending,
            committed: Default::default(),
            flusher: tx,
            me,
            vote: Default::default(),
            durable,
        };
        let committed = this.read_meta::<Option<LogId<NodeId>>>(COMMITTED).ok().flatten().flatten();
        this.committed = Arc::new(Mutex::new(committed));
        this.vote = Arc::new(Mutex::new(this.read_meta::<Vote<NodeId>>(VOTE).ok().flatten()));
        Ok(this)
    }

    /// How far this log is on disk; the state machine and the peer network
    /// share it (see [`crate::Durable`]).
    pub fn durable(&self) -> crate::Durable {
        self.durable.clone()
    }

    /// Whether `entries` are this node's own, made as the leader of the
    /// term it has a committed vote for: only then may their flush be
    /// reported before the fsync. A follower's vote names another node,
    /// and openraft saves a new vote before it appends what a new leader
    /// sends, so entries from a follower's own earlier term do not pass.
    fn leads(&self, entries: &[Entry<TypeConfig>]) -> bool {
        let Some(me) = self.me else { return false };
        let vote = *self.vote.lock().expect("vote lock");
        let Some(vote) = vote.filter(|v| v.is_committed() && v.leader_id().voted_for() == Some(me)) else {
            return false;
        };
        !entries.is_empty() && entries.iter().all(|e| e.get_log_id().leader_id == *vote.leader_id())
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
        last_written(&self.logs).fatal(ErrorSubject::Logs, ErrorVerb::Read)
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
    durable: crate::Durable,
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
                    let mut committed = None;
                    // Take every append already queued; stop at anything else.
                    while let Ok(more) = rx.try_recv() {
                        match more {
                            Op::Append(e, c) => group.push((e, c)),
                            Op::Committed(c) => committed = Some(c),
                            other => {
                                next = Some(other);
                                break;
                            }
                        }
                    }
                    let res = self.write_group(&group);
                    // The committed id goes into the journal after the
                    // entries it names, never before them.
                    if let Some(c) = committed {
                        let _ = self.meta.insert(COMMITTED, c);
                    }
                    match &res {
                        Ok(last) => self.durable.set(*last),
                        Err(e) => self.durable.fail(e.clone()),
                    }
                    for (_, cb) in group {
                        if let Some(cb) = cb {
                            let res = res.as_ref().map(|_| ()).map_err(|e| std::io::Error::other(e.clone()));
                            cb.log_io_completed(res);
                        }
                    }
                }
                Op::Truncate(from, done) => {
                    let res = self.remove((Bound::Included(from), Bound::Unbounded), true);
                    // What is left on disk ends before `from` now.
                    match last_written(&self.logs).map_err(|e| e.to_string()) {
                        Ok(last) => self.durable.set(last),
                        Err(e) => self.durable.fail(e.clone()),
                    }
                    let _ = done.send(res);
                }
                Op::Purge(upto, done) => {
                    let _ = done.send(self.remove((Bound::Unbounded, Bound::Included(upto)), false));
                }
            }
        }
    }

    /// Writes and syncs a group of appends; gives the id of the last entry
    /// written.
    fn write_group(&self, group: &[(Vec<Entry<TypeConfig>>, Report)]) -> Result<Option<LogId<NodeId>>, String> {
        let started = std::time::Instant::now();
        let mut bytes_written = 0;
        let mut batch = self.db.batch();
        let mut indexes = Vec::new();
        let mut last = None;
        for (entries, _) in group {
            for e in entries {
                let bytes = codec::encode("raft log entry", e).map_err(|e| e.to_string())?;
                let i = e.get_log_id().index;
                last = Some(*e.get_log_id());
                bytes_written += bytes.len();
                batch.insert(&self.logs, key(i), bytes);
                indexes.push(i);
            }
        }
        batch.commit().map_err(|e| e.to_string())?;
        let written = std::time::Instant::now();
        self.db.persist(PersistMode::SyncAll).map_err(|e| e.to_string())?;
        // How long a group took to write and to sync: the first place to
        // look when commits are slow (docs/benchmarks.md).
        tracing::debug!(
            entries = indexes.len(),
            bytes = bytes_written,
            write_micros = micros(written - started),
            sync_micros = micros(written.elapsed()),
            "log entries written and synced"
        );
        let mut pending = self.pending.lock().expect("pending lock");
        for i in indexes {
            pending.remove(&i);
        }
        Ok(last)
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

/// The id of the last entry written to the log keyspace (not counting
/// appends still pending).
fn last_written(logs: &Keyspace) -> Result<Option<LogId<NodeId>>, std::io::Error> {
    let Some(guard) = logs.last_key_value() else { return Ok(None) };
    let (_, v) = guard.into_inner().map_err(std::io::Error::other)?;
    let e: Entry<TypeConfig> = codec::decode("raft log entry", &v).map_err(std::io::Error::other)?;
    Ok(Some(*e.get_log_id()))
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

    /// What replication sends in one AppendEntries: entries from `start`
    /// until their payloads reach [`APPEND_BUDGET`] bytes (at least one).
    ///
    /// openraft asks for up to `max_payload_entries` (300) entries and gives
    /// the call one heartbeat interval. Under log load an entry holds a
    /// batch of many agents' lines (hundreds of KiB), so 300 of them were
    /// tens of MB that no busy follower could take in 50 ms: the call timed
    /// out and the same request went again, and a follower that fell behind
    /// never caught up. A byte budget keeps every call small.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for index in start..end {
            let pending = self.pending.lock().expect("pending lock").get(&index).cloned();
            let entry = match pending {
                Some(e) => e,
                None => match self.logs.get(key(index)).fatal(ErrorSubject::Logs, ErrorVerb::Read)? {
                    Some(v) => codec::decode("raft log entry", &v).fatal(ErrorSubject::Logs, ErrorVerb::Read)?,
                    None => break,
                },
            };
            bytes += match &entry.payload {
                EntryPayload::Normal(p) => p.0.len(),
                _ => 0,
            };
            out.push(entry);
            if bytes >= APPEND_BUDGET {
                break;
            }
        }
        Ok(out)
    }
}

/// Payload bytes one AppendEntries carries at most (unless its first entry
/// alone is larger): about 10 ms of encoding, sending and writing on a
/// busy 2-core node.
pub const APPEND_BUDGET: usize = 1 << 20;

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
        self.write_meta(VOTE, vote, true)?;
        *self.vote.lock().expect("vote lock") = Some(*vote);
        Ok(())
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
        let callback = if self.leads(&entries) {
            // Readers see pending entries, so replication may start now.
            callback.log_io_completed(Ok(()));
            None
        } else {
            Some(callback)
        };
        if let Err(mpsc::SendError(Op::Append(_, cb))) = self.flusher.send(Op::Append(entries, callback)) {
            match cb {
                Some(cb) => cb.log_io_completed(Err(std::io::Error::other("log flusher stopped"))),
                None => self.durable.fail("log flusher stopped".into()),
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Payload;
    use openraft::{CommittedLeaderId, LogId};

    fn entry(index: u64, bytes: usize) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Payload(vec![7; bytes])),
        }
    }

    #[tokio::test]
    async fn one_append_carries_entries_up_to_the_byte_budget_and_at_least_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let mut store = LogStore::open(&db, None).unwrap();
        let big = APPEND_BUDGET / 2 + 1;
        for i in 1..=3 {
            store.logs.insert(key(i), codec::encode("entry", &entry(i, big)).unwrap()).unwrap();
        }
        // Entry 4 is still waiting for its write: it is read from pending.
        store.pending.lock().unwrap().insert(4, entry(4, 10));
        let got = store.limited_get_log_entries(1, 5).await.unwrap();
        assert_eq!(got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), [1, 2]);
        let got = store.limited_get_log_entries(3, 9).await.unwrap();
        assert_eq!(got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), [3, 4], "stops at the first missing");
        store.logs.insert(key(5), codec::encode("entry", &entry(5, 3 * APPEND_BUDGET)).unwrap()).unwrap();
        assert_eq!(store.limited_get_log_entries(5, 6).await.unwrap().len(), 1, "a huge entry still goes alone");
    }
}
