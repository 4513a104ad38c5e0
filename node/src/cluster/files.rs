//! The files a cluster starts from, as `bm cluster init` and
//! `bm cluster new-node` write them: a cluster CA, and per node a folder
//! with its config, certificate, key, the CA certificate and the shared
//! admin token. Configs use paths relative to their folder, so a folder
//! can be copied to the machine that runs the node.
//!
//! ```text
//! DIR/ca.pem  DIR/ca.key  DIR/admin-token
//! DIR/node-1/node.toml  node.pem  node.key  ca.pem  admin-token
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bm_raft::tls::{ClusterCa, TlsFiles};

use crate::config::{Member, NodeConfig, PeerConfig, RaftTuning};

/// One node to write files for.
#[derive(Clone, Debug)]
pub struct PlannedNode {
    /// Its id.
    pub id: u64,
    /// Where its HTTP API listens.
    pub http: SocketAddr,
    /// Where its QUIC peer endpoint listens.
    pub peer: SocketAddr,
    /// The peer address others use, when not `peer` (a relay, NAT).
    pub advertise_peer: Option<String>,
    /// The API URL clients use, when not `http://{http}`.
    pub api_url: Option<String>,
}

impl PlannedNode {
    fn member(&self) -> Member {
        Member {
            id: self.id,
            peer: self.advertise_peer.clone().unwrap_or_else(|| self.peer.to_string()),
            api: self.api_url.clone().unwrap_or_else(|| format!("http://{}", self.http)),
        }
    }
}

/// Writes a new cluster's CA, admin token and one folder per node, all
/// listing the same initial members. Returns each node's config path.
/// Refuses to overwrite an existing CA.
pub fn init_cluster(dir: &Path, nodes: &[PlannedNode], tuning: RaftTuning) -> anyhow::Result<Vec<PathBuf>> {
    if dir.join("ca.pem").exists() {
        anyhow::bail!("{} already holds a cluster CA (ca.pem); choose an empty folder", dir.display());
    }
    let mut ids: Vec<u64> = nodes.iter().map(|n| n.id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != nodes.len() || ids.contains(&0) {
        anyhow::bail!("node ids must be distinct and at least 1");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca = ClusterCa::generate("bm")?;
    write_private(&dir.join("ca.key"), ca.key_pem())?;
    std::fs::write(dir.join("ca.pem"), ca.cert_pem())?;
    write_private(&dir.join("admin-token"), &format!("{}\n", crate::auth::new_token()))?;
    let members: Vec<Member> = nodes.iter().map(PlannedNode::member).collect();
    nodes.iter().map(|n| write_node(dir, &ca, n, members.clone(), tuning.clone())).collect()
}

/// Writes the folder of a node that will join an existing cluster made by
/// [`init_cluster`] in `dir` (it lists no initial members; add it with
/// `bm cluster add`). Returns its config path.
pub fn new_node(dir: &Path, node: &PlannedNode, tuning: RaftTuning) -> anyhow::Result<PathBuf> {
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f)).with_context(|| format!("cannot read {}", dir.join(f).display()))
    };
    let ca = ClusterCa::from_pem(&read("ca.pem")?, &read("ca.key")?)?;
    if dir.join(format!("node-{}", node.id)).exists() {
        anyhow::bail!("{} already exists", dir.join(format!("node-{}", node.id)).display());
    }
    write_node(dir, &ca, node, Vec::new(), tuning)
}

fn write_node(
    dir: &Path,
    ca: &ClusterCa,
    n: &PlannedNode,
    initial_members: Vec<Member>,
    raft: RaftTuning,
) -> anyhow::Result<PathBuf> {
    let folder = dir.join(format!("node-{}", n.id));
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let mut sans = vec![n.peer.ip().to_string()];
    if let Some(a) = &n.advertise_peer {
        if let Some((host, _)) = a.rsplit_once(':') {
            sans.push(host.trim_matches(['[', ']']).to_string());
        }
    }
    sans.dedup();
    let cert = ca.issue_node(n.id, &sans)?;
    std::fs::write(folder.join("node.pem"), &cert.cert_pem)?;
    write_private(&folder.join("node.key"), &cert.key_pem)?;
    std::fs::write(folder.join("ca.pem"), ca.cert_pem())?;
    let token = std::fs::read(dir.join("admin-token")).context("cannot read the cluster's admin-token")?;
    write_private(&folder.join("admin-token"), std::str::from_utf8(&token)?)?;
    let cfg = NodeConfig {
        id: n.id,
        data_dir: "data".into(),
        listen_http: n.http,
        admin_token_file: "admin-token".into(),
        public_url: n.api_url.clone(),
        worker_lease_secs: 120,
        spare_workers: Default::default(),
        raft,
        peer: Some(PeerConfig {
            listen: n.peer,
            advertise: n.advertise_peer.clone(),
            tls: TlsFiles { ca: "ca.pem".into(), cert: "node.pem".into(), key: "node.key".into() },
            initial_members,
        }),
        limits: Default::default(),
        retention: Default::default(),
        keep_all_bytes: false,
        test_only: Default::default(),
    };
    let path = folder.join("node.toml");
    std::fs::write(&path, toml::to_string_pretty(&cfg)?)?;
    Ok(path)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
