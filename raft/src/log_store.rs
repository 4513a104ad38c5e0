//! The Raft log on fjall.
//!
//! Entries live in their own keyspace keyed by big-endian index, so a range
//! scan is a log range. Vote, committed id and last purged id live in a small
//! meta keyspace. Appends are written at once (so a reader sees them) and
//! made durable by one flusher thread that fsyncs the journal and only then
//! tells openraft the entries are on disk; appends that arrive while an fsync
//! runs share the next one, which is what lets many clients commit per fsync.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::mpsc;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, RaftLogReader, StorageError, Vote};

use crate::codec;
use crate::error::FatalStorage;
use crate::types::{NodeId, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// Durable Raft log storage on a fjall database.
#[derive(Clone)]
pub struct LogStore {
    db: Database,
    logs: Keyspace,
    meta: Keyspace,
    flusher: mpsc::Sender<LogFlushed<TypeConfig>>,
}

impl LogStore {
    /// Opens (or creates) the log keyspaces in `db` and starts the flusher.
    pub fn open(db: &Database) -> Result<Self, fjall::Error> {
        let logs = db.keyspace("raft_log", KeyspaceCreateOptions::default)?;
        let meta = db.keyspace("raft_meta", KeyspaceCreateOptions::default)?;
        let (tx, rx) = mpsc::channel::<LogFlushed<TypeConfig>>();
        let flush_db = db.clone();
        std::thread::Builder::new()
            .name("bm-raft-flush".into())
            .spawn(move || flusher(flush_db, rx))
            .expect("spawn log flusher thread");
        Ok(Self { db: db.clone(), logs, meta, flusher: tx })
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

    fn last_entry_id(&self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let Some(guard) = self.logs.last_key_value() else { return Ok(None) };
        let (_, v) = guard.into_inner().fatal(ErrorSubject::Logs, ErrorVerb::Read)?;
        let e: Entry<TypeConfig> = codec::decode("raft log entry", &v).fatal(ErrorSubject::Logs, ErrorVerb::Read)?;
        Ok(Some(*e.get_log_id()))
    }

    /// Removes every entry with index in `range` in one atomic batch.
    fn remove_range(&self, range: impl RangeBounds<u64>) -> Result<(), StorageError<NodeId>> {
        let (lo, hi) = key_bounds(range);
        let mut batch = self.db.batch();
        for kv in self.logs.range((lo, hi)) {
            let k = kv.key().fatal(ErrorSubject::Logs, ErrorVerb::Delete)?;
            batch.remove(&self.logs, k);
        }
        batch.commit().fatal(ErrorSubject::Logs, ErrorVerb::Delete)
    }
}

/// The flusher: fsync once for every run of appends that queued up meanwhile,
/// then report each of them, in order.
fn flusher(db: Database, rx: mpsc::Receiver<LogFlushed<TypeConfig>>) {
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        while let Ok(more) = rx.try_recv() {
            waiting.push(more);
        }
        let res = db.persist(PersistMode::SyncAll);
        for cb in waiting {
            let r = match &res {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            cb.log_io_completed(r);
        }
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
        let (lo, hi) = key_bounds(range);
        let mut out = Vec::new();
        for kv in self.logs.range((lo, hi)) {
            let (_, v) = kv.into_inner().fatal(ErrorSubject::Logs, ErrorVerb::Read)?;
            let e = codec::decode("raft log entry", &v).fatal(ErrorSubject::Logs, ErrorVerb::Read)?;
            out.push(e);
        }
        Ok(out)
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
        // Not synced: losing it only means re-applying from the snapshot.
        self.write_meta(COMMITTED, &committed, false)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.read_meta::<Option<LogId<NodeId>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = self.db.batch();
        for e in entries {
            let bytes = codec::encode("raft log entry", &e).fatal(ErrorSubject::Logs, ErrorVerb::Write)?;
            batch.insert(&self.logs, key(e.get_log_id().index), bytes);
        }
        batch.commit().fatal(ErrorSubject::Logs, ErrorVerb::Write)?;
        if let Err(mpsc::SendError(cb)) = self.flusher.send(callback) {
            cb.log_io_completed(Err(std::io::Error::other("log flusher stopped")));
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.remove_range(log_id.index..)?;
        self.db.persist(PersistMode::SyncAll).fatal(ErrorSubject::Logs, ErrorVerb::Delete)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // Record the purge point first: a crash between the two steps leaves
        // extra entries below it, which are ignored, never a hole.
        self.write_meta(LAST_PURGED, &log_id, true)?;
        self.remove_range(..=log_id.index)
    }
}
