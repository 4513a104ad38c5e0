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

/// ring, named explicitly (see the module documentation).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The transport settings of every bm QUIC connection (keep-alive, idle
/// timeout, flow-control windows).
pub fn transport() -> anyhow::Result<Arc<quinn::TransportConfig>> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    t.max_idle_timeout(Some(MAX_IDLE.try_into().context("idle timeout")?));
    t.stream_receive_window(STREAM_WINDOW.into());
    t.send_window(SEND_WINDOW);
    Ok(Arc::new(t))
}

/// A quinn client config from a rustls one, with bm's transport settings.
pub fn client_config(crypto: Arc<rustls::ClientConfig>) -> anyhow::Result<quinn::ClientConfig> {
    let crypto = QuicClientConfig::try_from(crypto).context("TLS config unusable for QUIC")?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport()?);
    Ok(config)
}

/// A client config that verifies the cluster CA without presenting a
/// certificate and speaks `alpn`: what an agent uses.
pub fn anonymous_client_config(ca_pem: &str, alpn: &[u8]) -> anyhow::Result<quinn::ClientConfig> {
    let roots = roots(ca_pem, "CA certificate")?;
    let mut client = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![alpn.to_vec()];
    client_config(Arc::new(client))
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
