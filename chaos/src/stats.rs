//! Counters of what the relays did with the datagrams they received.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the relays of a network did so far, so tests can check that a fault really bit.
/// Every datagram received by a relay ends up in exactly one of `forwarded`, `cut` or `dropped`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams let through (counted once, whatever their copies).
    pub forwarded: u64,
    /// Datagrams dropped because their link was cut.
    pub cut: u64,
    /// Datagrams dropped by chance (`Quality::drop`).
    pub dropped: u64,
    /// Extra copies sent (`Quality::duplicate`).
    pub duplicated: u64,
    /// Copies held back for a non-zero delay before being sent.
    pub delayed: u64,
}

/// The live, lock-free counterpart of [`Stats`] that relays bump on the hot path.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) forwarded: AtomicU64,
    pub(crate) cut: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) duplicated: AtomicU64,
    pub(crate) delayed: AtomicU64,
}

impl Counters {
    /// Adds `n` to `counter`.
    pub(crate) fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            forwarded: self.forwarded.load(Ordering::Relaxed),
            cut: self.cut.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            duplicated: self.duplicated.load(Ordering::Relaxed),
            delayed: self.delayed.load(Ordering::Relaxed),
        }
    }
}
