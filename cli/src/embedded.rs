//! An embedded cluster: a node in this process plus the local factory, as
//! `bm up` and `bm local run` start it. The agent put in each sandbox is
//! this very binary (it becomes the agent when called `bm-agent`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use bm_api::factories::FactoryCreate;
use bm_api::targets::TargetCreate;
use bm_api::{Client, ErrorCode};
use bm_factory_local::factory::LocalFactoryConfig;
use tokio::sync::watch;

/// Targets every local cluster offers (run by the local factory).
pub const LOCAL_TARGETS: [&str; 2] = ["default", "local"];

/// A running embedded cluster.
pub struct Embedded {
    /// The nodes (one, or several talking QUIC over loopback).
    pub nodes: Vec<bm_node::Running>,
    /// Admin client.
    pub admin: Client,
    /// The admin token.
    pub token: String,
    stop: watch::Sender<bool>,
    factory: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Embedded {
    /// Starts `nodes` nodes keeping their data in `dir` (the first one's
    /// API on `listen`), with the local factory making sandboxes in a
    /// temporary folder. The nodes get a cluster CA and a folder each under
    /// `dir/cluster`, made the first time and reused after.
    pub async fn start(
        dir: &Path,
        nodes: usize,
        listen: std::net::SocketAddr,
        max_workers: usize,
    ) -> anyhow::Result<Self> {
        // Even one node gets a peer link: agents reach the cluster over QUIC
        // (the same path as on a real cluster), which needs the CA and the
        // node's certificate.
        let mut tries = 0;
        let running = loop {
            let (configs, fresh) = cluster_configs(&dir.join("cluster"), nodes.max(1), listen)?;
            match start_nodes(&configs).await {
                Ok(running) => break running,
                // The free ports were picked by binding and letting go, and
                // something else took one before the node bound it: a new
                // cluster just picks again.
                Err(e) if fresh && tries < 3 && addr_in_use(&e) => {
                    tries += 1;
                    tracing::warn!(error = %format!("{e:#}"), "a port picked for the new cluster was taken; picking again");
                    std::fs::remove_dir_all(dir.join("cluster")).context("cannot remove the new cluster's files")?;
                }
                Err(e) => return Err(e),
            }
        };
        let token_file = dir.join("cluster").join("admin-token");
        let token = std::fs::read_to_string(&token_file)?.trim().to_string();
        let urls: Vec<String> = running.iter().map(|n| n.url()).collect();
        let admin = Client::new(urls.clone(), Some(token.clone()));
        wait_for_leader(&admin).await?;
        for t in LOCAL_TARGETS {
            let spec = TargetCreate {
                name: t.into(),
                description: "a sandbox on this host".into(),
                redirect: None,
                privilege: None,
            };
            ignore_conflict(admin.target_create(&spec).await.map(|_| ())).context("cannot create the local targets")?;
        }
        // A fresh factory credential each start: the old one's workers are reaped.
        let name = format!("local-{}", std::process::id());
        let f = admin.factory_create(&FactoryCreate { name }).await.context("cannot register the local factory")?;
        let fcfg = LocalFactoryConfig {
            factory: bm_factory_local::factory::LoopConfig {
                urls,
                token: f.token,
                targets: LOCAL_TARGETS.iter().map(|s| s.to_string()).collect(),
                max_workers,
            },
            dir: sandbox_dir()?,
            agent_bin: agent_binary()?,
        };
        let (stop, rx) = watch::channel(false);
        let factory = tokio::spawn(bm_factory_local::factory::run(fcfg, rx));
        Ok(Self { nodes: running, admin, token, stop, factory })
    }

    /// The nodes' API URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url()).collect()
    }

    /// Stops the factory (destroying its sandboxes) and the node.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        match self.factory.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "local factory stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "local factory task failed"),
            Ok(Ok(())) => {}
        }
        for n in self.nodes {
            n.stop().await;
        }
    }
}

/// Starts a node for each config, in order; on an error the nodes already
/// started are stopped again.
async fn start_nodes(configs: &[PathBuf]) -> anyhow::Result<Vec<bm_node::Running>> {
    let mut running = Vec::new();
    for c in configs {
        let started = async {
            let cfg = bm_node::NodeConfig::load(c)?;
            bm_node::start(cfg).await.with_context(|| format!("cannot start the node of {}", c.display()))
        };
        match started.await {
            Ok(node) => running.push(node),
            Err(e) => {
                for n in running {
                    n.stop().await;
                }
                return Err(e);
            }
        }
    }
    Ok(running)
}

/// Whether `e` comes from binding an address something else holds.
fn addr_in_use(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
            || c.to_string().contains("Address already in use")
    })
}

/// The configs of an embedded multi-node cluster in `dir`: made with free
/// loopback ports (node 1's API on `listen`) the first time, read after;
/// `true` with them when they were just made.
fn cluster_configs(dir: &Path, nodes: usize, listen: std::net::SocketAddr) -> anyhow::Result<(Vec<PathBuf>, bool)> {
    use bm_node::cluster::files::{init_cluster, PlannedNode};
    if dir.join("ca.pem").exists() {
        let configs: Vec<PathBuf> = (1..=nodes).map(|i| dir.join(format!("node-{i}")).join("node.toml")).collect();
        if let Some(missing) = configs.iter().find(|c| !c.exists()) {
            anyhow::bail!("{} holds a different cluster (no {}); use another --data", dir.display(), missing.display());
        }
        return Ok((configs, false));
    }
    let ip = listen.ip();
    let mut planned = Vec::new();
    for id in 1..=nodes as u64 {
        let http = if id == 1 { listen } else { bm_node::cluster::ports::free_tcp(ip)? };
        let http = if http.port() == 0 { bm_node::cluster::ports::free_tcp(ip)? } else { http };
        planned.push(PlannedNode {
            id,
            http,
            peer: bm_node::cluster::ports::free_udp(ip)?,
            advertise_peer: None,
            api_url: None,
        });
    }
    Ok((init_cluster(dir, &planned, bm_node::config::RaftTuning::default())?, true))
}

/// Waits until the cluster has a leader that commits (a fresh cluster
/// holds an election first).
async fn wait_for_leader(admin: &Client) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match admin.whoami().await {
            Ok(_) => match admin.cluster_status().await {
                Ok(s) if s.leader.is_some() => return Ok(()),
                Ok(_) | Err(_) if std::time::Instant::now() < deadline => {}
                Ok(_) => anyhow::bail!("the cluster elected no leader in 30 s"),
                Err(e) => return Err(e.into()),
            },
            Err(e) if std::time::Instant::now() >= deadline => return Err(e.into()),
            Err(_) => {}
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn ignore_conflict(r: Result<(), bm_api::ClientError>) -> Result<(), bm_api::ClientError> {
    match r {
        Err(e) if e.code() == Some(ErrorCode::Conflict) => Ok(()),
        other => other,
    }
}

/// Where this run's sandboxes live: under the system's temporary folder
/// (sandbox processes run as unprivileged uids, so every folder above must
/// be searchable by others, which a home or a private temp dir is not).
pub fn sandbox_dir() -> anyhow::Result<PathBuf> {
    let prefix = bm_factory_local::orphans::DEFAULT_DIR_PREFIX;
    let d = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
    Ok(d)
}

/// This executable, which doubles as the agent.
pub fn agent_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the bm executable to use as the agent")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_told_apart_from_other_start_errors() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = std::net::TcpListener::bind(held.local_addr().unwrap()).map(|_| ());
        let e = anyhow::Error::from(taken.unwrap_err()).context("cannot start the node of node.toml");
        assert!(addr_in_use(&e), "{e:#}");
        assert!(!addr_in_use(&anyhow::anyhow!("the cluster elected no leader in 30 s")));
    }
}
