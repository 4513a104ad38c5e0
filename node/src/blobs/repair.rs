//! The repair pass: every node copies the referenced blobs and log chunks
//! it is a home of (see `crate::cluster::placement`) but lacks, so bytes
//! lost with a node are back where they belong once the nodes run again.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::node::Node;

/// How often a node looks for missing blobs.
pub const EVERY: Duration = Duration::from_secs(30);

/// Runs for as long as the node runs (only with a peer link); the first
/// pass comes soon after start, so a replaced node fills up at once.
pub async fn run(node: Node) {
    tokio::time::sleep(Duration::from_secs(5)).await;
    loop {
        pass(&node).await;
        tokio::time::sleep(EVERY).await;
    }
}

/// One pass: copies every referenced blob and log chunk this node is a
/// home of that is missing here. Returns how many it copied.
pub async fn pass(node: &Node) -> usize {
    node.blobs().sweep_staging(Duration::from_secs(3600)).await;
    let mut copied = 0;
    for (sha, homes) in missing_blobs(node) {
        match super::fetch::ensure_local(node, &sha, Some(&homes)).await {
            Ok(()) => copied += 1,
            Err(e) => tracing::warn!(%sha, error = %e, "repair: cannot copy a missing blob"),
        }
    }
    for sha in missing_chunks(node) {
        match crate::chunks::fetch::copy_from_peer(node, &sha).await {
            Ok(_) => copied += 1,
            Err(e) => {
                tracing::warn!(sha = %crate::chunks::hex(&sha), error = %e, "repair: cannot copy a missing log chunk")
            }
        }
    }
    if copied > 0 {
        tracing::info!(copied, "repair: copied missing blobs and log chunks");
    }
    copied
}

/// The referenced blobs this node is a home of (or all of them, with
/// `keep_all_bytes`) but does not hold, each with its homes.
pub fn missing_blobs(node: &Node) -> Vec<(String, BTreeSet<u64>)> {
    let voters = crate::cluster::quorum::voters(node);
    let all = node.config().keep_all_bytes || node.peer().is_none();
    let blobs = node.read_paged(
        |(sha, _): &(String, Vec<String>)| sha.clone(),
        |s, after, n| s.refs.blobs_after(after.map(|a| a.as_str()), n),
    );
    blobs
        .into_iter()
        .map(|(sha, ids)| {
            let homes: BTreeSet<u64> = ids.iter().flat_map(|id| super::placement::homes(id, &voters)).collect();
            (sha, homes)
        })
        .filter(|(sha, homes)| (all || homes.contains(&node.id())) && !node.blobs().has_now(sha))
        .collect()
}

/// The referenced log chunks this node is a home of (or all of them, with
/// `keep_all_bytes`) but does not hold.
pub fn missing_chunks(node: &Node) -> Vec<[u8; 32]> {
    let voters = crate::cluster::quorum::voters(node);
    let all = node.config().keep_all_bytes;
    let store = &node.chunks().store;
    crate::retention::referenced_chunks(node)
        .into_iter()
        .filter(|sha| !store.has(sha) && (all || crate::cluster::placement::is_home(sha, &voters, node.id())))
        .collect()
}
