//! The local factory: the shared provisioning loop ([`bm_factory::run`])
//! with the [`LocalProvider`], set up the way `bm up`, `bm local run` and
//! `bm local factory` need it.

use std::path::PathBuf;

use bm_factory::LoopConfig;
use tokio::sync::watch;

use crate::provider::LocalProvider;

/// How the factory is set up.
#[derive(Clone, Debug)]
pub struct LocalFactoryConfig {
    /// Node URLs (for the factory API and for agents).
    pub urls: Vec<String>,
    /// The factory's bearer token.
    pub token: String,
    /// Targets it makes workers for.
    pub targets: Vec<String>,
    /// Where sandboxes live; held (locked) by this factory for its life,
    /// and emptied on start of whatever a crashed factory left in it.
    pub dir: PathBuf,
    /// The `bm-agent` binary to put in each sandbox.
    pub agent_bin: PathBuf,
    /// Most sandboxes at once.
    pub max_workers: usize,
}

/// Runs the factory until `stop` turns true; fails at once when another
/// live factory holds `cfg.dir`.
pub async fn run(cfg: LocalFactoryConfig, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let provider = LocalProvider::start(cfg.dir, cfg.agent_bin)?;
    let lcfg = LoopConfig { urls: cfg.urls, token: cfg.token, targets: cfg.targets, max_workers: cfg.max_workers };
    bm_factory::run(lcfg, provider, stop).await
}
