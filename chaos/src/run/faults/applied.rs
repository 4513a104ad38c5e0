//! A planned fault made real: its targets resolved (the leader, a running job), applied, and later undone. What
//! was done is kept, described as the history records it.

use std::fmt::{self, Display, Formatter};

use super::super::cluster::ProcCluster;
use super::super::schedule::{Action, Split, Target};
use super::agent::{self, AgentHit};
use super::membership;
use crate::Endpoint;

/// A fault as applied, its targets resolved.
#[derive(Clone, Debug)]
pub(super) enum Applied {
    /// The network was cut between these groups (or by these pairs, for a bridge).
    Cut(String),
    /// This node was killed.
    Killed(Endpoint),
    /// This node was paused.
    Paused(Endpoint),
    /// This node was removed from the cluster.
    Removed {
        /// The node.
        node: Endpoint,
        /// Whether it was the leader.
        led: bool,
        /// Whether its process was killed after the removal, to be restarted midway.
        restart: bool,
    },
    /// The agent of this job was killed.
    AgentKilled(AgentHit),
    /// Every link to and from these nodes (their agents' included) was degraded, as described.
    Degraded(String),
}

impl Display for Applied {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Applied::Cut(s) => write!(f, "partition {s}"),
            Applied::Killed(n) => write!(f, "kill node {n}"),
            Applied::Paused(n) => write!(f, "pause node {n}"),
            Applied::Removed { node, led, restart } => {
                let who = if *led { " (the leader)" } else { "" };
                let how = if *restart { "killed, restarted midway" } else { "kept running" };
                write!(f, "membership: remove node {node}{who} ({how}), then add it back")
            }
            Applied::AgentKilled(h) => {
                write!(f, "agent: kill the agent (pid {}) of worker {} running job {}", h.pid, h.worker, h.job)
            }
            Applied::Degraded(s) => write!(f, "quality {s}"),
        }
    }
}

async fn resolve(cluster: &ProcCluster, t: Target) -> anyhow::Result<Endpoint> {
    match t {
        Target::Node(n) => Ok(n),
        Target::Leader => cluster.leader().await.ok_or_else(|| anyhow::anyhow!("no leader to target")),
    }
}

/// Applies `action` now.
pub(super) async fn apply(cluster: &ProcCluster, action: &Action) -> anyhow::Result<Applied> {
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
        Action::Membership { target, restart } => {
            let node = match target {
                Target::Leader => None,
                Target::Node(n) => Some(*n),
            };
            let (node, led) = membership::remove(cluster, node).await?;
            if *restart {
                cluster.kill(node);
            }
            Applied::Removed { node, led, restart: *restart }
        }
        Action::Agent { pick } => Applied::AgentKilled(agent::kill(cluster, *pick).await?),
        Action::Quality { nodes, degrade } => {
            let q = degrade.quality();
            for &n in nodes {
                cluster.net.set_endpoint_quality(n, q);
            }
            Applied::Degraded(format!("links of nodes {nodes:?}: {degrade}"))
        }
    })
}

/// The step halfway through a fault: a node removed to be restarted starts again (still out of the cluster).
pub(super) fn midway(cluster: &ProcCluster, applied: &Applied) -> anyhow::Result<()> {
    if let Applied::Removed { node, restart: true, .. } = applied {
        cluster.spawn(*node)?;
    }
    Ok(())
}

/// Undoes what was applied.
pub(super) async fn undo(cluster: &ProcCluster, applied: &Applied) -> anyhow::Result<()> {
    match applied {
        Applied::Cut(_) => cluster.net.heal(),
        Applied::Killed(n) => cluster.spawn(*n)?,
        Applied::Paused(n) => cluster.resume(*n)?,
        Applied::Removed { node, .. } => {
            if !cluster.is_running(*node) {
                cluster.spawn(*node)?;
            }
            membership::add_back(cluster, *node, membership::RESTORE_WITHIN).await?;
        }
        Applied::AgentKilled(_) => {}
        Applied::Degraded(_) => cluster.net.clear_link_qualities(),
    }
    Ok(())
}
