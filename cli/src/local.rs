//! `bm local run`: runs a repository's job files on a throw-away local
//! cluster, the way CI would. (Placeholder: to be replaced.)

use std::process::ExitCode;

use crate::LocalRunArgs;

/// Runs the jobs `args` names; the exit code follows `crate::exit`.
pub async fn run(args: LocalRunArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not yet")
}
