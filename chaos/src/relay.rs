//! One endpoint's relay: receives on the address others use for the endpoint, forwards each source's datagrams
//! from that source's own upstream socket to the endpoint's real address, and sends the replies back, deciding
//! each datagram's fate on the way.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{interval_at, sleep, Instant, MissedTickBehavior};
use tracing::{debug, trace, warn};

use crate::delay::{self, Delays};
use crate::guard::TaskGuard;
use crate::link::Link;
use crate::names::loopback;
use crate::shared::Shared;
use crate::upstream::{LastUse, Upstream, Upstreams, IDLE};
use crate::Endpoint;

/// Large enough for any UDP datagram.
const BUF: usize = 64 * 1024;
/// How often idle upstream sockets are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Pause after an unexpected receive error, so a socket that keeps failing does not spin a core.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The state of the relay of endpoint `id`.
struct Relay {
    shared: Arc<Shared>,
    id: Endpoint,
    listen: Arc<UdpSocket>,
    /// The endpoint's real address.
    target: SocketAddr,
    delays: Delays,
    upstreams: Upstreams,
}

/// Runs the relay of `id` on `listen` towards `target` until aborted.
pub(crate) async fn run(shared: Arc<Shared>, id: Endpoint, listen: UdpSocket, target: SocketAddr) {
    let (delays, _delayer) = delay::start();
    let listen = Arc::new(listen);
    let mut relay = Relay { shared, id, listen: listen.clone(), target, delays, upstreams: Upstreams::default() };
    let mut buf = vec![0u8; BUF];
    let mut sweep = interval_at(Instant::now() + SWEEP_EVERY, SWEEP_EVERY);
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = listen.recv_from(&mut buf) => match received {
                Ok((n, src)) => relay.inbound(&buf[..n], src).await,
                Err(e) => pause_after(&e).await,
            },
            _ = sweep.tick() => {
                let closed = relay.upstreams.sweep(Instant::now(), IDLE);
                if closed > 0 {
                    debug!(id, closed, "idle upstream sockets closed");
                }
            }
        }
    }
}

impl Relay {
    /// Forwards a datagram from `src` to the endpoint, if its fate allows.
    async fn inbound(&mut self, data: &[u8], src: SocketAddr) {
        let Some(copies) = self.shared.inbound(src, self.id) else { return };
        if let Some(upstream) = self.upstreams.get(src) {
            upstream.link.deliver(copies, data, &self.delays).await;
            return;
        }
        match self.open(src).await {
            Ok(upstream) => {
                upstream.link.deliver(copies, data, &self.delays).await;
                self.upstreams.insert(src, upstream);
            }
            Err(e) => warn!(id = self.id, %src, error = %e, "cannot open an upstream socket"),
        }
    }

    /// Opens the upstream socket of `src` and starts relaying the endpoint's replies back to `src`.
    async fn open(&self, src: SocketAddr) -> io::Result<Upstream> {
        let sock = UdpSocket::bind(SocketAddr::new(loopback(self.target), 0)).await?;
        sock.connect(self.target).await?;
        debug!(id = self.id, %src, upstream = %sock.local_addr()?, "upstream socket opened");
        let sock = Arc::new(sock);
        let last = LastUse::new();
        let reply = Reply { shared: self.shared.clone(), id: self.id, src, back: Link::to(self.listen.clone(), src) };
        let reader = TaskGuard::spawn(reply.run(sock.clone(), self.delays.clone(), last.clone()));
        Ok(Upstream { link: Link::connected(sock), last, _reader: reader })
    }
}

/// The way back from endpoint `id` to the source `src` of one upstream socket.
struct Reply {
    shared: Arc<Shared>,
    id: Endpoint,
    src: SocketAddr,
    /// The relay's listen socket, sending to `src`.
    back: Link,
}

impl Reply {
    /// Relays the endpoint's replies arriving on `upstream` back to the source.
    async fn run(self, upstream: Arc<UdpSocket>, delays: Delays, last: LastUse) {
        let mut buf = vec![0u8; BUF];
        loop {
            match upstream.recv(&mut buf).await {
                Ok(n) => {
                    last.touch();
                    if let Some(copies) = self.shared.outbound(self.id, self.src) {
                        self.back.deliver(copies, &buf[..n], &delays).await;
                    }
                }
                Err(e) => pause_after(&e).await,
            }
        }
    }
}

/// Lets a relay carry on after a receive error: the errors a dead peer causes (ICMP port unreachable) are
/// expected; anything else is logged and followed by a short pause.
async fn pause_after(e: &io::Error) {
    match e.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock => trace!(error = %e, "receive error"),
        _ => {
            warn!(error = %e, "unexpected receive error");
            sleep(ERROR_PAUSE).await;
        }
    }
}
