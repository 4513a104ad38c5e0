//! The faults of a run, planned up front from the seed so that a failing run can be replayed exactly: the same
//! seed, node count, duration and fault kinds always give the same schedule.

use std::fmt::{self, Display, Formatter};
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::Endpoint;

/// The kinds of fault a run may inject, as named on the command line (`--faults partition,kill,pause`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Cut the network between groups of nodes.
    Partition,
    /// `SIGKILL` a node and restart it later on the same disk.
    Kill,
    /// `SIGSTOP` a node and `SIGCONT` it later.
    Pause,
}

impl FaultKind {
    /// The name used on the command line and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
        }
    }
}

impl FromStr for FaultKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.trim() {
            "partition" => Ok(FaultKind::Partition),
            "kill" => Ok(FaultKind::Kill),
            "pause" => Ok(FaultKind::Pause),
            other => anyhow::bail!("unknown fault kind {other:?} (expected partition, kill or pause)"),
        }
    }
}

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

/// What a planned fault does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Partition the network, then heal it.
    Partition(Split),
    /// Kill a node, then restart it with its data.
    Kill(Target),
    /// Pause a node, then resume it.
    Pause(Target),
}

impl Action {
    /// Its kind, for counting.
    pub fn kind(&self) -> FaultKind {
        match self {
            Action::Partition(_) => FaultKind::Partition,
            Action::Kill(_) => FaultKind::Kill,
            Action::Pause(_) => FaultKind::Pause,
        }
    }
}

/// One fault of the schedule: when it begins (from the start of the workload) and how long it lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    /// Offset from the start of the workload.
    pub at: Duration,
    /// How long until it is healed.
    pub lasts: Duration,
    /// What it does.
    pub action: Action,
}

/// How long the cluster runs undisturbed before the first fault, so that jobs are in flight when it comes.
const WARM_UP: Duration = Duration::from_secs(3);

/// Plans the faults of a run. Faults follow one another without overlapping, with a quiet gap of 1-4 s between
/// them, so at most one node is ever down or paused and every partition leaves a connected majority; each ends
/// before `duration` does.
pub fn plan(seed: u64, nodes: u64, duration: Duration, kinds: &[FaultKind]) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    if kinds.is_empty() || nodes == 0 {
        return out;
    }
    let ids: Vec<Endpoint> = (1..=nodes).collect();
    let mut t = WARM_UP;
    loop {
        let kind = kinds[rng.gen_range(0..kinds.len())];
        let (action, lasts) = match kind {
            FaultKind::Partition => (Action::Partition(split(&mut rng, &ids)), millis(&mut rng, 1000, 5000)),
            FaultKind::Kill => (Action::Kill(target(&mut rng, &ids)), millis(&mut rng, 1000, 5000)),
            FaultKind::Pause => (Action::Pause(target(&mut rng, &ids)), millis(&mut rng, 1000, 3000)),
        };
        if t + lasts > duration {
            break;
        }
        out.push(Planned { at: t, lasts, action });
        t += lasts + millis(&mut rng, 1000, 4000);
    }
    out
}

fn millis(rng: &mut StdRng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.gen_range(lo..=hi))
}

/// The leader half the time (the interesting case), otherwise any node.
fn target(rng: &mut StdRng, ids: &[Endpoint]) -> Target {
    if rng.gen_bool(0.5) {
        Target::Leader
    } else {
        Target::Node(ids[rng.gen_range(0..ids.len())])
    }
}

/// One of the four partition shapes, over `ids` (at least one node).
fn split(rng: &mut StdRng, ids: &[Endpoint]) -> Split {
    let mut shuffled = ids.to_vec();
    shuffled.shuffle(rng);
    let n = shuffled.len();
    match rng.gen_range(0..4) {
        0 => Split::IsolateLeader,
        1 if n >= 3 => {
            let minority = (n - 1) / 2;
            let (a, b) = shuffled.split_at(minority);
            Split::Groups(vec![sorted(a), sorted(b)])
        }
        2 if n >= 3 => {
            let bridge = shuffled[0];
            let rest = &shuffled[1..];
            let (l, r) = rest.split_at(rest.len() / 2);
            Split::Bridge { bridge, left: sorted(l), right: sorted(r) }
        }
        _ if n >= 2 => {
            let at = rng.gen_range(1..n);
            let (a, b) = shuffled.split_at(at);
            Split::Groups(vec![sorted(a), sorted(b)])
        }
        _ => Split::IsolateLeader,
    }
}

fn sorted(s: &[Endpoint]) -> Vec<Endpoint> {
    let mut v = s.to_vec();
    v.sort_unstable();
    v
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

impl Display for Action {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Action::Partition(s) => write!(f, "partition: {s}"),
            Action::Kill(t) => write!(f, "kill {t}"),
            Action::Pause(t) => write!(f, "pause {t}"),
        }
    }
}

impl Display for Planned {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "at {:>6.1}s for {:.1}s: {}", self.at.as_secs_f64(), self.lasts.as_secs_f64(), self.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [FaultKind; 3] = [FaultKind::Partition, FaultKind::Kill, FaultKind::Pause];

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let a = plan(42, 5, Duration::from_secs(120), &ALL);
        assert_eq!(a, plan(42, 5, Duration::from_secs(120), &ALL));
        assert_ne!(a, plan(43, 5, Duration::from_secs(120), &ALL));
        assert!(a.len() >= 10, "{}", a.len());
    }

    #[test]
    fn faults_never_overlap_and_end_within_the_run() {
        let d = Duration::from_secs(60);
        let s = plan(7, 3, d, &ALL);
        for w in s.windows(2) {
            assert!(w[0].at + w[0].lasts < w[1].at, "{} then {}", w[0], w[1]);
        }
        assert!(s.iter().all(|p| p.at + p.lasts <= d));
    }

    #[test]
    fn every_partition_leaves_a_majority_together() {
        for seed in 0..50 {
            for p in plan(seed, 5, Duration::from_secs(60), &[FaultKind::Partition]) {
                match p.action {
                    Action::Partition(Split::Groups(g)) => assert!(g.iter().any(|g| g.len() >= 3), "{g:?}"),
                    Action::Partition(Split::Bridge { left, right, .. }) => assert_eq!(left.len() + right.len(), 4),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn only_the_kinds_asked_for_are_planned() {
        let s = plan(1, 3, Duration::from_secs(60), &[FaultKind::Pause]);
        assert!(!s.is_empty() && s.iter().all(|p| p.action.kind() == FaultKind::Pause));
    }
}
