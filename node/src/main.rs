//! `bm-node`: one node of a bm cluster.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc: with the system allocator, malloc and free were a quarter of a
/// node's CPU on the commit path (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs a bm node.
#[derive(Parser)]
#[command(name = "bm-node", version, about = "A node of a bm build-farm cluster")]
struct Args {
    /// The node's TOML configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,warp=warn,openraft=warn,fjall=warn,lsm_tree=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(Cmd::Openapi) = args.cmd {
        print!("{}", bm_node::openapi::document());
        return std::process::ExitCode::SUCCESS;
    }
    let Some(config) = args.config else {
        eprintln!("bm-node: error: --config FILE is required");
        return std::process::ExitCode::from(2);
    };
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bm-node: error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(config: PathBuf) -> anyhow::Result<()> {
    let cfg = bm_node::NodeConfig::load(&config)?;
    let running = bm_node::start(cfg).await?;
    println!("bm-node {} listening on {}", running.node.id(), running.url());
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}
