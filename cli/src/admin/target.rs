//! `bm admin target …`: creating targets and moving them with redirects.

use anyhow::Result;
use bm_api::targets::{Target, TargetCreate};
use bm_api::Client;
use clap::Subcommand;

use crate::outln;
use crate::output::{or_dash, print_list};

/// Subcommands of `bm admin target`.
#[derive(Debug, Subcommand)]
pub enum TargetCmd {
    /// List targets
    #[command(alias = "list")]
    Ls {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Create a target
    Create {
        /// Target name
        name: String,
        /// For people
        #[arg(long, default_value = "")]
        description: String,
        /// Run this target's jobs on another target
        #[arg(long, value_name = "TARGET")]
        redirect: Option<String>,
        /// Privilege a submitter must hold
        #[arg(long, value_name = "P")]
        privilege: Option<String>,
    },
    /// Point a target at another one, or clear its redirect when TARGET is absent
    Redirect {
        /// Target name
        name: String,
        /// Where its jobs should run
        target: Option<String>,
    },
}

/// Runs one `bm admin target` subcommand.
pub async fn run(client: &Client, cmd: TargetCmd) -> Result<()> {
    match cmd {
        TargetCmd::Ls { json } => {
            let targets = client.targets().await?;
            print_list(&targets, json, &["ID", "NAME", "REDIRECT", "PRIVILEGE", "DESCRIPTION"], |x| {
                vec![
                    x.id.clone(),
                    x.name.clone(),
                    or_dash(x.redirect.as_deref()),
                    or_dash(x.privilege.as_deref()),
                    x.description.clone(),
                ]
            })
        }
        TargetCmd::Create { name, description, redirect, privilege } => {
            let t = client.target_create(&TargetCreate { name, description, redirect, privilege }).await?;
            print_target(&t)
        }
        TargetCmd::Redirect { name, target } => print_target(&client.target_redirect(&name, target).await?),
    }
}

/// Confirms a change by showing the target's id and redirect.
fn print_target(t: &Target) -> Result<()> {
    match &t.redirect {
        Some(r) => outln!("{} {} -> {r}", t.id, t.name),
        None => outln!("{} {}", t.id, t.name),
    }
    Ok(())
}
