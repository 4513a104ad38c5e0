//! Carries out a planned schedule against a running cluster and records each fault in the history, so that a
//! report can show what the cluster was going through when something went wrong. Each lane of the schedule runs
//! as its own task, its faults one after another; the lanes overlap.

mod agent;
mod applied;
pub mod membership;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use agent::AgentHit;
use applied::Applied;

use super::cluster::ProcCluster;
use super::schedule::{FaultKind, Lane, Planned};
use crate::history::{OpKind, Outcome, Recorder, Value};

/// The history process the faults of the main lane are recorded under.
pub const FAULT_PROCESS: u64 = 0;
/// The history process of the side lane's faults (a process does one thing at a time, and the lanes overlap).
pub const SIDE_FAULT_PROCESS: u64 = 3000;

/// How long the main lane tries, before each fault, to add back a node an earlier fault left out.
const RESTORE_BEFORE_FAULT: Duration = Duration::from_secs(5);

/// What the injector did.
#[derive(Clone, Debug, Default)]
pub struct Injected {
    /// Faults injected, by kind; planned faults that could not apply at their moment are not counted.
    pub by_kind: BTreeMap<FaultKind, usize>,
    /// The jobs whose agent was killed.
    pub agent_hits: Vec<AgentHit>,
}

/// Runs the schedule from `start`, each lane in its own task, and returns what was injected. A fault whose
/// target cannot be found (no leader, no running job at that moment) is skipped and logged.
pub async fn inject(cluster: Arc<ProcCluster>, rec: Recorder, schedule: Vec<Planned>, start: Instant) -> Injected {
    let mut lanes: BTreeMap<Lane, Vec<Planned>> = BTreeMap::new();
    for p in schedule {
        lanes.entry(p.lane).or_default().push(p);
    }
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|(lane, faults)| tokio::spawn(run_lane(cluster.clone(), rec.clone(), lane, faults, start)))
        .collect();
    let mut all = Injected::default();
    for t in tasks {
        match t.await {
            Ok(done) => {
                for (k, n) in done.by_kind {
                    *all.by_kind.entry(k).or_default() += n;
                }
                all.agent_hits.extend(done.agent_hits);
            }
            Err(e) => tracing::error!("a fault lane failed: {e}"),
        }
    }
    all
}

/// Runs one lane's faults one after another: apply, wait half the time, the midway step, wait the rest, undo.
async fn run_lane(
    cluster: Arc<ProcCluster>,
    rec: Recorder,
    lane: Lane,
    faults: Vec<Planned>,
    start: Instant,
) -> Injected {
    let process = match lane {
        Lane::Main => FAULT_PROCESS,
        Lane::Side => SIDE_FAULT_PROCESS,
    };
    let mut done = Injected::default();
    for p in faults {
        tokio::time::sleep_until(start + p.at).await;
        // A node a membership fault could not add back leaves the cluster a voter short: take nothing more away
        // until it is back.
        if lane == Lane::Main {
            if let Err(e) = membership::restore_all(&cluster, RESTORE_BEFORE_FAULT).await {
                tracing::warn!("fault skipped ({}): a node is still out of the cluster: {e:#}", p.action);
                continue;
            }
        }
        let begin = rec.now();
        let what = match applied::apply(&cluster, &p.action).await {
            Ok(what) => what,
            Err(e) => {
                tracing::warn!("fault skipped ({}): {e:#}", p.action);
                continue;
            }
        };
        tracing::info!("fault: {what} for {:.1}s", p.lasts.as_secs_f64());
        if let Applied::AgentKilled(hit) = &what {
            // The checkers excuse this job, and only this one, for ending cut short.
            let kind = OpKind::AgentKilled { job: hit.job.clone(), worker: hit.worker.clone() };
            let at = rec.now();
            rec.record_at(process, kind, at, Some(at), Outcome::Ok(Value::Done));
        }
        let half = p.lasts / 2;
        tokio::time::sleep(half).await;
        if let Err(e) = applied::midway(&cluster, &what) {
            tracing::error!("midway through {what}: {e:#}");
        }
        tokio::time::sleep(p.lasts - half).await;
        if let Err(e) = applied::undo(&cluster, &what).await {
            tracing::error!("cannot heal {what}: {e:#}");
        }
        let end = rec.now();
        tracing::info!("healed: {what}");
        rec.record_at(
            process,
            OpKind::Fault { kind: what.to_string(), start: begin, end: Some(end) },
            begin,
            Some(end),
            Outcome::Ok(Value::Done),
        );
        *done.by_kind.entry(p.action.kind()).or_default() += 1;
        if let Applied::AgentKilled(hit) = what {
            done.agent_hits.push(hit);
        }
    }
    done
}
