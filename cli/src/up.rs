//! `bm up`: starts a local cluster in the foreground and writes a profile
//! for it, so `bm -p local …` works at once. The cluster's data stays in
//! `--data` between runs: stop it (or kill it) and start it again, and
//! everything it acknowledged is still there.

use std::path::PathBuf;

use anyhow::Context;

use crate::UpArgs;

fn default_data_dir() -> anyhow::Result<PathBuf> {
    let base = dirs::data_dir().context("cannot find a data directory; pass --data DIR")?;
    Ok(base.join("bm").join("up"))
}

/// Starts the cluster described by `args` and serves until interrupted.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    if args.nodes == 0 {
        anyhow::bail!("--nodes must be at least 1");
    }
    let data = match args.data {
        Some(d) => d,
        None => default_data_dir()?,
    };
    // One node keeps the layout of earlier versions (data/node1); several
    // share a cluster folder (data/cluster/node-N).
    let dir = if args.nodes == 1 { data.join("node1") } else { data.clone() };
    let cluster = crate::embedded::Embedded::start(&dir, args.nodes, args.listen, 4).await?;
    let urls = cluster.urls();
    let token = cluster.token.clone();
    let file = crate::config::save_profile(&args.profile_name, &urls, Some(&token))?;
    let plural = if args.nodes == 1 { "" } else { "s" };
    eprintln!("bm: cluster of {} node{plural} up at {}", args.nodes, urls.join(", "));
    eprintln!("bm: data in {}", data.display());
    eprintln!(
        "bm: profile {:?} written to {}; try: bm -p {} info",
        args.profile_name,
        file.display(),
        args.profile_name
    );
    eprintln!("bm: press Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    eprintln!("bm: stopping");
    cluster.stop().await;
    Ok(())
}
