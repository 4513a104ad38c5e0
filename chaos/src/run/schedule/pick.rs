//! The random choices of a schedule: which fault, on which nodes, how long, how bad. Every choice draws from the
//! generator it is given, so that one seed always gives one schedule.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::action::{Action, Degrade, Split, Target};
use super::kind::FaultKind;
use crate::Endpoint;

/// One fault of `kind` over the nodes `ids`, and how long it lasts.
pub(super) fn fault(rng: &mut StdRng, kind: FaultKind, ids: &[Endpoint]) -> (Action, Duration) {
    match kind {
        FaultKind::Partition => (Action::Partition(split(rng, ids)), millis(rng, 1000, 5000)),
        FaultKind::Kill => (Action::Kill(target(rng, ids)), millis(rng, 1000, 5000)),
        FaultKind::Pause => (Action::Pause(target(rng, ids)), millis(rng, 1000, 3000)),
        FaultKind::Membership => {
            let target = target(rng, ids);
            let restart = rng.gen_bool(0.5);
            // Long enough for the removal to commit, the cluster to work without the node, and a restart.
            (Action::Membership { target, restart }, millis(rng, 3000, 8000))
        }
        // Nothing to heal: the time is the cluster's to notice before the next fault.
        FaultKind::Agent => (Action::Agent { pick: rng.gen_range(0..100) }, millis(rng, 1000, 3000)),
        FaultKind::Quality => {
            let nodes = degraded_nodes(rng, ids);
            let degrade = degrade(rng, 2 * nodes.len() > ids.len());
            (Action::Quality { nodes, degrade }, millis(rng, 2000, 8000))
        }
    }
}

/// A duration between `lo` and `hi` milliseconds.
pub(super) fn millis(rng: &mut StdRng, lo: u64, hi: u64) -> Duration {
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

/// Whose links a quality fault degrades: one node, a minority, or every node (every link).
fn degraded_nodes(rng: &mut StdRng, ids: &[Endpoint]) -> Vec<Endpoint> {
    let mut shuffled = ids.to_vec();
    shuffled.shuffle(rng);
    let count = match rng.gen_range(0..3) {
        0 => 1,
        1 => ((ids.len() - 1) / 2).max(1),
        _ => ids.len(),
    };
    sorted(&shuffled[..count.min(ids.len())])
}

/// How bad the links get: loss, duplication, a steady delay, reordering (a wide delay range), or all at once.
/// When a majority of the nodes suffers (`majority`), the links must still carry Raft: bm's Raft calls time out
/// after one heartbeat (50 ms), so delays stay at most 20 ms one way and loss at most 10%. A minority's links
/// may be worse (up to 100 ms, 20% loss): those nodes may drop out, as a slow node would, while a majority
/// stays reachable.
fn degrade(rng: &mut StdRng, majority: bool) -> Degrade {
    let (max_drop, max_delay) = if majority { (10, 20) } else { (20, 80) };
    match rng.gen_range(0..5) {
        0 => Degrade { drop_pct: rng.gen_range(3..=max_drop), ..Degrade::default() },
        1 => Degrade { duplicate_pct: rng.gen_range(10..=40), ..Degrade::default() },
        2 => {
            let d = rng.gen_range(5..=max_delay);
            Degrade { delay_min_ms: d, delay_max_ms: d + d / 4, ..Degrade::default() }
        }
        3 => Degrade {
            delay_min_ms: 0,
            delay_max_ms: rng.gen_range(10..=max_delay.max(20) * 3 / 4),
            ..Degrade::default()
        },
        _ => Degrade {
            drop_pct: rng.gen_range(2..=max_drop / 2),
            duplicate_pct: rng.gen_range(5..=20),
            delay_min_ms: 0,
            delay_max_ms: rng.gen_range(5..=max_delay / 2),
        },
    }
}

fn sorted(s: &[Endpoint]) -> Vec<Endpoint> {
    let mut v = s.to_vec();
    v.sort_unstable();
    v
}
