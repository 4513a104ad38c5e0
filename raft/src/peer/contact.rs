//! When this node last accepted entries (or a heartbeat) from a leader.
//! openraft 0.9 has no pre-vote; the node builds one on top, and needs to
//! know whether a leader is still talking to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shared clock of the last leader contact; cheap to clone.
#[derive(Clone, Debug)]
pub struct LeaderContact {
    base: Instant,
    /// Milliseconds after `base` plus one; 0 = never.
    last: Arc<AtomicU64>,
}

impl Default for LeaderContact {
    fn default() -> Self {
        Self { base: Instant::now(), last: Arc::new(AtomicU64::new(0)) }
    }
}

impl LeaderContact {
    /// Records a contact now.
    pub fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64 + 1;
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Time since the last contact; `None` if a leader never called.
    pub fn since(&self) -> Option<Duration> {
        match self.last.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.base.elapsed().saturating_sub(Duration::from_millis(ms - 1))),
        }
    }
}
