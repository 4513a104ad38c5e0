//! `bm user …`: accounts and privileges (admin only).

use anyhow::Result;
use bm_api::users::{User, UserCreate};
use bm_api::Client;
use clap::Subcommand;

use crate::outln;
use crate::output::{age, print_json, print_list};

/// Subcommands of `bm user`.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// List users
    #[command(alias = "list")]
    Ls {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Create a user and print its token (shown this once)
    Create {
        /// User name
        name: String,
        /// Privilege to grant (repeatable)
        #[arg(long = "privilege", value_name = "P")]
        privileges: Vec<String>,
        /// Print the whole answer (user and token) as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one user
    Show {
        /// User name or id
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Grant a privilege
    Grant {
        /// User name or id
        name: String,
        /// Privilege
        privilege: String,
    },
    /// Revoke a privilege
    Revoke {
        /// User name or id
        name: String,
        /// Privilege
        privilege: String,
    },
}

/// Runs one `bm user` subcommand.
pub async fn run(client: &Client, cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Ls { json } => {
            let users = client.users().await?;
            print_list(&users, json, &["ID", "NAME", "PRIVILEGES", "AGE"], |u| {
                vec![u.id.clone(), u.name.clone(), privileges(u), age(u.created)]
            })
        }
        UserCmd::Create { name, privileges, json } => {
            let created = client.user_create(&UserCreate { name, privileges }).await?;
            if json {
                return print_json(&created);
            }
            outln!("{}", created.token);
            Ok(())
        }
        UserCmd::Show { name, json } => {
            let u = client.user(&name).await?;
            if json {
                return print_json(&u);
            }
            outln!("id:         {}", u.id);
            outln!("name:       {}", u.name);
            outln!("privileges: {}", privileges(&u));
            outln!(
                "created:    {} ({} ago)",
                u.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                age(u.created)
            );
            Ok(())
        }
        UserCmd::Grant { name, privilege } => print_privileges(&client.user_grant(&name, &privilege).await?),
        UserCmd::Revoke { name, privilege } => print_privileges(&client.user_revoke(&name, &privilege).await?),
    }
}

/// A user's privileges as one cell.
fn privileges(u: &User) -> String {
    if u.privileges.is_empty() {
        "-".into()
    } else {
        u.privileges.join(",")
    }
}

/// Confirms a grant or revoke by showing what the user now holds.
fn print_privileges(u: &User) -> Result<()> {
    outln!("{}: {}", u.name, privileges(u));
    Ok(())
}
