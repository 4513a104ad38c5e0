//! After the faults: wait, within bounds, for the cluster to finish every job and destroy every worker, so that
//! the final reads see the end state the invariants speak of.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use bm_api::jobs::{Job, JobListQuery};
use bm_api::workers::{Worker, WorkerState};
use tokio::time::Instant;

use super::cluster::ProcCluster;
use super::outcome::timed;

/// How long one polling call may take.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// Every job on the cluster (an admin list through any node).
pub async fn all_jobs(cluster: &ProcCluster) -> anyhow::Result<Vec<Job>> {
    let q = JobListQuery { limit: Some(10_000_000), ..Default::default() };
    let r = timed(POLL_TIMEOUT, cluster.admin().jobs(&q)).await.map_err(anyhow::Error::msg)?;
    r.context("cannot list jobs")
}

/// Every worker the cluster ever had, destroyed ones included.
pub async fn all_workers(cluster: &ProcCluster) -> anyhow::Result<Vec<Worker>> {
    let r = timed(POLL_TIMEOUT, cluster.admin().workers(true)).await.map_err(anyhow::Error::msg)?;
    r.context("cannot list workers")
}

/// Waits until every listed job and every acknowledged one (`acked`) has ended, or `within` has passed; returns
/// the ids of those still unfinished (empty when all ended).
pub async fn jobs_ended(cluster: &ProcCluster, acked: &[String], within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut open: Vec<String> = acked.to_vec();
    let mut last_log = Instant::now();
    loop {
        match all_jobs(cluster).await {
            Ok(jobs) => {
                let ended: BTreeSet<&str> =
                    jobs.iter().filter(|j| j.state.is_terminal()).map(|j| j.id.as_str()).collect();
                let mut ids: BTreeSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
                ids.extend(acked.iter().map(String::as_str));
                open = ids.into_iter().filter(|id| !ended.contains(id)).map(String::from).collect();
                if open.is_empty() {
                    return open;
                }
                if last_log.elapsed() > Duration::from_secs(10) {
                    tracing::info!("waiting for {} of {} jobs to end", open.len(), jobs.len());
                    last_log = Instant::now();
                }
            }
            Err(e) => tracing::debug!("polling jobs: {e:#}"),
        }
        if Instant::now() > deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until every worker is destroyed, or `within` has passed; returns those that are not.
pub async fn workers_destroyed(cluster: &ProcCluster, within: Duration) -> Vec<Worker> {
    let deadline = Instant::now() + within;
    let mut left = Vec::new();
    loop {
        match all_workers(cluster).await {
            Ok(ws) => {
                left = ws.into_iter().filter(|w| w.state != WorkerState::Destroyed).collect();
                if left.is_empty() {
                    return left;
                }
            }
            Err(e) => tracing::debug!("polling workers: {e:#}"),
        }
        if Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
