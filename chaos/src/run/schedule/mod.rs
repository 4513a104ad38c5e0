//! The faults of a run, planned up front from the seed so that a failing run can be replayed exactly: the same
//! seed, node count, duration and fault kinds always give the same schedule.
//!
//! Faults run in lanes. Within a lane they follow one another without overlapping, with a quiet gap between
//! them. The main lane holds every fault that takes nodes away (partitions, kills, pauses, membership changes),
//! so at most a minority is ever away and at most one membership change is under way. On a cluster of five or
//! more, the faults that keep every node (agent loss, bad links) get a lane of their own that overlaps the main
//! one, so that, say, links degrade while a node is down; a majority stays reachable all the while. A smaller
//! cluster has only the main lane: one fault at a time.

mod action;
mod kind;
mod pick;

use std::fmt::{self, Display, Formatter};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use action::{Action, Degrade, Split, Target};
pub use kind::{FaultKind, FaultKinds};

use crate::Endpoint;

/// Which lane a fault runs in (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// Faults that may take nodes away, one at a time.
    Main,
    /// Faults that keep every node, overlapping the main lane (clusters of five or more only).
    Side,
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
    /// The lane it runs in.
    pub lane: Lane,
}

/// How long the cluster runs undisturbed before the first fault, so that jobs are in flight when it comes.
const WARM_UP: Duration = Duration::from_secs(3);
/// The smallest cluster whose schedule overlaps faults: with five nodes, one away still leaves four, and a
/// majority (three) stays reachable even over degraded links.
const OVERLAP_FROM: u64 = 5;
/// The least time between two agent faults. A killed agent's worker holds its place among the factory's
/// sandboxes until the worker lease runs out (45 s in chaos runs); agent faults any closer would leave no worker
/// alive to run the workload.
const AGENT_SPACING: Duration = Duration::from_secs(30);
/// Mixed into the seed for the side lane's generator, so that adding side faults leaves the main lane as it was.
const SIDE_SEED: u64 = 0x5eed_51de;

/// Plans the faults of a run: the main lane, and on a cluster of [`OVERLAP_FROM`] nodes or more a side lane,
/// both ending before `duration` does, ordered by start time.
pub fn plan(seed: u64, nodes: u64, duration: Duration, kinds: &[FaultKind]) -> Vec<Planned> {
    if kinds.is_empty() || nodes == 0 {
        return Vec::new();
    }
    let ids: Vec<Endpoint> = (1..=nodes).collect();
    let overlap = nodes >= OVERLAP_FROM;
    let (side, main): (Vec<FaultKind>, Vec<FaultKind>) = kinds.iter().partition(|k| overlap && k.keeps_every_node());
    let mut out = lane(&mut StdRng::seed_from_u64(seed), &ids, duration, &main, Lane::Main, (1000, 4000));
    // The side lane's gaps are longer, so that some main faults have company and some do not.
    let mut rng = StdRng::seed_from_u64(seed ^ SIDE_SEED);
    out.extend(lane(&mut rng, &ids, duration, &side, Lane::Side, (2000, 8000)));
    out.sort_by_key(|p| (p.at, p.lane));
    out
}

/// One lane: faults of `kinds` one after another from [`WARM_UP`] on, `gap` (milliseconds, least and most)
/// apart, the last ending by `duration`.
fn lane(
    rng: &mut StdRng,
    ids: &[Endpoint],
    duration: Duration,
    kinds: &[FaultKind],
    lane: Lane,
    gap: (u64, u64),
) -> Vec<Planned> {
    let mut out = Vec::new();
    if kinds.is_empty() {
        return out;
    }
    let others: Vec<FaultKind> = kinds.iter().copied().filter(|k| *k != FaultKind::Agent).collect();
    let mut t = WARM_UP;
    let mut next_agent = Duration::ZERO;
    loop {
        let mut kind = kinds[rng.gen_range(0..kinds.len())];
        if kind == FaultKind::Agent && t < next_agent {
            if others.is_empty() {
                t = next_agent;
            } else {
                kind = others[rng.gen_range(0..others.len())];
            }
        }
        let (action, lasts) = pick::fault(rng, kind, ids);
        if t + lasts > duration {
            break;
        }
        if kind == FaultKind::Agent {
            next_agent = t + AGENT_SPACING;
        }
        out.push(Planned { at: t, lasts, action, lane });
        t += lasts + pick::millis(rng, gap.0, gap.1);
    }
    out
}

impl Display for Planned {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let lane = match self.lane {
            Lane::Main => "",
            Lane::Side => " (overlapping)",
        };
        write!(f, "at {:>6.1}s for {:.1}s{lane}: {}", self.at.as_secs_f64(), self.lasts.as_secs_f64(), self.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: [FaultKind; 3] = [FaultKind::Partition, FaultKind::Kill, FaultKind::Pause];

    fn in_lane(s: &[Planned], lane: Lane) -> Vec<&Planned> {
        s.iter().filter(|p| p.lane == lane).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        for kinds in [&OLD[..], &FaultKind::ALL[..]] {
            let a = plan(42, 5, Duration::from_secs(120), kinds);
            assert_eq!(a, plan(42, 5, Duration::from_secs(120), kinds));
            assert_ne!(a, plan(43, 5, Duration::from_secs(120), kinds));
            assert!(a.len() >= 10, "{}", a.len());
        }
    }

    #[test]
    fn faults_of_one_lane_never_overlap_and_all_end_within_the_run() {
        let d = Duration::from_secs(120);
        for (seed, nodes) in [(7, 3), (8, 5), (9, 5)] {
            let s = plan(seed, nodes, d, &FaultKind::ALL);
            for lane in [Lane::Main, Lane::Side] {
                for w in in_lane(&s, lane).windows(2) {
                    assert!(w[0].at + w[0].lasts < w[1].at, "{} then {}", w[0], w[1]);
                }
            }
            assert!(s.iter().all(|p| p.at + p.lasts <= d));
            assert!(s.windows(2).all(|w| w[0].at <= w[1].at), "ordered by start");
        }
    }

    #[test]
    fn three_nodes_get_one_fault_at_a_time() {
        for seed in 0..20 {
            let s = plan(seed, 3, Duration::from_secs(120), &FaultKind::ALL);
            assert!(s.iter().all(|p| p.lane == Lane::Main));
            for w in s.windows(2) {
                assert!(w[0].at + w[0].lasts < w[1].at, "{} then {}", w[0], w[1]);
            }
        }
    }

    #[test]
    fn five_nodes_overlap_only_faults_that_keep_every_node() {
        let mut overlaps = 0;
        for seed in 0..20 {
            let s = plan(seed, 5, Duration::from_secs(120), &FaultKind::ALL);
            let main = in_lane(&s, Lane::Main);
            for side in in_lane(&s, Lane::Side) {
                assert!(side.action.kind().keeps_every_node(), "{side}");
                overlaps += main.iter().filter(|m| m.at < side.at + side.lasts && side.at < m.at + m.lasts).count();
            }
            assert!(main.iter().all(|m| !m.action.kind().keeps_every_node()), "{main:?}");
        }
        assert!(overlaps > 20, "only {overlaps} overlaps in 20 schedules");
    }

    #[test]
    fn side_faults_leave_the_main_lane_as_it_was() {
        let d = Duration::from_secs(120);
        let old = plan(5, 5, d, &OLD);
        let with_side = plan(5, 5, d, &[OLD.as_slice(), &[FaultKind::Agent, FaultKind::Quality]].concat());
        assert_eq!(old.iter().collect::<Vec<_>>(), in_lane(&with_side, Lane::Main));
    }

    #[test]
    fn agent_faults_are_spaced_out() {
        for (seed, kinds) in [(3, &FaultKind::ALL[..]), (4, &[FaultKind::Agent][..]), (5, &FaultKind::ALL[..])] {
            let s = plan(seed, 5, Duration::from_secs(600), kinds);
            let agents: Vec<&Planned> = s.iter().filter(|p| p.action.kind() == FaultKind::Agent).collect();
            assert!(agents.len() >= 10, "{}", agents.len());
            for w in agents.windows(2) {
                assert!(w[1].at >= w[0].at + AGENT_SPACING, "{} then {}", w[0], w[1]);
            }
        }
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
    fn links_degrade_without_going_dark() {
        let mut seen = 0;
        for seed in 0..50 {
            for p in plan(seed, 5, Duration::from_secs(60), &[FaultKind::Quality]) {
                let Action::Quality { nodes, degrade } = p.action else { panic!("{}", p.action) };
                assert!(!nodes.is_empty() && nodes.iter().all(|n| (1..=5).contains(n)), "{nodes:?}");
                assert!(degrade.drop_pct <= 20 && degrade.delay_min_ms <= degrade.delay_max_ms, "{degrade:?}");
                if nodes.len() >= 3 {
                    assert!(degrade.drop_pct <= 10 && degrade.delay_max_ms <= 25, "a majority's links: {degrade:?}");
                }
                assert_ne!(degrade, Degrade::default());
                seen += 1;
            }
        }
        assert!(seen > 100, "{seen}");
    }

    #[test]
    fn only_the_kinds_asked_for_are_planned() {
        let s = plan(1, 3, Duration::from_secs(60), &[FaultKind::Pause]);
        assert!(!s.is_empty() && s.iter().all(|p| p.action.kind() == FaultKind::Pause));
        let s = plan(1, 5, Duration::from_secs(60), &[FaultKind::Membership, FaultKind::Agent]);
        assert!(s.iter().any(|p| p.action.kind() == FaultKind::Membership));
        assert!(s.iter().any(|p| p.action.kind() == FaultKind::Agent && p.lane == Lane::Side));
    }
}
