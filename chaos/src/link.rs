//! Sends a datagram's copies, at once or through the delay queue, from the socket it must leave from.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tracing::trace;

use crate::delay::Delays;
use crate::quality::Copies;

/// A socket and where datagrams sent on it go: cheap to clone (an `Arc`), so a delayed datagram can carry it.
#[derive(Clone)]
pub(crate) struct Link {
    sock: Arc<UdpSocket>,
    /// `None` for a connected socket (an upstream socket, connected to the endpoint's real address).
    to: Option<SocketAddr>,
}

impl Link {
    /// Sends on `sock`, which is connected to its peer.
    pub(crate) fn connected(sock: Arc<UdpSocket>) -> Self {
        Self { sock, to: None }
    }

    /// Sends on `sock` to `to`.
    pub(crate) fn to(sock: Arc<UdpSocket>, to: SocketAddr) -> Self {
        Self { sock, to: Some(to) }
    }

    /// Sends `data` now. Errors (a dead peer's ICMP reported on a connected socket, a full buffer) lose the
    /// datagram, as the network would.
    pub(crate) async fn send(&self, data: &[u8]) {
        let sent = match self.to {
            Some(to) => self.sock.send_to(data, to).await,
            None => self.sock.send(data).await,
        };
        if let Err(e) = sent {
            trace!(to = ?self.to, error = %e, "send failed");
        }
    }

    /// Sends each of `copies` of `data`: at once from the caller's buffer, or a copy of it through `delays`.
    pub(crate) async fn deliver(&self, copies: Copies, data: &[u8], delays: &Delays) {
        for delay in copies.delays() {
            if delay.is_zero() {
                self.send(data).await;
            } else {
                delays.hold(delay, self.clone(), data.to_vec());
            }
        }
    }
}
