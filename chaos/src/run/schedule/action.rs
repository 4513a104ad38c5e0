//! What a planned fault does, with its targets as far as they can be known before the run: the leader and the
//! running jobs are only known when the fault begins.

use std::fmt::{self, Display, Formatter};
use std::time::Duration;

use super::kind::FaultKind;
use crate::{Endpoint, Quality};

/// Which node a node fault hits: the leader is only known when the fault begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Whichever node leads when the fault begins.
    Leader,
    /// A fixed node.
    Node(Endpoint),
}

/// The shape of a network partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Split {
    /// The leader (found when the fault begins) alone on one side.
    IsolateLeader,
    /// Groups that cannot talk to each other: a majority and a minority, or random halves.
    Groups(Vec<Vec<Endpoint>>),
    /// Two sides cut from each other, and one node that sees both.
    Bridge {
        /// The node connected to everyone.
        bridge: Endpoint,
        /// One side.
        left: Vec<Endpoint>,
        /// The other side.
        right: Vec<Endpoint>,
    },
}

/// How bad the degraded links of a quality fault are, in whole numbers so that a schedule compares exactly and
/// prints the way it was planned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Degrade {
    /// Percent of datagrams dropped.
    pub drop_pct: u8,
    /// Percent of the datagrams let through that are sent twice.
    pub duplicate_pct: u8,
    /// Shortest delay of a datagram, milliseconds.
    pub delay_min_ms: u16,
    /// Longest delay, milliseconds; a range wider than the gap between datagrams reorders them.
    pub delay_max_ms: u16,
}

impl Degrade {
    /// The relay's quality for these figures.
    pub fn quality(self) -> Quality {
        Quality {
            drop: f64::from(self.drop_pct) / 100.0,
            duplicate: f64::from(self.duplicate_pct) / 100.0,
            delay_min: Duration::from_millis(self.delay_min_ms.into()),
            delay_max: Duration::from_millis(self.delay_max_ms.into()),
        }
    }
}

/// What a planned fault does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Partition the network, then heal it.
    Partition(Split),
    /// Kill a node, then restart it with its data.
    Kill(Target),
    /// Pause a node, then resume it.
    Pause(Target),
    /// Remove a voter from the cluster, then add it back as a learner that becomes a voter.
    Membership {
        /// The voter to remove.
        target: Target,
        /// Whether its process is killed once it is removed and restarted (with its data) halfway through,
        /// rather than kept running.
        restart: bool,
    },
    /// `SIGKILL` the agent of one of the jobs running when the fault begins; nothing is undone.
    Agent {
        /// Which running job: this number modulo how many are running (ordered by id).
        pick: u32,
    },
    /// Degrade every link to and from these nodes (both ways, the agents' links to them included), then restore
    /// them.
    Quality {
        /// The nodes whose links suffer.
        nodes: Vec<Endpoint>,
        /// How badly.
        degrade: Degrade,
    },
}

impl Action {
    /// Its kind, for counting.
    pub fn kind(&self) -> FaultKind {
        match self {
            Action::Partition(_) => FaultKind::Partition,
            Action::Kill(_) => FaultKind::Kill,
            Action::Pause(_) => FaultKind::Pause,
            Action::Membership { .. } => FaultKind::Membership,
            Action::Agent { .. } => FaultKind::Agent,
            Action::Quality { .. } => FaultKind::Quality,
        }
    }
}

impl Display for Target {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Target::Leader => write!(f, "the leader"),
            Target::Node(n) => write!(f, "node {n}"),
        }
    }
}

impl Display for Split {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Split::IsolateLeader => write!(f, "isolate the leader"),
            Split::Groups(groups) => {
                let g: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
                write!(f, "groups {}", g.join(" | "))
            }
            Split::Bridge { bridge, left, right } => write!(f, "bridge {bridge} between {left:?} and {right:?}"),
        }
    }
}

impl Display for Degrade {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.drop_pct > 0 {
            parts.push(format!("drop {}%", self.drop_pct));
        }
        if self.duplicate_pct > 0 {
            parts.push(format!("duplicate {}%", self.duplicate_pct));
        }
        if self.delay_max_ms > 0 {
            parts.push(format!("delay {}-{} ms", self.delay_min_ms, self.delay_max_ms));
        }
        if parts.is_empty() {
            parts.push("no change".into());
        }
        f.write_str(&parts.join(", "))
    }
}

impl Display for Action {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Action::Partition(s) => write!(f, "partition: {s}"),
            Action::Kill(t) => write!(f, "kill {t}"),
            Action::Pause(t) => write!(f, "pause {t}"),
            Action::Membership { target, restart } => {
                let how = if *restart { "restarted while out" } else { "kept running" };
                write!(f, "membership: remove {target} ({how}), then add it back")
            }
            Action::Agent { pick } => write!(f, "agent: kill the agent of a running job (pick {pick})"),
            Action::Quality { nodes, degrade } => write!(f, "quality: links of nodes {nodes:?}: {degrade}"),
        }
    }
}
