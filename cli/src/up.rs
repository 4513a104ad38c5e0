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
    if args.nodes != 1 {
        anyhow::bail!("--nodes {}: this version runs single-node clusters only (multi-node is on its way)", args.nodes);
    }
    let data = match args.data {
        Some(d) => d,
        None => default_data_dir()?,
    };
    let dir = data.join("node1");
    let cluster = crate::embedded::Embedded::start(&dir, args.listen, 4).await?;
    let url = cluster.node.url();
    let token = cluster.token.clone();
    let file = crate::config::save_profile(&args.profile_name, std::slice::from_ref(&url), Some(&token))?;
    eprintln!("bm: cluster of 1 node up at {url}");
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
