//! The cluster's certificate authority and the TLS material of the peer link.
//!
//! Every node holds a certificate issued by one cluster CA and trusts only
//! that CA: peers authenticate each other with mutual TLS over QUIC, so a
//! process without a node certificate can neither call Raft RPCs nor forward
//! application requests.
//!
//! Both ring and aws-lc-rs end up in the dependency graph, so rustls cannot
//! choose a process-wide crypto provider; every config here names ring
//! explicitly and never relies on the process default.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use quinn::crypto::rustls::QuicServerConfig;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use bm_api::quic::{certs, client_config as quic_client, provider, roots, transport, Route};

/// Server name every node certificate carries (see [`bm_api::quic::SERVER_NAME`]).
pub const PEER_SERVER_NAME: &str = bm_api::quic::SERVER_NAME;

/// ALPN protocol of the peer link, so that a client speaking something else
/// fails at the handshake rather than at the first frame.
pub const ALPN_PEER: &[u8] = b"bm-peer/1";

/// Validity of the CA certificate.
const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
/// Validity of a node certificate.
const NODE_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Backdating of `not_before`, so that a peer whose clock is a little behind
/// accepts a certificate issued just now.
const BACKDATE: Duration = Duration::from_secs(24 * 3600);

/// A cluster certificate authority (self-signed), as PEM.
///
/// It exists so that an operator can create a cluster's trust root once and
/// issue node certificates from it; nodes only ever need its certificate.
pub struct ClusterCa {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// Generates a new CA (ECDSA P-256) named after the cluster.
    pub fn generate(cluster_name: &str) -> anyhow::Result<Self> {
        let key = KeyPair::generate().context("cannot generate the CA key")?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "bm");
        dn.push(DnType::CommonName, format!("bm cluster CA {cluster_name}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        (params.not_before, params.not_after) = validity(CA_VALIDITY)?;
        let cert = params.self_signed(&key).context("cannot self-sign the CA certificate")?;
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        Ok(Self { cert_pem, key_pem, issuer: Issuer::new(params, key) })
    }

    /// Loads a CA from its certificate and private key (PEM), for example to
    /// issue a certificate for a node that joins later.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| anyhow!("cannot read the CA private key: {e}"))?;
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| anyhow!("cannot read the CA certificate: {e}"))?;
        // The certificate embeds its public key verbatim: a key that does not
        // appear in it is not this CA's key.
        let spki = key.subject_public_key_info();
        if !der.windows(spki.len()).any(|w| w == spki.as_slice()) {
            bail!("the CA private key does not belong to the CA certificate");
        }
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|e| anyhow!("cannot read the CA certificate: {e}"))?;
        if !issuer.key_usages().is_empty() && !issuer.key_usages().contains(&KeyUsagePurpose::KeyCertSign) {
            bail!("the CA certificate may not sign certificates (no keyCertSign usage)");
        }
        Ok(Self { cert_pem: cert_pem.to_string(), key_pem: key_pem.to_string(), issuer })
    }

    /// The CA certificate (PEM), which every node and agent trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key (PEM); keep it off the nodes when possible.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a certificate for node `id` valid as both TLS server and client, with SANs
    /// PEER_SERVER_NAME, "node-{id}.bm" and every entry of `extra_sans` (DNS names or IP addresses).
    pub fn issue_node(&self, id: u64, extra_sans: &[String]) -> anyhow::Result<IssuedCert> {
        let mut sans = vec![PEER_SERVER_NAME.to_string(), format!("node-{id}.bm")];
        sans.extend(extra_sans.iter().cloned());
        let mut params = CertificateParams::new(sans).context("invalid subject alternative name")?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "bm");
        dn.push(DnType::CommonName, format!("node-{id}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        (params.not_before, params.not_after) = validity(NODE_VALIDITY)?;
        let key = KeyPair::generate().context("cannot generate the node key")?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("cannot sign the certificate of node {id}"))?;
        Ok(IssuedCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

/// A certificate and its private key, as PEM, ready to be written to a node's files.
pub struct IssuedCert {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert").finish_non_exhaustive()
    }
}

fn validity(length: Duration) -> anyhow::Result<(time::OffsetDateTime, time::OffsetDateTime)> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).context("the clock is before 1970")?;
    let at = |d: Duration| {
        time::OffsetDateTime::from_unix_timestamp(d.as_secs() as i64).map_err(|e| anyhow!("certificate date: {e}"))
    };
    Ok((at(now.saturating_sub(BACKDATE))?, at(now + length)?))
}

/// PEM file paths as they appear in a node's TOML config.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The cluster CA certificate.
    pub ca: PathBuf,
    /// This node's certificate (may be followed by intermediates).
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

/// Loaded TLS material for the peer endpoint.
///
/// Parsed and checked once at load, so a bad file stops the node at start and
/// not at its first connection.
#[derive(Clone)]
pub struct PeerTls {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    ca_pem: Arc<str>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls").finish_non_exhaustive()
    }
}

impl PeerTls {
    /// Reads the three PEM files; errors name the file.
    pub fn load(files: &TlsFiles) -> anyhow::Result<Self> {
        let read = |what: &str, path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("cannot read the {what} {}", path.display()))
        };
        let ca = read("CA certificate", &files.ca)?;
        let cert = read("node certificate", &files.cert)?;
        let key = read("node private key", &files.key)?;
        let names = Names {
            ca: format!("CA certificate {}", files.ca.display()),
            cert: format!("node certificate {}", files.cert.display()),
            key: format!("node private key {}", files.key.display()),
        };
        Self::build(&ca, &cert, &key, &names)
    }

    /// Builds the material from PEM strings (tests, or material held elsewhere).
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        let names =
            Names { ca: "CA certificate".into(), cert: "node certificate".into(), key: "node private key".into() };
        Self::build(ca_pem, cert_pem, key_pem, &names)
    }

    fn build(ca_pem: &str, cert_pem: &str, key_pem: &str, names: &Names) -> anyhow::Result<Self> {
        let roots = Arc::new(roots(ca_pem, &names.ca)?);
        let chain = certs(cert_pem, &names.cert)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| anyhow!("cannot read the {}: {e}", names.key))?;

        // A certificate, when one is shown, must come from the cluster CA
        // (checked here, at the handshake). Agents show none and speak the
        // agent ALPN; the peer protocol requires one, which the peer server
        // checks right after the handshake (`peer::server`).
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .allow_unauthenticated()
            .build()
            .with_context(|| format!("cannot use the {}", names.ca))?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .with_context(|| format!("the {} does not fit the {}", names.key, names.cert))?;
        server.alpn_protocols = vec![ALPN_PEER.to_vec(), bm_api::agent_link::ALPN.to_vec()];

        let mut client = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .with_context(|| format!("the {} does not fit the {}", names.key, names.cert))?;
        client.alpn_protocols = vec![ALPN_PEER.to_vec()];

        Ok(Self { server: Arc::new(server), client: Arc::new(client), ca_pem: ca_pem.into() })
    }

    /// The cluster CA certificate (PEM), which agents are handed to verify nodes.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// quinn server config: a client certificate, if shown, must be signed by the CA; peers must show one (mutual
    /// TLS), agents show none. `route` is where those clients are.
    pub fn server_config(&self, route: Route) -> anyhow::Result<quinn::ServerConfig> {
        let crypto = QuicServerConfig::try_from(self.server.clone()).context("TLS config unusable for QUIC")?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(transport(route)?);
        Ok(config)
    }

    /// quinn client config: presents this node's certificate, verifies the server (over `route`) against the CA.
    pub fn client_config(&self, route: Route) -> anyhow::Result<quinn::ClientConfig> {
        quic_client(self.client.clone(), route)
    }
}

struct Names {
    ca: String,
    cert: String,
    key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_round_trips_through_pem_and_keeps_issuing() {
        let ca = ClusterCa::generate("test").unwrap();
        let again = ClusterCa::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        let node = again.issue_node(3, &["127.0.0.1".into(), "build-3.example".into()]).unwrap();
        // Material from the reloaded CA is accepted next to the original CA.
        PeerTls::from_pem(ca.cert_pem(), &node.cert_pem, &node.key_pem).unwrap();
    }

    #[test]
    fn a_key_from_another_ca_is_refused() {
        let a = ClusterCa::generate("a").unwrap();
        let b = ClusterCa::generate("b").unwrap();
        let e = ClusterCa::from_pem(a.cert_pem(), b.key_pem()).unwrap_err();
        assert!(e.to_string().contains("does not belong"), "{e}");
    }

    #[test]
    fn a_node_key_that_does_not_fit_its_certificate_is_refused() {
        let ca = ClusterCa::generate("t").unwrap();
        let one = ca.issue_node(1, &[]).unwrap();
        let two = ca.issue_node(2, &[]).unwrap();
        let e = PeerTls::from_pem(ca.cert_pem(), &one.cert_pem, &two.key_pem).unwrap_err();
        assert!(format!("{e:#}").contains("does not fit"), "{e:#}");
    }

    #[test]
    fn load_names_the_missing_file() {
        let files = TlsFiles {
            ca: "/nonexistent/ca.pem".into(),
            cert: "/nonexistent/node.pem".into(),
            key: "/nonexistent/node.key".into(),
        };
        let e = PeerTls::load(&files).err().unwrap();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn load_names_the_unreadable_key() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::generate("t").unwrap();
        let node = ca.issue_node(1, &[]).unwrap();
        let files =
            TlsFiles { ca: dir.path().join("ca.pem"), cert: dir.path().join("n.pem"), key: dir.path().join("n.key") };
        std::fs::write(&files.ca, ca.cert_pem()).unwrap();
        std::fs::write(&files.cert, &node.cert_pem).unwrap();
        std::fs::write(&files.key, "not a key").unwrap();
        let e = PeerTls::load(&files).err().unwrap();
        assert!(e.to_string().contains("n.key"), "{e}");
        std::fs::write(&files.key, &node.key_pem).unwrap();
        PeerTls::load(&files).unwrap();
    }

    #[test]
    fn bad_san_is_an_error() {
        let ca = ClusterCa::generate("t").unwrap();
        assert!(ca.issue_node(1, &["b\u{fc}cher.example".into()]).is_err());
    }
}
