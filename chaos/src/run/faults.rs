//! Carries out a planned schedule against a running cluster and records each fault in the history, so that a
//! report can show what the cluster was going through when something went wrong.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::cluster::ProcCluster;
use super::schedule::{Action, FaultKind, Planned, Split, Target};
use crate::history::{OpKind, Outcome, Recorder, Value};
use crate::Endpoint;

/// The history process that faults are recorded under.
pub const FAULT_PROCESS: u64 = 0;

/// Runs the schedule from `start`, one fault after another, and returns how many faults of each kind were
/// injected. A fault whose target cannot be found (no leader at that moment) is skipped and logged.
pub async fn inject(
    cluster: Arc<ProcCluster>,
    rec: Recorder,
    schedule: Vec<Planned>,
    start: Instant,
) -> BTreeMap<FaultKind, usize> {
    let mut done: BTreeMap<FaultKind, usize> = BTreeMap::new();
    for p in schedule {
        tokio::time::sleep_until(start + p.at).await;
        let begin = rec.now();
        let what = match apply(&cluster, &p.action).await {
            Ok(what) => what,
            Err(e) => {
                tracing::warn!("fault skipped ({}): {e:#}", p.action);
                continue;
            }
        };
        tracing::info!("fault: {what} for {:.1}s", p.lasts.as_secs_f64());
        tokio::time::sleep(p.lasts).await;
        if let Err(e) = undo(&cluster, &what) {
            tracing::error!("cannot heal {what}: {e:#}");
        }
        let end = rec.now();
        tracing::info!("healed: {what}");
        rec.record_at(
            FAULT_PROCESS,
            OpKind::Fault { kind: what.describe(), start: begin, end: Some(end) },
            begin,
            Some(end),
            Outcome::Ok(Value::Done),
        );
        *done.entry(p.action.kind()).or_default() += 1;
    }
    done
}

/// A fault as applied, its targets resolved.
#[derive(Clone, Debug)]
enum Applied {
    /// The network was cut between these groups (or by these pairs, for a bridge).
    Cut(String),
    /// This node was killed.
    Killed(Endpoint),
    /// This node was paused.
    Paused(Endpoint),
}

impl Applied {
    fn describe(&self) -> String {
        match self {
            Applied::Cut(s) => format!("partition {s}"),
            Applied::Killed(n) => format!("kill node {n}"),
            Applied::Paused(n) => format!("pause node {n}"),
        }
    }
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

async fn resolve(cluster: &ProcCluster, t: Target) -> anyhow::Result<Endpoint> {
    match t {
        Target::Node(n) => Ok(n),
        Target::Leader => cluster.leader().await.ok_or_else(|| anyhow::anyhow!("no leader to target")),
    }
}

async fn apply(cluster: &ProcCluster, action: &Action) -> anyhow::Result<Applied> {
    Ok(match action {
        Action::Kill(t) => {
            let n = resolve(cluster, *t).await?;
            cluster.kill(n);
            Applied::Killed(n)
        }
        Action::Pause(t) => {
            let n = resolve(cluster, *t).await?;
            cluster.pause(n)?;
            Applied::Paused(n)
        }
        Action::Partition(Split::IsolateLeader) => {
            let l = resolve(cluster, Target::Leader).await?;
            let rest: Vec<Endpoint> = cluster.ids().into_iter().filter(|n| *n != l).collect();
            cluster.net.partition(&[vec![l], rest.clone()]);
            Applied::Cut(format!("[{l}] (leader) | {rest:?}"))
        }
        Action::Partition(Split::Groups(groups)) => {
            cluster.net.partition(groups);
            let g: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
            Applied::Cut(g.join(" | "))
        }
        Action::Partition(Split::Bridge { bridge, left, right }) => {
            for a in left {
                for b in right {
                    cluster.net.cut_both(*a, *b);
                }
            }
            Applied::Cut(format!("{left:?} | {right:?}, bridged by {bridge}"))
        }
    })
}

fn undo(cluster: &ProcCluster, applied: &Applied) -> anyhow::Result<()> {
    match applied {
        Applied::Cut(_) => cluster.net.heal(),
        Applied::Killed(n) => cluster.spawn(*n)?,
        Applied::Paused(n) => cluster.resume(*n)?,
    }
    Ok(())
}
