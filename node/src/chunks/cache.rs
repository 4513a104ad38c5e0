//! Decoded chunks kept in memory, so that live tails (which read the chunk
//! just stored, on every node, once per reader) do not read and decode it
//! from disk each time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::sm::EventLog;

/// Bytes of chunks kept (packed size); the oldest stored goes first (tails
/// read the newest).
const KEEP_BYTES: u64 = 64 << 20;

/// The chunks, their shas in the order they came, and their bytes in all.
#[derive(Default)]
struct Kept {
    map: HashMap<[u8; 32], Arc<EventLog>>,
    order: VecDeque<[u8; 32]>,
    bytes: u64,
}

/// A map from sha256 to decoded chunk, bounded by bytes.
#[derive(Default)]
pub struct Cache {
    inner: Mutex<Kept>,
}

impl Cache {
    /// The chunk, if it is cached.
    pub fn get(&self, sha: &[u8; 32]) -> Option<Arc<EventLog>> {
        self.inner.lock().expect("chunk cache lock").map.get(sha).cloned()
    }

    /// Keeps `log` under `sha`, forgetting the oldest past [`KEEP_BYTES`].
    pub fn insert(&self, sha: [u8; 32], log: Arc<EventLog>) {
        let mut k = self.inner.lock().expect("chunk cache lock");
        let size = log.packed_len();
        if k.map.insert(sha, log).is_none() {
            k.order.push_back(sha);
            k.bytes += size;
        }
        while k.bytes > KEEP_BYTES {
            let Some(old) = k.order.pop_front() else { break };
            if let Some(gone) = k.map.remove(&old) {
                k.bytes -= gone.packed_len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sm::EventIn;

    #[test]
    fn the_oldest_goes_first_past_the_bound() {
        let c = Cache::default();
        let line = "x".repeat(1 << 20);
        let event = |i: u32| EventIn {
            stream: "stdout".into(),
            task: None,
            time: chrono::Utc::now(),
            payload: format!("{i}{line}"),
        };
        let sha = |i: u32| {
            let mut s = [0u8; 32];
            s[..4].copy_from_slice(&i.to_le_bytes());
            s
        };
        // 100 chunks of a little over 1 MiB: only the newest 63 fit in 64 MiB.
        for i in 0..100u32 {
            let log = Arc::new(EventLog::from_events([event(i)]).unwrap());
            c.insert(sha(i), log.clone());
            c.insert(sha(i), log);
        }
        assert!(c.get(&sha(36)).is_none(), "an old one went");
        assert!(c.get(&sha(37)).is_some() && c.get(&sha(99)).is_some());
        let k = c.inner.lock().unwrap();
        assert_eq!((k.order.len(), k.map.len()), (63, 63));
        assert!(k.bytes <= KEEP_BYTES);
    }
}
