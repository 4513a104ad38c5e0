//! Followers pass on the worker heartbeats they receive: agents call
//! whichever node is nearest, but only the leader judges worker leases.

use std::time::Duration;

use bm_raft::PeerEndpoint;

use super::forward::{self, Leader};
use super::proto::PeerCall;
use crate::node::Node;

/// How often a follower reports the workers it heard from.
pub const PUSH_EVERY: Duration = Duration::from_secs(1);

/// Runs for as long as the node runs.
/// Without a peer link (a cluster of one) it only empties the recent set.
pub async fn run(node: Node, ep: Option<PeerEndpoint>) {
    let mut tick = tokio::time::interval(PUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let recent = node.heartbeats().take_recent();
        let Some(ep) = ep.as_ref().filter(|_| !recent.is_empty()) else { continue };
        match forward::leader(node.raft(), node.id()) {
            Leader::Me => {}
            Leader::Unknown => node.heartbeats().put_back(recent),
            Leader::Other { peer_addr, .. } => {
                let call = PeerCall::Heartbeats(recent.clone());
                if let Err(e) = forward::call(ep, &peer_addr, &call, PUSH_EVERY).await {
                    tracing::debug!(error = %e, "cannot pass heartbeats to the leader; keeping them");
                    node.heartbeats().put_back(recent);
                }
            }
        }
    }
}
