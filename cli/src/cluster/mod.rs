//! `bm cluster …`: create a cluster's files, watch its members, change its
//! membership.

mod init;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use bm_api::cluster::MemberAdd;
use clap::{Args, Subcommand};

use crate::GlobalArgs;

/// Subcommands of `bm cluster`.
#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Create a cluster CA, an admin token and a config folder per node
    Init(InitArgs),
    /// Create the config folder of one more node for a cluster made by `init`
    NewNode(NewNodeArgs),
    /// Show every member: role, term, log, commit and apply indexes, lag, health
    Status(StatusArgs),
    /// Add a node: it joins as a learner, catches up, then votes
    Add(AddArgs),
    /// Remove a node from the cluster
    Remove {
        /// The node's id
        id: u64,
    },
    /// Hand leadership to another voter
    TransferLeader {
        /// The voter that should lead
        id: u64,
    },
}

/// Arguments of `bm cluster init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Number of nodes (3 or 5 for a highly available cluster)
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub nodes: u64,
    /// Folder to write into (must not hold a cluster already)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Address the nodes listen on and are reached at
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub host: std::net::IpAddr,
    /// HTTP port of node 1; node N uses this plus N-1
    #[arg(long, default_value_t = 7770, value_name = "PORT")]
    pub http_port: u16,
    /// QUIC peer port of node 1; node N uses this plus N-1
    #[arg(long, default_value_t = 7780, value_name = "PORT")]
    pub peer_port: u16,
    /// Also write a profile with this name for the new cluster
    #[arg(long, value_name = "NAME")]
    pub profile_name: Option<String>,
}

/// Arguments of `bm cluster new-node`.
#[derive(Debug, Args)]
pub struct NewNodeArgs {
    /// Folder `bm cluster init` wrote (holds ca.pem and ca.key)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The new node's id
    #[arg(long)]
    pub id: u64,
    /// Where its HTTP API listens
    #[arg(long, value_name = "ADDR")]
    pub http: SocketAddr,
    /// Where its QUIC peer endpoint listens
    #[arg(long, value_name = "ADDR")]
    pub peer: SocketAddr,
}

/// Arguments of `bm cluster status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Refresh every second until interrupted
    #[arg(long)]
    pub watch: bool,
}

/// Arguments of `bm cluster add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The new node's id
    pub id: u64,
    /// Its QUIC peer address (host:port)
    #[arg(long, value_name = "ADDR")]
    pub peer: String,
    /// Its HTTP API URL
    #[arg(long, value_name = "URL")]
    pub api: String,
    /// Leave it a learner (replicates, never votes)
    #[arg(long)]
    pub learner: bool,
}

/// Runs one `bm cluster` subcommand.
pub async fn run(global: &GlobalArgs, cmd: ClusterCmd) -> Result<()> {
    match cmd {
        ClusterCmd::Init(a) => init::init(a),
        ClusterCmd::NewNode(a) => init::new_node(a),
        ClusterCmd::Status(a) => status::run(&crate::connect::client(global)?, a).await,
        ClusterCmd::Add(a) => {
            let add = MemberAdd { id: a.id, peer_addr: a.peer, api_url: a.api, learner: a.learner };
            let s = crate::connect::client(global)?.cluster_add(&add).await?;
            status::print(&s)
        }
        ClusterCmd::Remove { id } => status::print(&crate::connect::client(global)?.cluster_remove(id).await?),
        ClusterCmd::TransferLeader { id } => {
            status::print(&crate::connect::client(global)?.cluster_transfer_leader(id).await?)
        }
    }
}
