//! The repair pass: every node copies the referenced blobs it lacks, and
//! the referenced log chunks it is a home of (see
//! `crate::chunks::placement`) but lacks, so bytes lost with a node are
//! back where they belong once the nodes run again.

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

/// One pass: copies every referenced blob, and every referenced log chunk
/// this node is a home of, that is missing here.
/// Returns how many it copied.
pub async fn pass(node: &Node) -> usize {
    node.blobs().sweep_staging(Duration::from_secs(3600)).await;
    let wanted: BTreeSet<String> =
        node.read(|s| s.jobs.values().flat_map(|j| j.outputs.iter().map(|o| o.sha256.clone())).collect());
    let mut copied = 0;
    for sha in wanted {
        if node.blobs().has(&sha).await {
            continue;
        }
        match super::fetch::ensure_local(node, &sha).await {
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

/// The referenced log chunks this node is a home of (or all of them, with
/// `keep_all_log_chunks`) but does not hold.
pub fn missing_chunks(node: &Node) -> Vec<[u8; 32]> {
    let voters = crate::cluster::quorum::voters(node);
    let all = node.config().keep_all_log_chunks;
    let chunks = node.read(crate::retention::referenced_chunks);
    let store = &node.chunks().store;
    chunks
        .into_iter()
        .filter(|sha| !store.has(sha) && (all || crate::chunks::placement::is_home(sha, &voters, node.id())))
        .collect()
}
