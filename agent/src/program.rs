//! The agent program: started inside a worker by its factory. The same
//! code is linked into `bm`, which becomes the agent when called `bm-agent`.

use std::path::PathBuf;
use std::time::Duration;

use crate::run::{self, Ending, Layout, RunAs};
use bm_api::agent::Instruction;
use bm_api::agent_link::{AgentClient, AgentLink};
use bm_api::Client;
use clap::Parser;

/// Runs the job given to this worker.
#[derive(Parser)]
#[command(name = "bm-agent", version, about = "The bm agent, run inside a worker")]
struct Args {
    /// QUIC address ("host:port") of a cluster node (repeat or
    /// comma-separate for several); the agent uses the nearest that answers.
    #[arg(long, env = "BM_AGENT_QUIC", value_delimiter = ',', required_unless_present = "url")]
    quic: Vec<String>,
    /// The cluster CA certificate (PEM file) to verify nodes against over QUIC.
    #[arg(long, env = "BM_AGENT_CA")]
    ca: Option<PathBuf>,
    /// The cluster CA certificate itself (PEM text), instead of `--ca`: how
    /// a factory that starts the agent hands it over without a file.
    #[arg(long, env = "BM_AGENT_CA_PEM", hide_env_values = true, conflicts_with = "ca")]
    ca_pem: Option<String>,
    /// Base URL of a cluster node's HTTP API, for a cluster without QUIC
    /// endpoints (repeat or comma-separate for several).
    #[arg(long, env = "BM_AGENT_URL", value_delimiter = ',', conflicts_with = "quic")]
    url: Vec<String>,
    /// The single-use bootstrap token from the factory.
    #[arg(long, env = "BM_BOOTSTRAP_TOKEN", hide_env_values = true)]
    bootstrap_token: String,
    /// Run job processes as this uid:gid (the `build` user).
    #[arg(long, value_parser = parse_ids)]
    run_as: Option<(u32, u32)>,
    /// Where the worker's `/work`, `/input`, `/home/build` are (`/` in a real worker).
    #[arg(long, default_value = "/")]
    root: PathBuf,
}

fn parse_ids(s: &str) -> Result<(u32, u32), String> {
    let (u, g) = s.split_once(':').ok_or("expected UID:GID")?;
    Ok((u.parse().map_err(|_| "bad uid")?, g.parse().map_err(|_| "bad gid")?))
}

/// Runs the agent, or the tool `argv[0]` names (`pfexec`, `ptime`, `banner`).
pub fn main_with(argv: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    if let Some(code) = crate::tools::dispatch(&argv) {
        return std::process::ExitCode::from(code.clamp(0, 255) as u8);
    }
    tokio::runtime::Runtime::new().expect("start the async runtime").block_on(agent_main(argv))
}

async fn agent_main(argv: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match agent(Args::parse_from(argv)).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bm-agent: error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// The transport the arguments ask for, without a credential yet.
fn transport(args: &Args) -> anyhow::Result<AgentClient> {
    if args.quic.is_empty() {
        return Ok(AgentClient::Http(Client::new(args.url.clone(), None)));
    }
    let pem = match (&args.ca, &args.ca_pem) {
        (_, Some(pem)) => pem.clone(),
        (Some(ca), None) => std::fs::read_to_string(ca)
            .map_err(|e| anyhow::anyhow!("cannot read the cluster CA {}: {e}", ca.display()))?,
        (None, None) => anyhow::bail!("--quic needs the cluster CA: give --ca FILE or BM_AGENT_CA_PEM"),
    };
    Ok(AgentClient::Quic(AgentLink::new(args.quic.clone(), &pem)?))
}

async fn agent(args: Args) -> anyhow::Result<()> {
    let anon = transport(&args)?;
    let creds = loop {
        match anon.agent_bootstrap(&args.bootstrap_token).await {
            Ok(c) => break c,
            // A lost answer or a leader election: ask again (the exchange is
            // idempotent). A real refusal ends the agent.
            Err(e)
                if !matches!(e.code(), None | Some(bm_api::ErrorCode::Unavailable | bm_api::ErrorCode::Internal)) =>
            {
                anyhow::bail!("bootstrap refused: {e}")
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the cluster; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    tracing::info!(worker = %creds.worker, "bootstrapped");
    let client = anon.with_token(creds.token);
    let run_as = args.run_as.map(|(uid, gid)| RunAs { uid, gid });
    let layout = Layout { root: args.root };
    loop {
        match client.agent_instruction(30).await {
            Ok(Instruction::Wait) => {}
            Ok(Instruction::Run(a)) => {
                let job = a.job.id.clone();
                match run::run(&client, *a, run_as, &layout).await? {
                    Ending::Reported => tracing::info!(%job, "job finished"),
                    Ending::Stopped(why) => tracing::info!(%job, %why, "job stopped"),
                    Ending::Fenced(why) => tracing::warn!(%job, %why, "assignment no longer current"),
                }
                // One job per worker: wait to be told to go.
            }
            Ok(Instruction::Stop { reason }) => {
                tracing::info!(%reason, "told to stop");
                return Ok(());
            }
            Err(e) if e.code() == Some(bm_api::ErrorCode::Unauthorized) => {
                anyhow::bail!("the cluster no longer knows this worker: {e}")
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the cluster; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
