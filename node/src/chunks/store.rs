//! One node's log chunks on local disk: append-only segment files.
//!
//! A busy cluster stores thousands of chunks a second, each a few tens of
//! KB; a file each (like blobs) would cost two fsyncs per chunk, and a
//! key-value store writes each byte twice (its journal, then its tables or
//! blob files), which on a 2-core node was a sixth of the CPU of log
//! ingestion. Chunks instead go to one writer thread, which appends every
//! chunk queued meanwhile to the current segment file with one write and
//! one fsync (a group commit, as the Raft log does), then tells each caller
//! its chunk is durable.
//!
//! A record is a 48-byte header (magic, length, the time it was stored,
//! sha256) and the bytes. The index (sha256 to place) lives in memory and
//! is rebuilt from the headers when the store opens; the last segment's
//! records are checked against their sha256 then, and a torn tail (a
//! crash during a write nobody was told had finished) is cut off. Reads
//! check the sha256 too, so damaged bytes are never served (a reader then
//! fetches the chunk from a peer). Garbage collection drops unreferenced
//! chunks from the index and deletes a segment once none of its chunks is
//! left; chunks of one segment were stored together and are purged
//! together by retention, so little space waits on a straggler.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

/// Bytes of a record's header: magic (4), length (4), time stored (8),
/// sha256 (32).
const HEADER: usize = 48;
/// Marks the start of a record.
const MAGIC: &[u8; 4] = b"BMC1";
/// A segment takes no more once it holds this many bytes.
const SEGMENT_BYTES: u64 = 64 << 20;

/// A chunk to write, and who waits for it to be durable.
type Put = ([u8; 32], Bytes, oneshot::Sender<Result<(), String>>);

/// Where a chunk is.
#[derive(Clone, Copy, Debug)]
struct Place {
    segment: u64,
    /// Of its bytes (after the header).
    offset: u64,
    len: u32,
    /// When it was stored (Unix seconds), for garbage collection's grace.
    stored: u64,
}

/// What the writer and the readers share.
struct Shared {
    dir: PathBuf,
    index: Mutex<HashMap<[u8; 32], Place>>,
    /// Open segments, for reading.
    files: Mutex<BTreeMap<u64, Arc<File>>>,
    /// The segment being appended to (never deleted).
    current: Mutex<u64>,
}

/// Log chunks on this node's disk.
#[derive(Clone)]
pub struct ChunkStore {
    shared: Arc<Shared>,
    writer: mpsc::Sender<Put>,
}

impl ChunkStore {
    /// Opens (or creates) the store in `dir`, rebuilds its index and
    /// starts its writer thread.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot make the log chunk folder {}: {e}", dir.display()))?;
        let mut segments: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("segment-")?.parse().ok())
            .collect();
        segments.sort_unstable();
        let mut index = HashMap::new();
        let mut files = BTreeMap::new();
        for (i, &seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let file = std::fs::OpenOptions::new().read(true).write(true).open(segment_path(dir, seg))?;
            scan(&file, seg, last, &mut index)
                .map_err(|e| anyhow::anyhow!("cannot read log chunk segment {seg} in {}: {e}", dir.display()))?;
            files.insert(seg, Arc::new(file));
        }
        let current = segments.last().copied().unwrap_or(0);
        if files.is_empty() {
            files.insert(current, Arc::new(create_segment(dir, current)?));
        }
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            index: Mutex::new(index),
            files: Mutex::new(files),
            current: Mutex::new(current),
        });
        let (tx, rx) = mpsc::channel::<Put>();
        let writer = shared.clone();
        std::thread::Builder::new().name("bm-chunk-write".into()).spawn(move || write_loop(&writer, &rx))?;
        Ok(Self { shared, writer: tx })
    }

    /// Stores `bytes` under `sha` (the caller checked that it is their
    /// sha256) and returns once they are on disk, fsynced. A chunk already
    /// here is not written again.
    pub async fn put(&self, sha: &[u8; 32], bytes: Bytes) -> std::io::Result<()> {
        if self.has(sha) {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        let stopped = || std::io::Error::other("the chunk writer stopped");
        self.writer.send((*sha, bytes, tx)).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?.map_err(std::io::Error::other)
    }

    /// The chunk stored under `sha`, if this node has it. Bytes that do not
    /// match their sha256 are an error, and the chunk is then forgotten.
    pub fn get(&self, sha: &[u8; 32]) -> std::io::Result<Option<Bytes>> {
        let Some(place) = self.shared.index.lock().expect("chunk index lock").get(sha).copied() else {
            return Ok(None);
        };
        let file = self.shared.files.lock().expect("chunk files lock").get(&place.segment).cloned();
        let Some(file) = file else { return Ok(None) };
        let mut buf = vec![0u8; place.len as usize];
        file.read_exact_at(&mut buf, place.offset)?;
        if Sha256::digest(&buf).as_slice() != sha {
            // Forgotten, so that a copy from a peer is written anew.
            self.shared.index.lock().expect("chunk index lock").remove(sha);
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the stored bytes of segment {} at {} do not match their sha256", place.segment, place.offset),
            ));
        }
        Ok(Some(Bytes::from(buf)))
    }

    /// Whether the chunk is here.
    pub fn has(&self, sha: &[u8; 32]) -> bool {
        self.shared.index.lock().expect("chunk index lock").contains_key(sha)
    }

    /// How many chunks are here.
    pub fn count(&self) -> usize {
        self.shared.index.lock().expect("chunk index lock").len()
    }

    /// Forgets the chunks not in `keep` that were stored at least `grace`
    /// ago (a chunk is stored before the reference to it is committed),
    /// and deletes the segments (but the current one) left without a
    /// chunk; returns how many chunks it forgot.
    pub fn collect_garbage(&self, keep: &std::collections::BTreeSet<[u8; 32]>, grace: std::time::Duration) -> usize {
        let now = unix_secs();
        let (forgotten, live) = {
            let mut index = self.shared.index.lock().expect("chunk index lock");
            let before = index.len();
            index.retain(|sha, p| keep.contains(sha) || now.saturating_sub(p.stored) < grace.as_secs());
            let live: std::collections::BTreeSet<u64> = index.values().map(|p| p.segment).collect();
            (before - index.len(), live)
        };
        let current = *self.shared.current.lock().expect("current segment lock");
        let mut files = self.shared.files.lock().expect("chunk files lock");
        let dead: Vec<u64> = files.keys().copied().filter(|s| *s != current && !live.contains(s)).collect();
        for seg in dead {
            files.remove(&seg);
            if let Err(e) = std::fs::remove_file(segment_path(&self.shared.dir, seg)) {
                tracing::warn!(segment = seg, error = %e, "cannot delete an emptied log chunk segment");
            }
        }
        forgotten
    }
}

fn segment_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("segment-{seg:010}"))
}

/// Creates segment `seg` and makes its name durable.
fn create_segment(dir: &Path, seg: u64) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(segment_path(dir, seg))?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Adds the records of one segment to `index`. In the last segment (the
/// only one a crash can leave half written), every record is checked
/// against its sha256, and the file is cut before the first that is torn
/// or damaged.
fn scan(file: &File, seg: u64, last: bool, index: &mut HashMap<[u8; 32], Place>) -> std::io::Result<()> {
    let size = file.metadata()?.len();
    let mut at = 0u64;
    let mut header = [0u8; HEADER];
    while at + HEADER as u64 <= size {
        file.read_exact_at(&mut header, at)?;
        let len = u32::from_le_bytes(header[4..8].try_into().expect("four bytes"));
        let end = at + HEADER as u64 + u64::from(len);
        if &header[..4] != MAGIC || end > size {
            break;
        }
        let sha: [u8; 32] = header[16..48].try_into().expect("32 bytes");
        if last {
            let mut bytes = vec![0u8; len as usize];
            file.read_exact_at(&mut bytes, at + HEADER as u64)?;
            if Sha256::digest(&bytes).as_slice() != sha {
                break;
            }
        }
        let stored = u64::from_le_bytes(header[8..16].try_into().expect("eight bytes"));
        index.insert(sha, Place { segment: seg, offset: at + HEADER as u64, len, stored });
        at = end;
    }
    if at < size {
        if !last {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a damaged record at byte {at} of {size}, before the last segment"),
            ));
        }
        tracing::warn!(segment = seg, at, size, "cutting off the torn tail of the log chunk segment");
        file.set_len(at)?;
        file.sync_all()?;
    }
    Ok(())
}

/// The writer thread: one write and one fsync for everything queued.
fn write_loop(shared: &Shared, rx: &mpsc::Receiver<Put>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
        }
        let res = write_group(shared, &group).map_err(|e| e.to_string());
        if let Err(e) = &res {
            tracing::error!(error = %e, "cannot write log chunks");
        }
        for (_, _, done) in group {
            let _ = done.send(res.clone());
        }
    }
}

fn write_group(shared: &Shared, group: &[Put]) -> std::io::Result<()> {
    let stored = unix_secs();
    let mut seen = std::collections::HashSet::new();
    let fresh: Vec<&Put> = {
        let index = shared.index.lock().expect("chunk index lock");
        group.iter().filter(|(sha, _, _)| !index.contains_key(sha) && seen.insert(*sha)).collect()
    };
    if fresh.is_empty() {
        return Ok(());
    }
    let total: usize = fresh.iter().map(|(_, b, _)| HEADER + b.len()).sum();
    let mut seg = *shared.current.lock().expect("current segment lock");
    let mut file = shared.files.lock().expect("chunk files lock")[&seg].clone();
    let mut at = file.metadata()?.len();
    if at > 0 && at + total as u64 > SEGMENT_BYTES {
        seg += 1;
        file = Arc::new(create_segment(&shared.dir, seg)?);
        shared.files.lock().expect("chunk files lock").insert(seg, file.clone());
        *shared.current.lock().expect("current segment lock") = seg;
        at = 0;
    }
    let mut buf = Vec::with_capacity(total);
    let mut places = Vec::with_capacity(fresh.len());
    for (sha, bytes, _) in &fresh {
        let len = u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("a log chunk over 4 GiB"))?;
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&stored.to_le_bytes());
        buf.extend_from_slice(sha);
        places.push((*sha, Place { segment: seg, offset: at + (buf.len() as u64), len, stored }));
        buf.extend_from_slice(bytes);
    }
    if let Err(e) = file.write_all_at(&buf, at) {
        // Leave no half-written record in the way of the next group.
        let _ = file.set_len(at);
        return Err(e);
    }
    file.sync_data()?;
    shared.index.lock().expect("chunk index lock").extend(places);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(b: &[u8]) -> [u8; 32] {
        Sha256::digest(b).into()
    }

    #[tokio::test]
    async fn chunks_survive_a_reopen_and_unreferenced_ones_are_collected() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (Bytes::from(vec![7u8; 50_000]), Bytes::from_static(b"short"));
        {
            let store = ChunkStore::open(tmp.path()).unwrap();
            // Many at once share the writer's groups.
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
            store.put(&sha(&b), b.clone()).await.unwrap();
        }
        let store = ChunkStore::open(tmp.path()).unwrap();
        assert_eq!(store.count(), 52, "each chunk once");
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

    #[tokio::test]
    async fn a_torn_tail_is_cut_off_and_damaged_bytes_are_never_served() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (Bytes::from(vec![1u8; 3000]), Bytes::from(vec![2u8; 3000]));
        {
            let store = ChunkStore::open(tmp.path()).unwrap();
            store.put(&sha(&a), a.clone()).await.unwrap();
            store.put(&sha(&b), b.clone()).await.unwrap();
        }
        let seg = segment_path(tmp.path(), 0);
        // A crash in the middle of a later write: a header and half its bytes.
        let mut torn = Vec::from(&MAGIC[..]);
        torn.extend_from_slice(&5000u32.to_le_bytes());
        torn.extend_from_slice(&[0u8; 40]);
        torn.extend_from_slice(&[9u8; 100]);
        let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
        std::io::Write::write_all(&mut f, &torn).unwrap();
        drop(f);
        let store = ChunkStore::open(tmp.path()).unwrap();
        assert_eq!(store.count(), 2);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), 2 * (HEADER as u64 + 3000), "the tail was cut");
        let c = Bytes::from(vec![3u8; 10]);
        store.put(&sha(&c), c.clone()).await.unwrap();
        assert_eq!(store.get(&sha(&c)).unwrap().unwrap(), c, "appending goes on after the cut");
        // A flipped byte in a stored chunk: reading it is an error, not bytes.
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.write_all_at(b"X", HEADER as u64 + 10).unwrap();
        let e = store.get(&sha(&a)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(!store.has(&sha(&a)), "forgotten");
        assert_eq!(store.get(&sha(&b)).unwrap().unwrap(), b);
        // A good copy (from a peer) is stored again.
        store.put(&sha(&a), a.clone()).await.unwrap();
        assert_eq!(store.get(&sha(&a)).unwrap().unwrap(), a);
    }

    #[tokio::test]
    async fn a_full_segment_is_followed_by_a_new_one_and_emptied_ones_are_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(tmp.path()).unwrap();
        let big: Vec<Bytes> = (0..3u8).map(|i| Bytes::from(vec![i; (SEGMENT_BYTES / 2) as usize])).collect();
        for b in &big {
            store.put(&sha(b), b.clone()).await.unwrap();
        }
        let segments = || std::fs::read_dir(tmp.path()).unwrap().count();
        assert_eq!(segments(), 3, "half a segment each: no two fit in one");
        let keep = std::collections::BTreeSet::from([sha(&big[1])]);
        assert_eq!(store.collect_garbage(&keep, std::time::Duration::ZERO), 2);
        assert_eq!(segments(), 2, "the first went; the kept one's and the current one stay");
        assert_eq!(store.get(&sha(&big[1])).unwrap().unwrap(), big[1]);
        drop(store);
        let store = ChunkStore::open(tmp.path()).unwrap();
        assert_eq!(store.count(), 2, "the current segment's unreferenced chunk is found again on reopen");
    }
}
