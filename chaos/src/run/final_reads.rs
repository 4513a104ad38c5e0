//! The reads after recovery that the invariants are judged on: from every node, the job list, each job's state,
//! its log and its output, each recorded in the history with the node it came from.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bm_api::jobs::{JobEvent, JobListQuery};
use bm_api::Client;

use super::cluster::ProcCluster;
use super::outcome::{failed, not_found, timed};
use super::script;
use super::workload::read_job;
use crate::history::{OpKind, Outcome, Recorder, Value};
use crate::Endpoint;

/// How long one final read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Most pages of events read for one job.
const MAX_PAGES: usize = 1000;

/// The history process of node `n`'s final reads.
fn process(n: Endpoint) -> u64 {
    1000 + n
}

/// Reads everything from every node, the nodes in parallel; `jobs` are the ids to read besides those listed.
pub async fn read_everything(cluster: Arc<ProcCluster>, rec: Recorder, jobs: BTreeSet<String>) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for node in cluster.ids() {
        let (c, rec, jobs) = (cluster.clone(), rec.clone(), jobs.clone());
        tasks.push(tokio::spawn(async move { read_node(&c, &rec, node, jobs).await }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
}

async fn read_node(cluster: &ProcCluster, rec: &Recorder, node: Endpoint, mut jobs: BTreeSet<String>) {
    let client = cluster.client_of(node);
    let p = process(node);
    let pending = rec.invoke(p, OpKind::ListJobs { node: Some(node) });
    let q = JobListQuery { limit: Some(10_000_000), ..Default::default() };
    let outcome = match timed(READ_TIMEOUT, client.jobs(&q)).await {
        Ok(Ok(list)) => {
            let ids: Vec<String> = list.into_iter().map(|j| j.id).collect();
            jobs.extend(ids.iter().cloned());
            Outcome::Ok(Value::Jobs(ids))
        }
        Ok(Err(e)) => failed(&e),
        Err(why) => Outcome::Unknown(why),
    };
    rec.complete(pending, outcome);
    for job in &jobs {
        read_job(cluster, rec, p, job, node).await;
        read_log(&client, rec, p, job, node).await;
        read_output(&client, rec, p, job, node).await;
    }
}

/// Every event of a job, as one node serves it.
pub async fn events(client: &Client, job: &str) -> Result<Vec<JobEvent>, Outcome> {
    let mut all: Vec<JobEvent> = Vec::new();
    for _ in 0..MAX_PAGES {
        let from = all.last().map_or(0, |e| e.seq + 1);
        let page = match timed(READ_TIMEOUT, client.job_events(job, from, None)).await {
            Ok(Ok(page)) => page,
            Ok(Err(e)) => return Err(failed(&e)),
            Err(why) => return Err(Outcome::Unknown(why)),
        };
        if page.events.is_empty() {
            return Ok(all);
        }
        all.extend(page.events);
    }
    Err(Outcome::Unknown(format!("more than {MAX_PAGES} pages of events")))
}

async fn read_log(client: &Client, rec: &Recorder, p: u64, job: &str, node: Endpoint) {
    let pending = rec.invoke(p, OpKind::ReadLog { job: job.to_string(), node });
    let outcome = match events(client, job).await {
        Ok(evs) => Outcome::Ok(Value::Log(script::entries(
            evs.iter().filter(|e| e.stream == script::STREAM).map(|e| e.payload.as_str()),
        ))),
        Err(o) => o,
    };
    rec.complete(pending, outcome);
}

async fn read_output(client: &Client, rec: &Recorder, p: u64, job: &str, node: Endpoint) {
    let path = script::OUTPUT_PATH.to_string();
    let pending = rec.invoke(p, OpKind::ReadOutput { job: job.to_string(), path: path.clone(), node });
    let outcome = match timed(READ_TIMEOUT, client.job_outputs(job)).await {
        Ok(Ok(outs)) => match outs.into_iter().find(|o| o.path == path) {
            None => Outcome::Ok(Value::Output(None)),
            Some(o) => download(client, job, &o.id).await,
        },
        Ok(Err(e)) if not_found(&e) => Outcome::Ok(Value::Output(None)),
        Ok(Err(e)) => failed(&e),
        Err(why) => Outcome::Unknown(why),
    };
    rec.complete(pending, outcome);
}

/// Downloads an output and hashes what came, which is what "byte-identical on every node" is about.
async fn download(client: &Client, job: &str, output: &str) -> Outcome {
    let resp = match timed(READ_TIMEOUT, client.job_output_download(job, output)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return failed(&e),
        Err(why) => return Outcome::Unknown(why),
    };
    match tokio::time::timeout(READ_TIMEOUT, resp.bytes()).await {
        Ok(Ok(b)) => Outcome::Ok(Value::Output(Some(script::sha256_hex(&b)))),
        Ok(Err(e)) => Outcome::Unknown(format!("download broke off: {e}")),
        Err(_) => Outcome::Unknown(format!("download timed out after {READ_TIMEOUT:?}")),
    }
}
