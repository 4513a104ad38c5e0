//! Raft for bm: the openraft type configuration, durable log and
//! state-machine storage on fjall, and the peer link (QUIC, mutual TLS) that
//! carries Raft RPCs and forwarded application requests between nodes.
//!
//! This crate knows how to replicate and store opaque commands, not what a
//! job is: the application plugs in through [`Machine`], a deterministic
//! function of (state, command bytes). That keeps the replicated core testable
//! without Raft, and Raft testable without jobs.

// The storage traits fix the error type to openraft's `StorageError`, which is
// large; boxing it in our helpers would only convert back at every trait call.
#![allow(clippy::result_large_err)]

/// Byte buffers as one block on the wire (moved to `bm_api`, where the agent link needs it too).
pub use bm_api::byte_block as bytes;
/// The binary codec (moved to `bm_api`, where the agent link needs it too).
pub use bm_api::codec;
mod durable;
mod error;
mod log_store;
mod machine;
mod network_none;
pub mod peer;
mod sched;
mod sm_store;
mod storage;
pub mod tls;
mod types;

pub use durable::{Durable, NotDurable};
pub use error::FatalStorage;
pub use log_store::LogStore;
pub use machine::{Machine, MachineError};
pub use network_none::NoNetwork;
pub use peer::{AppHandler, FrameLimits, PeerEndpoint, PeerError, QuicNetwork};
pub use sm_store::{AppliedWatch, SmStore};
pub use storage::Storage;
pub use types::{NodeId, NodeInfo, Payload, Raft, TypeConfig};
