//! What the relays of one network share: who is who, the cuts and link quality in force, and the counters.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tracing::trace;

use crate::cuts::Cuts;
use crate::names::Names;
use crate::quality::{Copies, Dice};
use crate::stats::Counters;
use crate::Endpoint;

/// The faults of a network, behind one lock so that deciding a datagram's fate costs one uncontended lock.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) counters: Counters,
}

/// The mutable part of [`Shared`].
pub(crate) struct State {
    pub(crate) names: Names,
    pub(crate) cuts: Cuts,
    pub(crate) dice: Dice,
}

impl Shared {
    /// A network with no endpoints, no faults and random choices seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let state = State { names: Names::default(), cuts: Cuts::default(), dice: Dice::new(seed) };
        Self { state: Mutex::new(state), counters: Counters::default() }
    }

    /// Locks the state. A panic elsewhere while holding the lock leaves the state consistent (every change is a
    /// single collection operation), so a poisoned lock is used as is rather than spreading the panic.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides the fate of a datagram from `src` arriving at the relay of `to`, and counts it.
    pub(crate) fn inbound(&self, src: SocketAddr, to: Endpoint) -> Option<Copies> {
        let mut state = self.state();
        let from = state.names.who(src);
        self.decide(&mut state, from, Some(to))
    }

    /// Decides the fate of a reply from `from` going back to `dst` through `from`'s relay, and counts it.
    pub(crate) fn outbound(&self, from: Endpoint, dst: SocketAddr) -> Option<Copies> {
        let mut state = self.state();
        let to = state.names.who(dst);
        self.decide(&mut state, Some(from), to)
    }

    /// Applies the cuts (only between known endpoints) and then the link's quality.
    fn decide(&self, state: &mut State, from: Option<Endpoint>, to: Option<Endpoint>) -> Option<Copies> {
        let c = &self.counters;
        if let (Some(f), Some(t)) = (from, to) {
            if state.cuts.blocks(f, t) {
                Counters::bump(&c.cut, 1);
                trace!(from = f, to = t, "datagram cut");
                return None;
            }
        }
        let Some(copies) = state.dice.roll(from, to) else {
            Counters::bump(&c.dropped, 1);
            trace!(?from, ?to, "datagram dropped by chance");
            return None;
        };
        Counters::bump(&c.forwarded, 1);
        if copies.second.is_some() {
            Counters::bump(&c.duplicated, 1);
        }
        let delayed = copies.delays().filter(|d| !d.is_zero()).count() as u64;
        if delayed > 0 {
            Counters::bump(&c.delayed, delayed);
        }
        Some(copies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::Quality;
    use crate::Stats;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn cuts_apply_to_named_sources_in_their_direction_only() {
        let shared = Shared::new(1);
        shared.state().names.insert(addr(1001), 1);
        shared.state().names.insert(addr(1002), 2);
        shared.state().cuts.cut(2, 1);
        assert_eq!(shared.inbound(addr(1002), 1), None);
        assert_eq!(shared.outbound(1, addr(1002)), Some(Copies::NOW));
        assert_eq!(shared.inbound(addr(1001), 2), Some(Copies::NOW));
        assert_eq!(shared.outbound(2, addr(1001)), None);
        assert_eq!(shared.counters.snapshot(), Stats { forwarded: 2, cut: 2, ..Stats::default() });
    }

    #[test]
    fn anonymous_sources_are_never_cut_but_suffer_the_quality() {
        let shared = Shared::new(1);
        shared.state().cuts.isolate(1);
        assert_eq!(shared.inbound(addr(9999), 1), Some(Copies::NOW));
        assert_eq!(shared.outbound(1, addr(9999)), Some(Copies::NOW));
        shared.state().dice.set(Quality { drop: 1.0, ..Quality::default() });
        assert_eq!(shared.inbound(addr(9999), 1), None);
        assert_eq!(shared.counters.snapshot(), Stats { forwarded: 2, dropped: 1, ..Stats::default() });
    }

    #[test]
    fn duplicates_and_delays_are_counted_per_copy() {
        let shared = Shared::new(1);
        let ms = std::time::Duration::from_millis(1);
        shared.state().dice.set(Quality { duplicate: 1.0, delay_min: ms, delay_max: 2 * ms, ..Quality::default() });
        assert!(shared.inbound(addr(1), 1).is_some());
        assert_eq!(shared.counters.snapshot(), Stats { forwarded: 1, duplicated: 1, delayed: 2, ..Stats::default() });
    }
}
