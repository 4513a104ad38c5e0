//! The clients of a run: writers submitting jobs and readers reading job state, each call aimed at one random
//! node and recorded in the history with its interval and outcome.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use super::cluster::ProcCluster;
use super::outcome::{failed, not_found, timed};
use super::script;
use crate::history::{JobView, OpKind, Outcome, Recorder, Value};

/// How long a submit may take before its outcome counts as unknown.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the clients know about the jobs so far, shared between them: writers add acknowledged jobs, readers
/// mark those they saw end. Writers hold back while too many jobs are unfinished, so the queue never outgrows
/// what the factory can drain after the run.
#[derive(Debug, Default)]
pub struct Known {
    inner: Mutex<KnownInner>,
}

#[derive(Debug, Default)]
struct KnownInner {
    acked: Vec<(String, String)>,
    ended: BTreeSet<String>,
}

impl Known {
    fn lock(&self) -> MutexGuard<'_, KnownInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The acknowledged jobs so far, as (id, name).
    pub fn acked(&self) -> Vec<(String, String)> {
        self.lock().acked.clone()
    }

    fn unfinished(&self) -> usize {
        let k = self.lock();
        k.acked.len().saturating_sub(k.ended.len())
    }

    /// A job to read: an unfinished one three times out of four, when there is one.
    fn pick(&self, rng: &mut StdRng) -> Option<String> {
        let k = self.lock();
        if k.acked.is_empty() {
            return None;
        }
        if rng.gen_bool(0.75) {
            let open: Vec<&String> = k.acked.iter().map(|(id, _)| id).filter(|id| !k.ended.contains(*id)).collect();
            if !open.is_empty() {
                return Some(open[rng.gen_range(0..open.len())].clone());
            }
        }
        Some(k.acked[rng.gen_range(0..k.acked.len())].0.clone())
    }
}

/// Knobs of the workload.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Writer tasks.
    pub writers: usize,
    /// Reader tasks.
    pub readers: usize,
    /// Most acknowledged jobs not yet seen ended before writers wait.
    pub max_unfinished: usize,
    /// Seed of the clients' random choices.
    pub seed: u64,
}

/// The history process number of writer `w`.
fn writer_process(w: usize) -> u64 {
    1 + w as u64
}

/// The history process number of reader `r`.
fn reader_process(r: usize) -> u64 {
    100 + r as u64
}

/// Runs the writers and readers until `stop` turns true.
pub async fn run(
    cluster: Arc<ProcCluster>,
    rec: Recorder,
    known: Arc<Known>,
    w: Workload,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for i in 0..w.writers {
        let (c, rec, known, stop) = (cluster.clone(), rec.clone(), known.clone(), stop.clone());
        let rng = StdRng::seed_from_u64(w.seed.wrapping_mul(1000).wrapping_add(i as u64));
        tasks.push(tokio::spawn(writer(c, rec, known, i, w.max_unfinished, rng, stop)));
    }
    for i in 0..w.readers {
        let (c, rec, known, stop) = (cluster.clone(), rec.clone(), known.clone(), stop.clone());
        let rng = StdRng::seed_from_u64(w.seed.wrapping_mul(1000).wrapping_add(500 + i as u64));
        tasks.push(tokio::spawn(reader(c, rec, known, i, rng, stop)));
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
}

async fn writer(
    cluster: Arc<ProcCluster>,
    rec: Recorder,
    known: Arc<Known>,
    w: usize,
    max_unfinished: usize,
    mut rng: StdRng,
    stop: watch::Receiver<bool>,
) {
    let ids = cluster.ids();
    let mut n = 0;
    while !*stop.borrow() {
        if known.unfinished() >= max_unfinished {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        n += 1;
        let name = format!("chaos-w{w}-{n}");
        let node = ids[rng.gen_range(0..ids.len())];
        let client = cluster.client_of(node);
        let pending = rec.invoke(writer_process(w), OpKind::SubmitJob { name: name.clone() });
        let outcome = match timed(SUBMIT_TIMEOUT, client.job_submit(&script::job(&name))).await {
            Ok(Ok(job)) => {
                known.lock().acked.push((job.id.clone(), name));
                Outcome::Ok(Value::Job(job.id))
            }
            Ok(Err(e)) => failed(&e),
            Err(why) => Outcome::Unknown(why),
        };
        let refused = !matches!(outcome, Outcome::Ok(_));
        rec.complete(pending, outcome);
        let pause = if refused { rng.gen_range(200..600) } else { rng.gen_range(50..300) };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

async fn reader(
    cluster: Arc<ProcCluster>,
    rec: Recorder,
    known: Arc<Known>,
    r: usize,
    mut rng: StdRng,
    stop: watch::Receiver<bool>,
) {
    let ids = cluster.ids();
    while !*stop.borrow() {
        let Some(job) = known.pick(&mut rng) else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let node = ids[rng.gen_range(0..ids.len())];
        if read_job(&cluster, &rec, reader_process(r), &job, node).await {
            known.lock().ended.insert(job);
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..100))).await;
    }
}

/// Reads job `job` from `node` (a linearizable read) and records it under `process`; returns whether it showed
/// the job ended.
pub async fn read_job(cluster: &ProcCluster, rec: &Recorder, process: u64, job: &str, node: u64) -> bool {
    let client = cluster.client_of(node);
    let pending = rec.invoke(process, OpKind::ReadJob { job: job.to_string(), node: Some(node) });
    let mut ended = false;
    let outcome = match timed(READ_TIMEOUT, client.job(job)).await {
        Ok(Ok(j)) => {
            ended = j.state.is_terminal();
            Outcome::Ok(Value::View(Some(JobView { state: j.state.as_str().into(), epoch: j.epoch, worker: j.worker })))
        }
        Ok(Err(e)) if not_found(&e) => Outcome::Ok(Value::View(None)),
        Ok(Err(e)) => failed(&e),
        Err(why) => Outcome::Unknown(why),
    };
    rec.complete(pending, outcome);
    ended
}
