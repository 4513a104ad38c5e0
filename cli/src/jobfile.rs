//! `bm jobfile check`: finds mistakes in job files before they are pushed.
//! (Placeholder: to be replaced.)

use std::process::ExitCode;

use crate::JobfileCheckArgs;

/// Checks the files `args` names; the exit code follows `crate::exit`.
pub async fn check(args: JobfileCheckArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not yet")
}
