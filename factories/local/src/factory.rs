//! The local factory: the shared provisioning loop ([`bm_factory::run`])
//! with the [`LocalProvider`], set up the way `bm up`, `bm local run` and
//! `bm local factory` need it.

use std::path::PathBuf;

/// The loop's settings, part of [`LocalFactoryConfig`].
pub use bm_factory::LoopConfig;
use tokio::sync::watch;

use crate::provider::LocalProvider;

/// How the factory is set up: what every factory's loop needs, plus where
/// the sandboxes go and what runs in them.
#[derive(Clone, Debug)]
pub struct LocalFactoryConfig {
    /// The cluster side: node URLs, token, targets and the cap on sandboxes.
    pub factory: LoopConfig,
    /// Where sandboxes live; held (locked) by this factory for its life,
    /// and emptied on start of whatever a crashed factory left in it.
    pub dir: PathBuf,
    /// The `bm` binary: the agent put in each sandbox, and its init.
    pub agent_bin: PathBuf,
}

/// Runs the factory until `stop` turns true; fails at once when another
/// live factory holds `cfg.dir`.
pub async fn run(cfg: LocalFactoryConfig, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let provider = LocalProvider::start(cfg.dir, cfg.agent_bin)?;
    bm_factory::run(cfg.factory, provider, stop).await
}
