//! `bm admin factory …`: registering factories and switching them off.

use anyhow::Result;
use bm_api::factories::{Factory, FactoryCreate};
use bm_api::Client;
use clap::Subcommand;

use crate::outln;
use crate::output::{age, print_json, print_list};

/// Subcommands of `bm admin factory`.
#[derive(Debug, Subcommand)]
pub enum FactoryCmd {
    /// List factories
    #[command(alias = "list")]
    Ls {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Register a factory and print its token (shown this once)
    Create {
        /// Factory name
        name: String,
        /// Print the whole answer (factory and token) as JSON
        #[arg(long)]
        json: bool,
    },
    /// Let a factory lease work again
    Enable {
        /// Factory name or id
        name: String,
    },
    /// Stop a factory from leasing new work
    Disable {
        /// Factory name or id
        name: String,
    },
}

/// Runs one `bm admin factory` subcommand.
pub async fn run(client: &Client, cmd: FactoryCmd) -> Result<()> {
    match cmd {
        FactoryCmd::Ls { json } => {
            let factories = client.factories().await?;
            print_list(&factories, json, &["ID", "NAME", "ENABLED", "AGE"], |f| {
                vec![f.id.clone(), f.name.clone(), yes_no(f.enabled), age(f.created)]
            })
        }
        FactoryCmd::Create { name, json } => {
            let created = client.factory_create(&FactoryCreate { name }).await?;
            if json {
                return print_json(&created);
            }
            outln!("{}", created.token);
            Ok(())
        }
        FactoryCmd::Enable { name } => print_factory(&client.factory_enable(&name, true).await?),
        FactoryCmd::Disable { name } => print_factory(&client.factory_enable(&name, false).await?),
    }
}

/// "yes" or "no", for table cells.
fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Confirms a change by showing the factory's state.
fn print_factory(f: &Factory) -> Result<()> {
    outln!("{} {} {}", f.id, f.name, if f.enabled { "enabled" } else { "disabled" });
    Ok(())
}
