//! `bm admin control …` (also `bm control …`, as in buildomat): the
//! cluster-wide switch that stops new work from starting, for maintenance.

use anyhow::Result;
use bm_api::client::Control;
use bm_api::Client;
use clap::Subcommand;

use crate::outln;

/// Subcommands of `bm admin control`.
#[derive(Debug, Subcommand)]
pub enum ControlCmd {
    /// Show whether new work is held
    Show,
    /// Stop assigning jobs and requesting workers
    Hold,
    /// Start assigning jobs and requesting workers again
    Resume,
}

/// Runs one `bm admin control` subcommand.
pub async fn run(client: &Client, cmd: ControlCmd) -> Result<()> {
    let c = match cmd {
        ControlCmd::Show => client.control().await?,
        ControlCmd::Hold => client.control_hold(true).await?,
        ControlCmd::Resume => client.control_hold(false).await?,
    };
    print_control(&c)
}

/// One line a script can match on: `held` or `running`.
fn print_control(c: &Control) -> Result<()> {
    outln!("{}", if c.hold { "held" } else { "running" });
    Ok(())
}
