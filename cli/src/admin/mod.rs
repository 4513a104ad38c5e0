//! `bm admin …`: operating the cluster (targets, factories, workers, the
//! hold switch). Every command here needs the admin privilege.

pub mod control;
mod factory;
mod target;
mod worker;

use anyhow::Result;
use bm_api::Client;
use clap::Subcommand;

/// Subcommands of `bm admin`.
#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Targets jobs can name
    #[command(subcommand)]
    Target(target::TargetCmd),
    /// Programs that create workers
    #[command(subcommand)]
    Factory(factory::FactoryCmd),
    /// Machines that run jobs
    #[command(subcommand)]
    Worker(worker::WorkerCmd),
    /// Hold or resume the start of new work
    #[command(subcommand)]
    Control(control::ControlCmd),
}

/// Runs one `bm admin` subcommand.
pub async fn run(client: &Client, cmd: AdminCmd) -> Result<()> {
    match cmd {
        AdminCmd::Target(cmd) => target::run(client, cmd).await,
        AdminCmd::Factory(cmd) => factory::run(client, cmd).await,
        AdminCmd::Worker(cmd) => worker::run(client, cmd).await,
        AdminCmd::Control(cmd) => control::run(client, cmd).await,
    }
}
