//! `bm up`: starts a local cluster and writes a profile for it, so a
//! developer can try bm with one command. (Placeholder: to be replaced.)

use crate::UpArgs;

/// Starts the cluster described by `args` and serves until interrupted.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("not yet")
}
