//! One node's log chunks on local disk: a fjall keyspace keyed by sha256.
//!
//! A busy cluster stores thousands of chunks a second, each a few tens of
//! KB; a file each (like blobs) would cost two fsyncs per chunk. Chunks
//! instead go to one writer thread, which writes every chunk queued
//! meanwhile in one batch and fsyncs once (a group commit, as the Raft log
//! does), then tells each caller its chunk is durable. Values are kept
//! apart from the keys (fjall's key-value separation), so compaction moves
//! keys, not log text.

use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode};
use tokio::sync::oneshot;

/// A chunk to write, and who waits for it to be durable.
type Put = (Vec<u8>, Bytes, oneshot::Sender<Result<(), String>>);

/// Log chunks on this node's disk.
#[derive(Clone)]
pub struct ChunkStore {
    chunks: Keyspace,
    writer: mpsc::Sender<Put>,
}

impl ChunkStore {
    /// Opens (or creates) the store in `dir` and starts its writer thread.
    pub fn open(dir: &std::path::Path) -> anyhow::Result<Self> {
        let db = Database::builder(dir)
            .open()
            .map_err(|e| anyhow::anyhow!("cannot open the log chunk store in {}: {e}", dir.display()))?;
        // Uncompressed: lz4 on every node cost more CPU (a profile of 16
        // agents logging put it near the top) than the disk it saved.
        let separate = KvSeparationOptions::default().compression(CompressionType::None);
        let options = || KeyspaceCreateOptions::default().with_kv_separation(Some(separate.clone()));
        let chunks = db.keyspace("chunks", options)?;
        let (tx, rx) = mpsc::channel::<Put>();
        let (db2, ks) = (db.clone(), chunks.clone());
        std::thread::Builder::new().name("bm-chunk-write".into()).spawn(move || write_loop(&db2, &ks, &rx))?;
        Ok(Self { chunks, writer: tx })
    }

    /// Stores `bytes` under `sha` (the caller checked that it is their
    /// sha256) and returns once they are on disk, fsynced. Storing a chunk
    /// that is already here rewrites it, harmlessly.
    pub async fn put(&self, sha: &[u8; 32], bytes: Bytes) -> std::io::Result<()> {
        let (tx, rx) = oneshot::channel();
        let stopped = || std::io::Error::other("the chunk writer stopped");
        self.writer.send((sha.to_vec(), bytes, tx)).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?.map_err(std::io::Error::other)
    }

    /// The chunk stored under `sha`, if this node has it.
    pub fn get(&self, sha: &[u8; 32]) -> std::io::Result<Option<Bytes>> {
        let Some(v) = self.chunks.get(sha).map_err(std::io::Error::other)? else { return Ok(None) };
        if v.len() < STAMP {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "a stored chunk lacks its time stamp"));
        }
        Ok(Some(Bytes::copy_from_slice(&v[STAMP..])))
    }

    /// Whether the chunk is here.
    pub fn has(&self, sha: &[u8; 32]) -> bool {
        self.chunks.contains_key(sha).unwrap_or(false)
    }

    /// How many chunks are here.
    pub fn count(&self) -> usize {
        self.chunks.iter().count()
    }

    /// Deletes the chunks not in `keep` that were stored at least `grace`
    /// ago (a chunk is stored before the reference to it is committed);
    /// returns how many.
    pub fn collect_garbage(&self, keep: &std::collections::BTreeSet<[u8; 32]>, grace: std::time::Duration) -> usize {
        let now = unix_secs();
        let mut doomed = Vec::new();
        for kv in self.chunks.iter() {
            let Ok((k, v)) = kv.into_inner() else { continue };
            let Ok(sha) = <[u8; 32]>::try_from(&k[..]) else { continue };
            if keep.contains(&sha) || v.len() < STAMP {
                continue;
            }
            let at = u64::from_le_bytes(v[..STAMP].try_into().expect("eight bytes"));
            if now.saturating_sub(at) >= grace.as_secs() {
                doomed.push(sha);
            }
        }
        for sha in &doomed {
            let _ = self.chunks.remove(sha);
        }
        doomed.len()
    }
}

/// Bytes of the little-endian Unix time each value starts with.
const STAMP: usize = 8;

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The writer thread: one batch and one fsync for everything queued.
fn write_loop(db: &Database, chunks: &Keyspace, rx: &mpsc::Receiver<Put>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
        }
        let stamp = unix_secs().to_le_bytes();
        let mut batch = db.batch();
        for (sha, bytes, _) in &group {
            let mut v = Vec::with_capacity(STAMP + bytes.len());
            v.extend_from_slice(&stamp);
            v.extend_from_slice(bytes);
            batch.insert(chunks, sha.as_slice(), v);
        }
        let res = batch.commit().and_then(|()| db.persist(PersistMode::SyncAll)).map_err(|e| e.to_string());
        for (_, _, done) in group {
            let _ = done.send(res.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn sha(b: &[u8]) -> [u8; 32] {
        Sha256::digest(b).into()
    }

    #[tokio::test]
    async fn chunks_survive_a_reopen_and_unreferenced_ones_are_collected() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (Bytes::from(vec![7u8; 50_000]), Bytes::from_static(b"short"));
        {
            let store = ChunkStore::open(tmp.path()).unwrap();
            // Many at once share the writer's batches.
            let puts: Vec<_> = (0..50u8)
                .map(|i| {
                    let s = store.clone();
                    let bytes = Bytes::from(vec![i; 1000]);
                    tokio::spawn(async move { s.put(&sha(&bytes), bytes).await })
                })
                .collect();
            for p in puts {
                p.await.unwrap().unwrap();
            }
            store.put(&sha(&a), a.clone()).await.unwrap();
            store.put(&sha(&b), b.clone()).await.unwrap();
        }
        let store = ChunkStore::open(tmp.path()).unwrap();
        assert_eq!(store.get(&sha(&a)).unwrap().unwrap(), a);
        assert_eq!(store.get(&sha(&b)).unwrap().unwrap(), b);
        assert!(store.get(&sha(b"never stored")).unwrap().is_none());
        assert!(store.has(&sha(&[3u8; 1000])));

        let keep = std::collections::BTreeSet::from([sha(&a)]);
        assert_eq!(store.collect_garbage(&keep, std::time::Duration::from_secs(3600)), 0, "too young to go");
        assert_eq!(store.collect_garbage(&keep, std::time::Duration::ZERO), 51);
        assert!(store.has(&sha(&a)) && !store.has(&sha(&b)));
        assert_eq!(store.count(), 1);
    }
}
