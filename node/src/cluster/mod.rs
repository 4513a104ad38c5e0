//! The node's side of a multi-node cluster: what nodes ask each other over
//! the peer link (forwarded writes, read indexes, status, heartbeats,
//! membership changes), and the files a new cluster starts from.

pub mod files;
pub mod forward;
pub mod handler;
pub mod heartbeat_push;
pub mod membership;
pub mod missed;
pub mod placement;
pub mod ports;
pub mod prevote;
pub mod proto;
pub mod quorum;
pub mod status;
