//! Membership faults through the cluster API, as an operator would make them with `bm cluster remove|add`:
//! remove a voter, and later add it back (a learner that catches up, then a voter). The cluster is only ever
//! asked for one change at a time, and only when every original member votes, so a majority of the original
//! members always votes.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, Context};
use bm_api::cluster::ClusterStatus;
use tokio::time::Instant;

use super::super::cluster::ProcCluster;
use super::super::outcome::timed;
use crate::Endpoint;

/// How long one membership call may take (a removal of the leader hands leadership over first).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a status query may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long adding a node back may take, retries included, before the heal gives up on it.
pub const RESTORE_WITHIN: Duration = Duration::from_secs(90);

/// The cluster as the leader sees it (a removed node's own view goes stale), with the leader's id.
async fn leader_status(cluster: &ProcCluster) -> anyhow::Result<(Endpoint, ClusterStatus)> {
    let leader = cluster.leader().await.context("no leader")?;
    let s = timed(STATUS_TIMEOUT, cluster.client_of(leader).cluster_status()).await.map_err(anyhow::Error::msg)?;
    Ok((leader, s.context("cannot read the cluster status")?))
}

/// The voters of a status.
fn voters(s: &ClusterStatus) -> BTreeSet<Endpoint> {
    s.members.iter().filter(|m| m.voter).map(|m| m.id).collect()
}

/// Removes node `node` (the leader when `None`) from the cluster; returns the node removed and whether it led.
/// Refuses when a change is still under way (not every original member votes) or the node is down. A call whose
/// answer is lost counts as done if the leader no longer lists the node.
pub async fn remove(cluster: &ProcCluster, node: Option<Endpoint>) -> anyhow::Result<(Endpoint, bool)> {
    let (leader, status) = leader_status(cluster).await?;
    let all: BTreeSet<Endpoint> = cluster.ids().into_iter().collect();
    let now = voters(&status);
    if now != all {
        bail!("a membership change is still under way (voters {now:?})");
    }
    let node = node.unwrap_or(leader);
    if !cluster.is_up(node) {
        bail!("node {node} is down");
    }
    match timed(CALL_TIMEOUT, cluster.client_of(leader).cluster_remove(node)).await {
        Ok(Ok(_)) => return Ok((node, node == leader)),
        Ok(Err(e)) => tracing::warn!("removing node {node}: {e}"),
        Err(e) => tracing::warn!("removing node {node}: {e}"),
    }
    // The answer may have been lost: look at what the cluster did.
    let (_, after) = leader_status(cluster).await?;
    if voters(&after).contains(&node) {
        bail!("node {node} is still a voter");
    }
    Ok((node, node == leader))
}

/// Adds node `node` back until the leader lists it as a voter, or `within` has passed; returns whether it had
/// to be added (it was not a voter).
pub async fn add_back(cluster: &ProcCluster, node: Endpoint, within: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + within;
    let add = cluster.member_add(node);
    let mut added = false;
    loop {
        match leader_status(cluster).await {
            Ok((_, s)) if voters(&s).contains(&node) => return Ok(added),
            Ok((leader, _)) => {
                added = true;
                match timed(CALL_TIMEOUT, cluster.client_of(leader).cluster_add(&add)).await {
                    Ok(Ok(s)) if voters(&s).contains(&node) => return Ok(true),
                    Ok(Ok(_)) => tracing::info!("node {node} added, not yet a voter"),
                    Ok(Err(e)) => tracing::warn!("adding node {node} back: {e}"),
                    Err(e) => tracing::warn!("adding node {node} back: {e}"),
                }
            }
            Err(e) => tracing::debug!("adding node {node} back: {e:#}"),
        }
        if Instant::now() > deadline {
            bail!("node {node} is not a voter again after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Makes every original member a voter again, each within `within`; returns whether any was not. The final
/// heal calls it, and the main lane before each fault, so that no fault meets a cluster short of a voter.
pub async fn restore_all(cluster: &ProcCluster, within: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + within;
    let status = loop {
        match leader_status(cluster).await {
            Ok((_, s)) => break s,
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let now = voters(&status);
    let missing: Vec<Endpoint> = cluster.ids().into_iter().filter(|n| !now.contains(n)).collect();
    for &node in &missing {
        tracing::info!("adding node {node} back to the cluster");
        add_back(cluster, node, deadline.saturating_duration_since(Instant::now())).await?;
    }
    Ok(!missing.is_empty())
}
