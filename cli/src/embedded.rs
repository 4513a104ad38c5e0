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
    /// The node.
    pub node: bm_node::Running,
    /// Admin client.
    pub admin: Client,
    /// The admin token.
    pub token: String,
    stop: watch::Sender<bool>,
    factory: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Embedded {
    /// Starts a node keeping its data in `dir`, listening on `listen`, with
    /// the local factory making sandboxes under `dir/sandboxes`.
    pub async fn start(dir: &Path, listen: std::net::SocketAddr, max_workers: usize) -> anyhow::Result<Self> {
        let cfg = bm_node::NodeConfig::in_dir(dir, listen);
        let node = bm_node::start(cfg).await.with_context(|| format!("cannot start a node in {}", dir.display()))?;
        let token = std::fs::read_to_string(dir.join("admin-token"))?.trim().to_string();
        let admin = Client::new(vec![node.url()], Some(token.clone()));
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
            urls: vec![node.url()],
            token: f.token,
            targets: LOCAL_TARGETS.iter().map(|s| s.to_string()).collect(),
            dir: sandbox_dir()?,
            agent_bin: agent_binary()?,
            max_workers,
        };
        let (stop, rx) = watch::channel(false);
        let factory = tokio::spawn(bm_factory_local::factory::run(fcfg, rx));
        Ok(Self { node, admin, token, stop, factory })
    }

    /// Stops the factory (destroying its sandboxes) and the node.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        match self.factory.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "local factory stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "local factory task failed"),
            Ok(Ok(())) => {}
        }
        self.node.stop().await;
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
fn sandbox_dir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("bm-sandboxes-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
    Ok(d)
}

/// This executable, which doubles as the agent.
fn agent_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the bm executable to use as the agent")
}
