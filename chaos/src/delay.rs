//! A relay's delay queue: datagrams held back are sent when their delay has passed, in deadline order, by one
//! task per relay rather than a task per datagram.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use crate::guard::TaskGuard;
use crate::link::Link;

/// How long the queue sleeps when it holds nothing (it wakes earlier for any new datagram).
const IDLE_SLEEP: Duration = Duration::from_secs(3600);

/// Hands datagrams to the relay's delay queue.
#[derive(Clone)]
pub(crate) struct Delays(mpsc::UnboundedSender<Held>);

/// A datagram waiting for its deadline.
struct Held {
    at: Instant,
    /// Arrival order, to keep equal deadlines in order.
    seq: u64,
    link: Link,
    data: Vec<u8>,
}

impl Delays {
    /// Sends `data` on `link` after `delay`.
    pub(crate) fn hold(&self, delay: Duration, link: Link, data: Vec<u8>) {
        // The queue only goes away with its relay, and a datagram lost then is fine.
        let _ = self.0.send(Held { at: Instant::now() + delay, seq: 0, link, data });
    }
}

/// Starts a delay queue; it stops when the guard is dropped.
pub(crate) fn start() -> (Delays, TaskGuard) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Delays(tx), TaskGuard::spawn(run(rx)))
}

/// Receives held datagrams and sends each when due.
async fn run(mut rx: mpsc::UnboundedReceiver<Held>) {
    let mut heap = BinaryHeap::new();
    let mut seq = 0u64;
    let mut open = true;
    loop {
        if !open && heap.is_empty() {
            return;
        }
        let next = heap.peek().map_or_else(|| Instant::now() + IDLE_SLEEP, |h: &Held| h.at);
        tokio::select! {
            held = rx.recv(), if open => match held {
                Some(mut held) => {
                    seq += 1;
                    held.seq = seq;
                    heap.push(held);
                }
                None => open = false,
            },
            () = sleep_until(next) => {
                let now = Instant::now();
                while heap.peek().is_some_and(|h| h.at <= now) {
                    if let Some(held) = heap.pop() {
                        held.link.send(&held.data).await;
                    }
                }
            }
        }
    }
}

// `BinaryHeap` is a max-heap: the earliest deadline (then the earliest arrival) must compare greatest.
impl Ord for Held {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Held {}
