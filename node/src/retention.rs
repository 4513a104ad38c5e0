//! Retention: the leader purges the logs and outputs of jobs that ended
//! longer ago than `retention.purge_after_secs`, and every node deletes the
//! blob files and log chunks nothing refers to any more (after a grace
//! period, since bytes are stored before their reference is committed).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;

use crate::node::Node;
use crate::sm::{Command, State};

/// Jobs due for purging at `now`.
pub fn due(s: &State, now: chrono::DateTime<Utc>, after: Duration) -> Vec<String> {
    let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    s.jobs
        .values()
        .filter(|r| r.purged.is_none() && r.job.state.is_terminal())
        .filter(|r| r.job.times.get("complete").is_some_and(|t| now - *t >= after))
        .map(|r| r.job.id.clone())
        .collect()
}

/// Every blob a job output or a published file refers to.
pub fn referenced(s: &State) -> BTreeSet<String> {
    let outputs = s.jobs.values().flat_map(|j| j.outputs.iter().map(|o| o.sha256.clone()));
    outputs.chain(s.published.values().map(|p| p.sha256.clone())).collect()
}

/// Every log chunk a job's log refers to.
pub fn referenced_chunks(s: &State) -> BTreeSet<[u8; 32]> {
    s.jobs.values().flat_map(|j| j.events.chunks().copied()).collect()
}

/// Runs for as long as the node runs.
pub async fn run(node: Node) {
    let r = node.config().retention.clone();
    let every = Duration::from_secs(r.check_every_secs.max(1));
    loop {
        tokio::time::sleep(every).await;
        if let (Some(after), true) = (r.purge_after_secs, node.is_leader()) {
            let jobs = node.read(|s| due(s, Utc::now(), Duration::from_secs(after)));
            for job in jobs {
                if let Err(e) = node.propose(Command::PurgeJob { job: job.clone(), time: Utc::now() }).await {
                    tracing::debug!(%job, error = %e, "purge refused");
                }
            }
        }
        let keep = node.read(referenced);
        let removed = node.blobs().collect_garbage(&keep, Duration::from_secs(r.gc_grace_secs)).await;
        if removed > 0 {
            tracing::info!(removed, "deleted unreferenced blobs");
        }
        let keep = node.read(referenced_chunks);
        let (store, grace) = (node.chunks().store.clone(), Duration::from_secs(r.gc_grace_secs));
        match tokio::task::spawn_blocking(move || store.collect_garbage(&keep, grace)).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "deleted unreferenced log chunks"),
            Err(e) => tracing::warn!(error = %e, "log chunk collection stopped"),
        }
    }
}
