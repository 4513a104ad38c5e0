//! The node's side of the agent link: agents dial the node's QUIC endpoint
//! (the peer endpoint's UDP port, agent ALPN, no client certificate) and
//! make the agent API's calls there, one stream per call.
//!
//! The calls run the same code as the HTTP agent API (`http::agent`), so the
//! two transports cannot drift apart; only framing differs.

pub(crate) mod dispatch;
mod serve;

use std::sync::{Arc, OnceLock};

use bm_api::factories::AgentLinkInfo;
use bm_raft::peer::AgentConnHandler;
use futures::FutureExt;

use crate::node::Node;

/// The handler the peer endpoint gives agent connections to. `node` is
/// filled once the node is built (the endpoint exists before it).
pub fn handler(node: Arc<OnceLock<Node>>) -> AgentConnHandler {
    Arc::new(move |conn| {
        let node = node.clone();
        async move {
            match node.get() {
                Some(n) => serve::connection(n.clone(), conn).await,
                None => conn.close(2u32.into(), b"node starting"),
            }
        }
        .boxed()
    })
}

/// Where agents can reach this cluster over QUIC, for factories to pass to
/// the agents they start: every member's QUIC address and the cluster CA.
/// None on a node without a peer link (agents then use HTTP).
pub fn info(node: &Node) -> Option<AgentLinkInfo> {
    let ca_pem = node.ca_pem()?.to_string();
    let metrics = node.raft().metrics().borrow().clone();
    let addrs = metrics
        .membership_config
        .membership()
        .nodes()
        .map(|(_, n)| n.peer_addr.clone())
        .filter(|a| !a.is_empty())
        .collect();
    Some(AgentLinkInfo { addrs, ca_pem })
}
