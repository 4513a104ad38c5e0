//! `bm cluster init` and `bm cluster new-node`: the files nodes start from.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use bm_node::cluster::files::{self, PlannedNode};
use bm_node::config::RaftTuning;

use super::{InitArgs, NewNodeArgs};
use crate::outln;

/// Writes a new cluster's CA, admin token and node folders.
pub fn init(a: InitArgs) -> Result<()> {
    if a.nodes == 0 {
        anyhow::bail!("--nodes must be at least 1");
    }
    let port = |base: u16, i: u64| -> Result<u16> {
        base.checked_add(u16::try_from(i - 1)?).context("port out of range; choose lower base ports")
    };
    let mut planned = Vec::new();
    for id in 1..=a.nodes {
        planned.push(PlannedNode {
            id,
            http: SocketAddr::new(a.host, port(a.http_port, id)?),
            peer: SocketAddr::new(a.host, port(a.peer_port, id)?),
            advertise_peer: None,
            api_url: None,
        });
    }
    let configs = files::init_cluster(&a.dir, &planned, RaftTuning::default())?;
    for c in &configs {
        outln!("{}", c.display());
    }
    let urls: Vec<String> = planned.iter().map(|n| format!("http://{}", n.http)).collect();
    if let Some(name) = &a.profile_name {
        let token = std::fs::read_to_string(a.dir.join("admin-token"))?.trim().to_string();
        let file = crate::config::save_profile(name, &urls, Some(&token))?;
        eprintln!("bm: profile {name:?} written to {}", file.display());
    }
    eprintln!("bm: start each node with: bm-node --config DIR/node-N/node.toml");
    eprintln!("bm: the admin token is in {}", a.dir.join("admin-token").display());
    Ok(())
}

/// Writes the folder of one more node.
pub fn new_node(a: NewNodeArgs) -> Result<()> {
    let n = PlannedNode { id: a.id, http: a.http, peer: a.peer, advertise_peer: None, api_url: None };
    let path = files::new_node(&a.dir, &n, RaftTuning::default())?;
    outln!("{}", path.display());
    eprintln!(
        "bm: start it with bm-node --config {}, then: bm cluster add {} --peer {} --api http://{}",
        path.display(),
        a.id,
        a.peer,
        a.http
    );
    Ok(())
}
