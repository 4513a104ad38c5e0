//! Worker heartbeats: every call an agent makes is one. The leader keeps
//! when it last heard from each worker (in memory: heartbeats are too
//! frequent to replicate) and reports workers that went quiet for longer
//! than the lease, so the scheduler can fail their jobs with that cause.
//! A new leader starts every clock afresh, which only delays a verdict.
//! Followers keep the workers they heard from since their last report and
//! pass them on to the leader (see `cluster::heartbeat_push`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bm_api::workers::WorkerState;

use crate::sm::State;

/// Last contact per worker.
#[derive(Clone, Default)]
pub struct Heartbeats(Arc<Mutex<HashMap<String, Instant>>>, Arc<Mutex<BTreeSet<String>>>);

impl Heartbeats {
    /// Records that `worker` called in now.
    pub fn beat(&self, worker: &str) {
        self.0.lock().expect("heartbeat lock").insert(worker.to_string(), Instant::now());
        let mut recent = self.1.lock().expect("heartbeat lock");
        if !recent.contains(worker) {
            recent.insert(worker.to_string());
        }
    }

    /// Takes the workers heard from since the last call (for a follower to
    /// pass on to the leader).
    pub fn take_recent(&self) -> Vec<String> {
        std::mem::take(&mut *self.1.lock().expect("heartbeat lock")).into_iter().collect()
    }

    /// Returns workers to the recent set after a report failed.
    pub fn put_back(&self, workers: Vec<String>) {
        self.1.lock().expect("heartbeat lock").extend(workers);
    }

    /// Workers with a live agent (ready or assigned) silent for longer
    /// than `lease`. A worker never heard from by this node starts its
    /// clock now.
    pub fn expired(&self, s: &State, lease: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut seen = self.0.lock().expect("heartbeat lock");
        let live: Vec<&str> = s
            .live_workers()
            .filter(|w| matches!(w.worker.state, WorkerState::Ready | WorkerState::Assigned))
            .map(|w| w.worker.id.as_str())
            .collect();
        seen.retain(|id, _| live.contains(&id.as_str()));
        live.into_iter()
            .filter(|id| now.duration_since(*seen.entry(id.to_string()).or_insert(now)) > lease)
            .map(str::to_string)
            .collect()
    }
}
