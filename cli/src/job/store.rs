//! `bm job store …`: the job's key-value store, for passing values (and
//! secrets) into a job and reading what it recorded.

use anyhow::{bail, Result};
use bm_api::jobs::StorePut;
use bm_api::Client;
use clap::Subcommand;

use crate::outln;
use crate::output::{age, print_json, Table};

/// Subcommands of `bm job store`.
#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// Print one value
    Get {
        /// Job id
        id: String,
        /// Value name
        name: String,
    },
    /// Write one value
    Put {
        /// Job id
        id: String,
        /// Value name
        name: String,
        /// The value
        value: String,
        /// Keep the value secret: only the job can read it
        #[arg(long)]
        secret: bool,
    },
    /// List the values (secrets without their value)
    #[command(alias = "ls")]
    List {
        /// Job id
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `bm job store` subcommand.
pub async fn run(client: &Client, cmd: StoreCmd) -> Result<()> {
    match cmd {
        StoreCmd::Get { id, name } => {
            let v = client.job_store_get(&id, &name).await?;
            match v.value {
                Some(value) => outln!("{value}"),
                None if v.secret => bail!("{name:?} is a secret; only the job can read it"),
                None => bail!("{name:?} has no value"),
            }
        }
        StoreCmd::Put { id, name, value, secret } => {
            client.job_store_put(&id, &name, &StorePut { value, secret }).await?;
        }
        StoreCmd::List { id, json } => {
            let values = client.job_store(&id).await?;
            if json {
                return print_json(&values);
            }
            let mut t = Table::new(&["NAME", "SECRET", "UPDATED", "VALUE"]);
            for (name, v) in &values {
                let shown = if v.secret {
                    "-".to_string()
                } else {
                    v.value.as_deref().unwrap_or_default().replace('\n', "\\n")
                };
                t.row(vec![name.clone(), if v.secret { "yes" } else { "no" }.into(), age(v.time_update), shown]);
            }
            t.print()?;
        }
    }
    Ok(())
}
