//! Hashes of uploads kept up to date as their pieces arrive.
//!
//! A node receiving a blob piece by piece from a peer checks the whole
//! against the sha256 the last piece names before keeping it. Reading the
//! staged file back to hash it took about 165 ms for 64 MiB on the
//! standard machine, after the transfer, on every peer (docs/benchmarks.md);
//! hashing each piece as it is written takes that off the end. The file is
//! still read back whenever the running hash cannot vouch for it: a piece
//! sent twice, overlapping pieces, a gap, or a node restarted mid-upload.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Pieces held while an earlier one is still missing, per upload: more
/// than the pieces one sender keeps in flight (`replicate::WINDOW`).
const MAX_EARLY: usize = 16;

/// The running hashes of the uploads this node is receiving.
#[derive(Default)]
pub struct RunningHashes(Mutex<HashMap<String, Arc<Mutex<Running>>>>);

impl std::fmt::Debug for RunningHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunningHashes({} uploads)", self.0.lock().expect("running hashes lock").len())
    }
}

/// One upload's hash of its bytes from 0 to `next`, and pieces that came
/// ahead of a missing one.
struct Running {
    next: u64,
    hasher: Sha256,
    early: BTreeMap<u64, Bytes>,
    /// A byte was offered twice or out of place: only the file can tell.
    spoiled: bool,
    touched: Instant,
}

impl Running {
    fn new() -> Self {
        Self { next: 0, hasher: Sha256::new(), early: BTreeMap::new(), spoiled: false, touched: Instant::now() }
    }

    fn spoil(&mut self) {
        self.spoiled = true;
        self.early.clear();
    }
}

impl RunningHashes {
    /// Adds a piece of `upload` written at `offset` (once its write succeeded).
    pub fn feed(&self, upload: &str, offset: u64, bytes: &Bytes) {
        let entry = self
            .0
            .lock()
            .expect("running hashes lock")
            .entry(upload.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(Running::new())))
            .clone();
        let mut guard = entry.lock().expect("running hash lock");
        let r = &mut *guard;
        r.touched = Instant::now();
        if r.spoiled {
            return;
        }
        if offset < r.next || r.early.contains_key(&offset) {
            return r.spoil();
        }
        if offset > r.next {
            if r.early.len() >= MAX_EARLY {
                return r.spoil();
            }
            r.early.insert(offset, bytes.clone());
            return;
        }
        r.hasher.update(bytes);
        r.next += bytes.len() as u64;
        while let Some(b) = r.early.remove(&r.next) {
            r.hasher.update(&b);
            r.next += b.len() as u64;
        }
    }

    /// The sha256 of the whole of `upload` ending with `last` at `offset`,
    /// when every earlier byte was added exactly once and in place; `None`
    /// when the file must be read back. Forgets the upload either way.
    pub fn finish(&self, upload: &str, offset: u64, last: &[u8]) -> Option<[u8; 32]> {
        let entry = self.0.lock().expect("running hashes lock").remove(upload);
        let entry = match entry {
            Some(e) => e,
            // A blob in one piece: nothing came before it.
            None if offset == 0 => Arc::new(Mutex::new(Running::new())),
            None => return None,
        };
        let mut r = entry.lock().expect("running hash lock");
        if r.spoiled || r.next != offset || !r.early.is_empty() {
            return None;
        }
        let mut h = std::mem::take(&mut r.hasher);
        h.update(last);
        Some(h.finalize().into())
    }

    /// Forgets `upload` (its blob was already here).
    pub fn forget(&self, upload: &str) {
        self.0.lock().expect("running hashes lock").remove(upload);
    }

    /// Forgets uploads that received nothing for `age` (their senders gave up).
    pub fn forget_idle(&self, age: Duration) {
        self.0
            .lock()
            .expect("running hashes lock")
            .retain(|_, r| r.lock().expect("running hash lock").touched.elapsed() < age);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[test]
    fn pieces_in_any_order_add_up_to_the_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let h = RunningHashes::default();
        for at in [300usize, 100, 0, 200] {
            h.feed("u", at as u64, &Bytes::copy_from_slice(&data[at..at + 100]));
        }
        assert_eq!(h.finish("u", 400, &data[400..]), Some(whole(&data)));
        // Forgotten once finished.
        assert_eq!(h.finish("u", 400, &data[400..]), None);
        // A blob in one piece.
        assert_eq!(h.finish("v", 0, &data), Some(whole(&data)));
    }

    #[test]
    fn a_repeat_a_gap_or_an_overlap_leaves_it_to_the_file() {
        let data = vec![5u8; 400];
        let piece = |at: usize| Bytes::copy_from_slice(&data[at..at + 100]);
        let h = RunningHashes::default();
        h.feed("repeat", 0, &piece(0));
        h.feed("repeat", 0, &piece(0));
        assert_eq!(h.finish("repeat", 100, &data[100..]), None);
        h.feed("gap", 0, &piece(0));
        h.feed("gap", 200, &piece(200));
        assert_eq!(h.finish("gap", 300, &data[300..]), None);
        h.feed("overlap", 0, &piece(0));
        h.feed("overlap", 150, &piece(150));
        h.feed("overlap", 100, &piece(100));
        assert_eq!(h.finish("overlap", 250, &data[250..]), None);
        h.feed("idle", 0, &piece(0));
        h.forget_idle(Duration::ZERO);
        assert_eq!(h.finish("idle", 100, &data[100..]), None);
        h.feed("known", 0, &piece(0));
        h.forget("known");
        assert_eq!(h.finish("known", 100, &data[100..]), None);
    }
}
