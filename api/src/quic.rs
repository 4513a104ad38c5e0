//! QUIC and TLS plumbing shared by both links that speak QUIC: the peer link
//! between nodes (mutual TLS, in `bm-raft`) and the agent link (the agent
//! verifies the cluster CA and presents no certificate).
//!
//! Both ring and aws-lc-rs end up in the dependency graph, so rustls cannot
//! choose a process-wide crypto provider; every config here names ring
//! explicitly and never relies on the process default.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

/// Server name every node certificate carries; peers and agents connect with it.
///
/// Nodes are addressed by IP and port, which may change; one fixed name lets
/// any node verify any other against the cluster CA without knowing its address.
pub const SERVER_NAME: &str = "bm-node";

/// How often an idle connection sends a keep-alive.
const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// How long a silent connection lives: a cut link is noticed after this, and
/// the next call makes a fresh connection.
const MAX_IDLE: Duration = Duration::from_secs(5);
/// Bytes one stream may have in flight before its receiver grants more.
/// quinn's default (1.25 MB) is sized for 100 Mbit/s over 100 ms; blob
/// pieces (4 MiB) and outputs (up to the per-file limit) move on one stream
/// each, and a window smaller than a piece stalls the sender on every
/// grant while both ends share busy cores.
const STREAM_WINDOW: u32 = 16 << 20;
/// Bytes all streams of a connection may have in flight unacknowledged
/// (the sender's side): room for a few pieces going to one peer at once.
const SEND_WINDOW: u64 = 64 << 20;

/// The largest UDP payload a bm endpoint sends and takes on loopback (see
/// [`Route::Loopback`]). 65,000 keeps under IPv4's 65,507-byte limit.
pub const LARGEST_DATAGRAM: u16 = 65_000;

/// Where a QUIC endpoint's peers are, which decides its datagram size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Another host: QUIC's 1,200 bytes, raised by quinn's path MTU
    /// discovery to about 1,452, sent in batches by segmentation offload.
    Network,
    /// This host (a local cluster of `bm up` or `bm local run`, and its
    /// agents): the path carries 64 KB datagrams. A QUIC packet costs about
    /// the same CPU whatever its size (a syscall, a header, an AEAD call,
    /// an ACK), so one stream moves 580-600 MB/s where 1,452-byte packets
    /// move 330-430. Segmentation offload is off: with it on, quinn's MTU
    /// discovery did not get datagrams past 60 KB on this path (see the test
    /// `loopback_connections_grow_their_datagrams_to_near_64_kb`).
    Loopback,
}

impl Route {
    /// [`Route::Loopback`] when every address is a loopback one (a
    /// "host:port" that is an IP address, or `localhost`).
    pub fn of<'a>(addrs: impl IntoIterator<Item = &'a str>) -> Route {
        let local = |a: &str| match a.parse::<std::net::SocketAddr>() {
            Ok(sa) => sa.ip().is_loopback(),
            Err(_) => a.rsplit_once(':').is_some_and(|(host, _)| host == "localhost"),
        };
        let mut addrs = addrs.into_iter().peekable();
        if addrs.peek().is_none() {
            return Route::Network;
        }
        if addrs.all(local) {
            Route::Loopback
        } else {
            Route::Network
        }
    }
}

/// ring, named explicitly (see the module documentation).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The transport settings of every bm QUIC connection (keep-alive, idle
/// timeout, flow-control windows, datagram sizes for `route`).
pub fn transport(route: Route) -> anyhow::Result<Arc<quinn::TransportConfig>> {
    let mut t = quinn::TransportConfig::default();
    if route == Route::Loopback {
        let mut mtu = quinn::MtuDiscoveryConfig::default();
        mtu.upper_bound(LARGEST_DATAGRAM);
        t.mtu_discovery_config(Some(mtu));
        t.enable_segmentation_offload(false);
    }
    t.keep_alive_interval(Some(KEEP_ALIVE));
    t.max_idle_timeout(Some(MAX_IDLE.try_into().context("idle timeout")?));
    t.stream_receive_window(STREAM_WINDOW.into());
    t.send_window(SEND_WINDOW);
    Ok(Arc::new(t))
}

/// The endpoint settings of every bm QUIC endpoint: it takes datagrams up
/// to [`LARGEST_DATAGRAM`] (and says so to its peers, which send them only
/// on [`Route::Loopback`], once MTU discovery has found the path carries them).
pub fn endpoint_config() -> anyhow::Result<quinn::EndpointConfig> {
    let mut e = quinn::EndpointConfig::default();
    e.max_udp_payload_size(LARGEST_DATAGRAM).context("datagram size")?;
    Ok(e)
}

/// A quinn endpoint on `addr` with [`endpoint_config`], serving `server` if
/// given. Must be called within a Tokio runtime.
pub fn endpoint(addr: std::net::SocketAddr, server: Option<quinn::ServerConfig>) -> anyhow::Result<quinn::Endpoint> {
    let socket = std::net::UdpSocket::bind(addr).with_context(|| format!("cannot bind UDP {addr}"))?;
    let runtime = quinn::default_runtime().context("no async runtime for QUIC")?;
    let socket = BoundedRecv(runtime.wrap_udp_socket(socket).context("cannot use the UDP socket")?);
    quinn::Endpoint::new_with_abstract_socket(endpoint_config()?, server, Arc::new(socket), runtime)
        .context("cannot start a QUIC endpoint")
}

/// Coalesced datagrams a receive slot is sized for (see [`BoundedRecv`]).
const RECV_SEGMENTS: usize = 2;

/// The platform's UDP socket, reporting at most [`RECV_SEGMENTS`] coalesced
/// datagrams per receive.
///
/// quinn sizes an endpoint's receive buffer as largest datagram x
/// coalesced datagrams (64 with Linux's UDP GRO) x 32 receives at once:
/// with [`LARGEST_DATAGRAM`] that is 128 MiB, zero-filled, in every node,
/// agent and client (it was a tenth of the CPU of a bench whose 16 agents
/// each opened one). The kernel never coalesces more than 64 KiB into one
/// receive, so two of our largest datagrams per slot hold anything it
/// delivers, and the buffer is 4 MiB.
#[derive(Debug)]
struct BoundedRecv(Arc<dyn quinn::AsyncUdpSocket>);

impl quinn::AsyncUdpSocket for BoundedRecv {
    fn create_io_poller(self: Arc<Self>) -> std::pin::Pin<Box<dyn quinn::UdpPoller>> {
        self.0.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &quinn::udp::Transmit) -> std::io::Result<()> {
        self.0.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut std::task::Context,
        bufs: &mut [std::io::IoSliceMut<'_>],
        meta: &mut [quinn::udp::RecvMeta],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.0.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.0.max_receive_segments().min(RECV_SEGMENTS)
    }

    fn may_fragment(&self) -> bool {
        self.0.may_fragment()
    }
}

/// A quinn client config from a rustls one, with bm's transport settings for `route`.
pub fn client_config(crypto: Arc<rustls::ClientConfig>, route: Route) -> anyhow::Result<quinn::ClientConfig> {
    let crypto = QuicClientConfig::try_from(crypto).context("TLS config unusable for QUIC")?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport(route)?);
    Ok(config)
}

/// A client config that verifies the cluster CA without presenting a
/// certificate and speaks `alpn`: what an agent uses to reach nodes over `route`.
pub fn anonymous_client_config(ca_pem: &str, alpn: &[u8], route: Route) -> anyhow::Result<quinn::ClientConfig> {
    let roots = roots(ca_pem, "CA certificate")?;
    let mut client = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![alpn.to_vec()];
    client_config(Arc::new(client), route)
}

/// The certificates of a PEM text; `name` says which file it was in errors.
pub fn certs(pem: &str, name: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("cannot read the {name}: {e}"))?;
    if certs.is_empty() {
        bail!("the {name} holds no certificate");
    }
    Ok(certs)
}

/// A root store holding the certificates of a PEM text (the cluster CA).
pub fn roots(pem: &str, name: &str) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certs(pem, name)? {
        roots.add(cert).map_err(|e| anyhow!("cannot use the {name}: {e}"))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn only_addresses_all_on_this_host_make_a_loopback_route() {
        assert_eq!(Route::of(["127.0.0.1:4000", "[::1]:4001", "localhost:4002"]), Route::Loopback);
        assert_eq!(Route::of(["127.0.0.1:4000", "10.0.0.2:4000"]), Route::Network);
        assert_eq!(Route::of(["node1.example:4000"]), Route::Network);
        assert_eq!(Route::of([]), Route::Network);
    }
}
