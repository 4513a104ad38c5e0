//! The handle a test harness holds: registers endpoints, starts their relays and sets the faults.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::net::UdpSocket;
use tracing::debug;

use crate::guard::TaskGuard;
use crate::names::{loopback, reachable};
use crate::quality::Quality;
use crate::relay;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::Endpoint;

/// All the relays of one test network and the faults currently in force. Clones share the same network;
/// dropping the last clone stops every relay, as [`Net::shutdown`] does.
#[derive(Clone)]
pub struct Net {
    inner: Arc<Inner>,
}

/// What the clones of a [`Net`] share.
struct Inner {
    shared: Arc<Shared>,
    relays: Mutex<Relays>,
}

/// The running relays (each stops when its guard is dropped).
#[derive(Default)]
struct Relays {
    tasks: Vec<TaskGuard>,
    shut: bool,
}

impl Net {
    /// A network whose random choices (drops, delays, reordering) come from `seed`.
    pub fn new(seed: u64) -> Self {
        let inner = Inner { shared: Arc::new(Shared::new(seed)), relays: Mutex::default() };
        Self { inner: Arc::new(inner) }
    }

    /// Registers endpoint `id` whose real UDP socket is `real` (its listen address; also its source address when
    /// it sends). Starts its relay and returns the address others must use to reach it. A wildcard `real`
    /// (0.0.0.0:p) is reached, and recognised as a source, on loopback. Fails once the network is shut down.
    pub async fn add(&self, id: Endpoint, real: std::net::SocketAddr) -> std::io::Result<std::net::SocketAddr> {
        let target = reachable(real);
        let listen = UdpSocket::bind(SocketAddr::new(loopback(target), 0)).await?;
        let addr = listen.local_addr()?;
        let mut relays = self.relays();
        if relays.shut {
            return Err(io::Error::other("the chaos network is shut down"));
        }
        self.inner.shared.state().names.insert(real, id);
        relays.tasks.push(TaskGuard::spawn(relay::run(self.inner.shared.clone(), id, listen, target)));
        debug!(id, %real, relay = %addr, "relay started");
        Ok(addr)
    }

    /// Registers a sender-only endpoint (for example an agent whose socket address is only known after it starts)
    /// so that faults can name it; `source` is the address its datagrams come from.
    pub fn name_source(&self, id: Endpoint, source: std::net::SocketAddr) {
        self.inner.shared.state().names.insert(source, id);
    }

    /// Drops every datagram from `from` to `to` (one way) until healed.
    pub fn cut(&self, from: Endpoint, to: Endpoint) {
        self.inner.shared.state().cuts.cut(from, to);
        debug!(from, to, "link cut");
    }

    /// Cuts both ways.
    pub fn cut_both(&self, a: Endpoint, b: Endpoint) {
        self.inner.shared.state().cuts.cut_both(a, b);
        debug!(a, b, "link cut both ways");
    }

    /// Partitions the endpoints into groups: links across groups are cut both ways; links inside a group are
    /// left as they are. Endpoints not listed keep every link.
    pub fn partition(&self, groups: &[Vec<Endpoint>]) {
        self.inner.shared.state().cuts.partition(groups);
        debug!(?groups, "network partitioned");
    }

    /// Cuts `id` off from every other endpoint both ways (endpoints registered later included).
    pub fn isolate(&self, id: Endpoint) {
        self.inner.shared.state().cuts.isolate(id);
        debug!(id, "endpoint isolated");
    }

    /// Removes every cut.
    pub fn heal(&self) {
        self.inner.shared.state().cuts.heal();
        debug!("network healed");
    }

    /// Link quality applied to every datagram still allowed: probability of drop, of duplication, a delay range
    /// (uniformly chosen per datagram, so datagrams are reordered when the range is wide), 0 = none.
    pub fn set_quality(&self, q: Quality) {
        self.inner.shared.state().dice.set(q);
        debug!(?q, "link quality set");
    }

    /// Link quality for the datagrams from `from` to `to` only (one way), in place of the network's
    /// [`Net::set_quality`], so that some links can be bad while the others stay good. Datagrams from or to
    /// anonymous sources keep the network's quality.
    pub fn set_link_quality(&self, from: Endpoint, to: Endpoint, q: Quality) {
        self.inner.shared.state().dice.set_link(from, to, q);
        debug!(from, to, ?q, "link quality set for one link");
    }

    /// Link quality for every datagram from or to `id` (agents and other anonymous sources included), in place of
    /// the network's; a link given its own quality with [`Net::set_link_quality`] keeps that.
    pub fn set_endpoint_quality(&self, id: Endpoint, q: Quality) {
        self.inner.shared.state().dice.set_endpoint(id, q);
        debug!(id, ?q, "link quality set for one endpoint");
    }

    /// Forgets every quality set with [`Net::set_link_quality`] or [`Net::set_endpoint_quality`]; the network's
    /// quality stays.
    pub fn clear_link_qualities(&self) {
        self.inner.shared.state().dice.clear_links();
        debug!("link qualities cleared");
    }

    /// Counters: datagrams forwarded, dropped by a cut, dropped by chance, duplicated, delayed.
    pub fn stats(&self) -> Stats {
        self.inner.shared.counters.snapshot()
    }

    /// Stops every relay; datagrams still held for a delay are lost. Later calls to [`Net::add`] fail.
    pub fn shutdown(&self) {
        let tasks = {
            let mut relays = self.relays();
            relays.shut = true;
            std::mem::take(&mut relays.tasks)
        };
        debug!(relays = tasks.len(), "chaos network shut down");
        drop(tasks);
    }

    /// Locks the relay list, tolerating poison (it is only ever pushed to or emptied).
    fn relays(&self) -> MutexGuard<'_, Relays> {
        self.inner.relays.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let relays = self.relays();
        f.debug_struct("Net")
            .field("relays", &relays.tasks.len())
            .field("shut", &relays.shut)
            .field("stats", &self.stats())
            .finish()
    }
}
