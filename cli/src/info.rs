//! `bm info` and `bm check`: who am I, where am I, and does it work.

use anyhow::{Context, Result};
use bm_api::Client;
use clap::Args;
use serde::Serialize;

use crate::outln;
use crate::output::print_json;

/// Arguments of `bm info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// What `bm info --json` prints.
#[derive(Serialize)]
struct Info<'a> {
    urls: &'a [String],
    whoami: bm_api::users::WhoAmI,
}

/// Shows the server URL(s) and the caller's identity, so a user can tell
/// which cluster and account a profile points at.
pub async fn info(client: &Client, args: &InfoArgs) -> Result<()> {
    let whoami = client.whoami().await?;
    if args.json {
        return print_json(&Info { urls: client.urls(), whoami });
    }
    outln!("url:        {}", client.urls().join(","));
    outln!("user:       {} ({})", whoami.name, whoami.id);
    outln!("admin:      {}", if whoami.admin { "yes" } else { "no" });
    let privileges = if whoami.privileges.is_empty() { "-".to_string() } else { whoami.privileges.join(", ") };
    outln!("privileges: {privileges}");
    Ok(())
}

/// Checks that the cluster answers and accepts the token; the exit code
/// tells which part failed (6 unreachable, 5 unauthorized).
pub async fn check(client: &Client) -> Result<()> {
    client.whoami().await.with_context(|| format!("checking {}", client.urls().join(",")))?;
    outln!("ok");
    Ok(())
}
