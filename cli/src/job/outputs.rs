//! `bm job outputs`: the files a job kept, to pick one for `bm job copy`.

use anyhow::Result;
use bm_api::Client;
use clap::Args;

use crate::output::{bytes, print_json, Table};

/// Arguments of `bm job outputs`.
#[derive(Debug, Args)]
pub struct OutputsArgs {
    /// Job id
    pub id: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Lists outputs as a table (PATH, SIZE, ID) or JSON.
pub async fn outputs(client: &Client, args: &OutputsArgs) -> Result<()> {
    let outputs = client.job_outputs(&args.id).await?;
    if args.json {
        return print_json(&outputs);
    }
    let mut t = Table::new(&["PATH", "SIZE", "ID"]);
    for o in &outputs {
        t.row(vec![o.path.clone(), bytes(o.size), o.id.clone()]);
    }
    t.print()
}
