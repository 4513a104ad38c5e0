//! `bm node --config FILE` and `bm local factory`: a node or a local
//! factory as a process of its own, the way a real deployment runs them
//! (the same code as `bm-node` and the factory `bm up` embeds).

use std::path::PathBuf;

use anyhow::{Context, Result};
use bm_factory_local::factory::LocalFactoryConfig;
use clap::Args;

/// Arguments of `bm node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's TOML configuration file
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
}

/// Arguments of `bm local factory`.
#[derive(Debug, Args)]
pub struct FactoryArgs {
    /// Targets to make sandboxes for
    #[arg(long = "target", default_values_t = ["default".to_string(), "local".to_string()], value_name = "NAME")]
    pub targets: Vec<String>,
    /// Most sandboxes at once
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub max_workers: usize,
    /// Folder for the sandboxes [default: a new folder in the system's temporary folder]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs a node until interrupted.
pub async fn node(a: NodeArgs) -> Result<()> {
    let cfg = bm_node::NodeConfig::load(&a.config)?;
    let running = bm_node::start(cfg).await?;
    eprintln!("bm: node {} listening on {}", running.node.id(), running.url());
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}

/// Runs the local factory against the cluster the global options name,
/// with the factory token given as the bearer token, until interrupted.
pub async fn factory(client: &bm_api::Client, token: Option<String>, a: FactoryArgs) -> Result<()> {
    let token = token.context("the local factory needs its factory token (--token or the profile's)")?;
    let dir = match a.dir {
        Some(d) => d,
        None => crate::embedded::sandbox_dir()?,
    };
    let cfg = LocalFactoryConfig {
        factory: bm_factory_local::factory::LoopConfig {
            urls: client.urls().to_vec(),
            token,
            targets: a.targets,
            max_workers: a.max_workers,
        },
        dir,
        agent_bin: crate::embedded::agent_binary()?,
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(bm_factory_local::factory::run(cfg, rx));
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        r = terminated() => r?,
    }
    let _ = stop.send(true);
    task.await.context("the factory task failed")?
}

async fn terminated() -> Result<()> {
    let mut s = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    s.recv().await;
    Ok(())
}
