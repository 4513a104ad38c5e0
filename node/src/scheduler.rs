//! The scheduler: runs on the leader only. It matches queued jobs to ready
//! workers of their target, asks factories for workers when there are too
//! few, and fails jobs that outlive their timeout. Every decision is a
//! command; the state machine re-checks it at commit, so a stale leader's
//! decision is refused rather than acted on twice.

use std::collections::BTreeMap;
use std::time::Duration;

use bm_api::workers::WorkerState;
use chrono::{DateTime, Utc};

use crate::node::Node;
use crate::sm::{Command, State};

/// How often the scheduler looks even when nothing was applied.
const TICK: Duration = Duration::from_millis(500);
/// Least time between two looks: under a storm of commits the scheduler
/// plans on a fresh view at most this often instead of once per commit,
/// while a change after a quiet spell is acted on at once.
const SETTLE: Duration = Duration::from_millis(20);

/// What the scheduler wants done, computed from one view of the state;
/// `spares` is how many idle workers to keep ready per target.
pub fn plan(s: &State, now: DateTime<Utc>, spares: &BTreeMap<String, usize>) -> Vec<Command> {
    let mut out = Vec::new();
    // The indexes keep this to live jobs, in submission order.
    for rec in s.running.iter().filter_map(|id| s.jobs.get(id)) {
        let j = &rec.job;
        let (Some(limit), Some(since)) = (j.timeout_secs, j.times.get("assigned")) else { continue };
        if (now - *since).num_seconds() >= i64::try_from(limit).unwrap_or(i64::MAX) {
            out.push(Command::JobTimeout { job: j.id.clone(), time: now });
        }
    }
    if s.control.hold {
        return out;
    }
    // Idle ready workers and pending worker requests by target.
    let mut ready: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut coming: BTreeMap<&str, usize> = BTreeMap::new();
    for w in s.live_workers().map(|w| &w.worker) {
        match w.state {
            WorkerState::Ready if !w.hold && w.job.is_none() => ready.entry(&w.target).or_default().push(&w.id),
            WorkerState::Requested | WorkerState::Bootstrapping => *coming.entry(&w.target).or_default() += 1,
            _ => {}
        }
    }
    for rec in s.queued.iter().filter_map(|id| s.jobs.get(id)) {
        let target = rec.job.target_real.as_str();
        if let Some(w) = ready.get_mut(target).and_then(|v| v.pop()) {
            out.push(Command::AssignJob { job: rec.job.id.clone(), worker: w.to_string(), time: now });
        } else if let Some(n) = coming.get_mut(target).filter(|n| **n > 0) {
            *n -= 1;
        } else {
            out.push(Command::RequestWorker {
                id: ulid::Ulid::new().to_string(),
                target: target.to_string(),
                time: now,
            });
        }
    }
    // Spare workers: made ahead of demand, so that a job is assigned at
    // once to a worker whose agent already waits instead of waiting for a
    // machine to be made.
    for (target, want) in spares.iter().filter(|(t, _)| s.targets.contains_key(t.as_str())) {
        let idle = ready.get(target.as_str()).map_or(0, Vec::len) + coming.get(target.as_str()).copied().unwrap_or(0);
        for _ in idle..*want {
            out.push(Command::RequestWorker { id: ulid::Ulid::new().to_string(), target: target.clone(), time: now });
        }
    }
    out
}

/// Runs the scheduler loop for as long as the node runs.
pub async fn run(node: Node) {
    let mut watch = node.watch();
    let mut last = tokio::time::Instant::now();
    loop {
        let _ = tokio::time::timeout(TICK, watch.changed()).await;
        tokio::time::sleep_until(last + SETTLE).await;
        last = tokio::time::Instant::now();
        watch.borrow_and_update();
        if !node.is_leader() {
            continue;
        }
        let lease = Duration::from_secs(node.config().worker_lease_secs);
        let (mut cmds, lost) =
            node.read(|s| (plan(s, Utc::now(), &node.config().spare_workers), node.heartbeats().expired(s, lease)));
        for worker in lost {
            let reason = format!("the worker's agent stopped calling in (no heartbeat for {} s)", lease.as_secs());
            tracing::warn!(%worker, "{reason}");
            cmds.push(Command::WorkerLost { worker, reason, time: Utc::now() });
        }
        for cmd in cmds {
            if let Err(e) = node.propose(cmd).await {
                tracing::debug!(error = %e, "scheduler command refused");
            }
        }
    }
}
