//! Retention: the leader purges the logs and outputs of jobs that ended
//! longer ago than `retention.purge_after_secs`, and every node deletes the
//! blob files and log chunks nothing refers to any more (after a grace
//! period, since bytes are stored before their reference is committed).

use std::collections::BTreeSet;
use std::ops::Bound;
use std::time::Duration;

use chrono::Utc;
use imbl::OrdMap;

use crate::node::Node;
use crate::sm::{Command, JobRecord};

/// Jobs due for purging at `now`, read a page at a time.
pub fn due(node: &Node, now: chrono::DateTime<Utc>, after: Duration) -> Vec<String> {
    let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    let is_due = |r: &JobRecord| {
        r.purged.is_none()
            && r.job.state.is_terminal()
            && r.job.times.get("complete").is_some_and(|t| now - *t >= after)
    };
    let jobs = node.read_paged(
        |(id, _): &(String, bool)| id.clone(),
        |s, from, n| entries_after(&s.jobs, from).take(n).map(|(id, r)| (id.clone(), is_due(r))).collect(),
    );
    jobs.into_iter().filter(|(_, due)| *due).map(|(id, _)| id).collect()
}

/// Every blob a job output or a published file refers to, read a page at
/// a time.
pub fn referenced(node: &Node) -> BTreeSet<String> {
    let outputs = node.read_paged(
        |sha: &String| sha.clone(),
        |s, after, n| s.refs.blobs_after(after.map(|a| a.as_str()), n).into_iter().map(|(sha, _)| sha).collect(),
    );
    let published = node.read_paged(
        |(key, _): &(String, String)| key.clone(),
        |s, from, n| entries_after(&s.published, from).take(n).map(|(k, p)| (k.clone(), p.sha256.clone())).collect(),
    );
    outputs.into_iter().chain(published.into_iter().map(|(_, sha)| sha)).collect()
}

/// The entries of `map` after the key `from` (all with `None`): where a
/// page of [`Node::read_paged`] starts.
fn entries_after<'a, V: Clone>(
    map: &'a OrdMap<String, V>,
    from: Option<&String>,
) -> imbl::ordmap::RangedIter<'a, String, V, imbl::shared_ptr::DefaultSharedPtr> {
    map.range::<_, str>((from.map_or(Bound::Unbounded, |k| Bound::Excluded(k.as_str())), Bound::Unbounded))
}

/// Every log chunk a job's log refers to, read a page at a time.
pub fn referenced_chunks(node: &Node) -> Vec<[u8; 32]> {
    node.read_paged(|sha: &[u8; 32]| *sha, |s, after, n| s.refs.chunks_after(after, n))
}

/// Runs for as long as the node runs.
pub async fn run(node: Node) {
    let r = node.config().retention.clone();
    let every = Duration::from_secs(r.check_every_secs.max(1));
    loop {
        tokio::time::sleep(every).await;
        if let (Some(after), true) = (r.purge_after_secs, node.is_leader()) {
            let jobs = due(&node, Utc::now(), Duration::from_secs(after));
            for job in jobs {
                if let Err(e) = node.propose(Command::PurgeJob { job: job.clone(), time: Utc::now() }).await {
                    tracing::debug!(%job, error = %e, "purge refused");
                }
            }
        }
        let keep = referenced(&node);
        let removed = node.blobs().collect_garbage(&keep, Duration::from_secs(r.gc_grace_secs)).await;
        if removed > 0 {
            tracing::info!(removed, "deleted unreferenced blobs");
        }
        let keep: BTreeSet<[u8; 32]> = referenced_chunks(&node).into_iter().collect();
        let (store, grace) = (node.chunks().store.clone(), Duration::from_secs(r.gc_grace_secs));
        match tokio::task::spawn_blocking(move || store.collect_garbage(&keep, grace)).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "deleted unreferenced log chunks"),
            Err(e) => tracing::warn!(error = %e, "log chunk collection stopped"),
        }
    }
}
