//! `bm`: the command line for a bm cluster.
//!
//! Its commands mirror buildomat's (`info`, `control`, `job`, `user`) and
//! add a few of bm's own (`check`, `admin`, `up`, `local`, `jobfile`). Every
//! command talks to the cluster only through `bm_api::Client`; exit codes
//! are documented in [`exit`] and `docs/cli.md`.

/// mimalloc: with the system allocator, malloc and free were a quarter of a
/// node's CPU on the commit path (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod cluster;
mod config;
mod connect;
mod embedded;
mod exit;
mod info;
mod job;
mod jobfile;
mod local;
mod node_cmd;
mod output;
mod parse;
mod up;
mod user;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

/// The whole command line.
#[derive(Debug, Parser)]
#[command(name = "bm", version, about = "Command line for the bm build farm", propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command accepts: which cluster and which credentials.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Profile from the configuration file [default: the file's
    /// `default_profile`, else "default"]
    #[arg(short, long, env = "BM_PROFILE", global = true, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Node URL(s), repeatable or comma-separated; overrides the profile's
    #[arg(long, env = "BM_URL", value_delimiter = ',', global = true, value_name = "URL")]
    pub url: Vec<String>,
    /// Bearer token; overrides the profile's
    #[arg(long, env = "BM_TOKEN", hide_env_values = true, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Show the server URL(s) and who the token belongs to
    Info(info::InfoArgs),
    /// Check that the profile works: the cluster answers and the token is valid
    Check,
    /// Submit, follow and inspect jobs
    #[command(subcommand)]
    Job(job::JobCmd),
    /// Manage users and their privileges (admin)
    #[command(subcommand)]
    User(user::UserCmd),
    /// Manage targets, factories, workers and the cluster (admin)
    #[command(subcommand)]
    Admin(admin::AdminCmd),
    /// Create a cluster, show its members, add and remove nodes (admin)
    #[command(subcommand)]
    Cluster(cluster::ClusterCmd),
    /// Hold or resume the start of new work (admin; same as `bm admin control`)
    #[command(subcommand)]
    Control(admin::control::ControlCmd),

    // ---- Commands implemented in their own files (up.rs, local.rs, jobfile.rs). ----
    /// Start a local cluster and write a profile named "local" for it
    Up(UpArgs),
    /// Run jobs from a repository on a throw-away local cluster
    #[command(subcommand)]
    Local(LocalCmd),
    /// Run a node of a cluster in the foreground (same as `bm-node --config FILE`)
    Node(node_cmd::NodeArgs),
    /// Work with job files (`.github/buildomat/jobs/*.sh`)
    #[command(subcommand)]
    Jobfile(JobfileCmd),
}

/// Arguments of `bm up` (implemented in `up.rs`).
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of nodes to start
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub nodes: usize,
    /// Directory for the nodes' data; kept across runs so a restarted
    /// cluster has everything it acknowledged [default: $XDG_DATA_HOME/bm/up]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Address of the first node's HTTP API (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:7770", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Name of the profile to write
    #[arg(long, default_value = "local", value_name = "NAME")]
    pub profile_name: String,
}

/// Subcommands of `bm local`.
#[derive(Debug, Subcommand)]
pub enum LocalCmd {
    /// Run a repository's job files on a local cluster (implemented in `local.rs`)
    Run(LocalRunArgs),
    /// Run the local factory (sandboxes on this host) for a cluster; the token is a factory token
    Factory(node_cmd::FactoryArgs),
}

/// Arguments of `bm local run`.
#[derive(Debug, Args)]
pub struct LocalRunArgs {
    /// Repository whose `.github/buildomat/jobs` to run
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,
    /// Number of nodes to start
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub nodes: usize,
    /// Directory to copy the jobs' outputs to
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Run jobs for target FROM on target TO instead
    #[arg(long = "target-map", value_name = "FROM=TO", value_parser = parse::key_value)]
    pub target_map: Vec<(String, String)>,
    /// Jobs to run, by name or file [default: all]
    #[arg(value_name = "JOB")]
    pub jobs: Vec<String>,
}

/// Subcommands of `bm jobfile`.
#[derive(Debug, Subcommand)]
pub enum JobfileCmd {
    /// Check job files for errors (implemented in `jobfile.rs`)
    Check(JobfileCheckArgs),
}

/// Arguments of `bm jobfile check`.
#[derive(Debug, Args)]
pub struct JobfileCheckArgs {
    /// Job files or directories [default: .github/buildomat/jobs]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print the parsed jobs and problems as JSON
    #[arg(long)]
    pub json: bool,
}
// ---- End of commands implemented in their own files. ----

/// Names under which this binary is the worker-side agent or one of the
/// job's tools (the local factory installs `bm` under these names).
const AGENT_NAMES: [&str; 5] = ["bm-agent", "pfexec", "ptime", "banner", "bmat"];

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = argv.first().and_then(|a| std::path::Path::new(a).file_name()).and_then(|n| n.to_str());
    if name.is_some_and(|n| AGENT_NAMES.contains(&n)) {
        return bm_agent::program::main_with(argv);
    }
    // The local factory's sandbox init, when no small `bm-sandbox-init`
    // sits next to this binary (it then links this one under that name).
    if name == Some(bm_factory_local::init::INIT_NAME) {
        return bm_factory_local::init::main(argv);
    }
    tokio::runtime::Runtime::new().expect("start the async runtime").block_on(cli_main())
}

async fn cli_main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` also arrive here, with success.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::SUCCESS });
        }
    };
    init_tracing();
    match run(cli).await {
        Ok(code) => code,
        Err(e) if exit::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bm: error: {e:#}");
            ExitCode::from(exit::code_for_error(&e))
        }
    }
}

/// Logs go to standard error, filtered by `RUST_LOG` (default `warn`), so
/// they never mix with output meant for scripts.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Runs one command and says how the process should exit.
async fn run(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    let done = |r: Result<()>| r.map(|()| ExitCode::SUCCESS);
    match cli.command {
        Command::Info(a) => done(info::info(&connect::client(g)?, &a).await),
        Command::Check => done(info::check(&connect::client(g)?).await),
        Command::Job(cmd) => job::run(&connect::client(g)?, cmd).await,
        Command::User(cmd) => done(user::run(&connect::client(g)?, cmd).await),
        Command::Admin(cmd) => done(admin::run(&connect::client(g)?, cmd).await),
        Command::Control(cmd) => done(admin::control::run(&connect::client(g)?, cmd).await),
        Command::Cluster(cmd) => done(cluster::run(g, cmd).await),
        Command::Up(args) => done(up::run(args).await),
        Command::Local(LocalCmd::Run(args)) => local::run(args).await,
        Command::Local(LocalCmd::Factory(args)) => {
            done(node_cmd::factory(&connect::client(g)?, connect::token(g)?, args).await)
        }
        Command::Node(args) => done(node_cmd::node(args).await),
        Command::Jobfile(JobfileCmd::Check(args)) => jobfile::check(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn urls_split_on_commas_and_repeat() {
        let cli = Cli::try_parse_from(["bm", "--url", "http://a,http://b", "--url", "http://c", "check"]).unwrap();
        assert_eq!(cli.global.url, ["http://a", "http://b", "http://c"]);
    }

    #[test]
    fn global_options_go_after_subcommands() {
        let cli = Cli::try_parse_from(["bm", "job", "list", "-p", "local", "--json"]).unwrap();
        assert_eq!(cli.global.profile.as_deref(), Some("local"));
    }

    #[test]
    fn usage_errors_exit_2() {
        let err = Cli::try_parse_from(["bm", "job", "run", "--env", "NOEQUALS", "x.sh"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(exit::USAGE));
    }
}
