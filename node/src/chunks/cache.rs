//! Decoded chunks kept in memory, so that live tails (which read the chunk
//! just stored, on every node, once per reader) do not read and decode it
//! from disk each time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::sm::EventLog;

/// Chunks kept; the oldest stored goes first (tails read the newest).
const KEEP: usize = 512;

/// The chunks, and their shas in the order they came.
type Kept = (HashMap<[u8; 32], Arc<EventLog>>, VecDeque<[u8; 32]>);

/// A bounded map from sha256 to decoded chunk.
#[derive(Default)]
pub struct Cache {
    inner: Mutex<Kept>,
}

impl Cache {
    /// The chunk, if it is cached.
    pub fn get(&self, sha: &[u8; 32]) -> Option<Arc<EventLog>> {
        self.inner.lock().expect("chunk cache lock").0.get(sha).cloned()
    }

    /// Keeps `log` under `sha`, forgetting the oldest past [`KEEP`].
    pub fn insert(&self, sha: [u8; 32], log: Arc<EventLog>) {
        let mut g = self.inner.lock().expect("chunk cache lock");
        let (map, order) = &mut *g;
        if map.insert(sha, log).is_none() {
            order.push_back(sha);
        }
        while order.len() > KEEP {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_goes_first_past_the_bound() {
        let c = Cache::default();
        let log = Arc::new(EventLog::default());
        for i in 0..=KEEP as u32 {
            let mut sha = [0u8; 32];
            sha[..4].copy_from_slice(&i.to_le_bytes());
            c.insert(sha, log.clone());
            c.insert(sha, log.clone());
        }
        assert!(c.get(&[0u8; 32]).is_none(), "the first went");
        let mut last = [0u8; 32];
        last[..4].copy_from_slice(&(KEEP as u32).to_le_bytes());
        assert!(c.get(&last).is_some());
        assert_eq!(c.inner.lock().unwrap().1.len(), KEEP);
    }
}
