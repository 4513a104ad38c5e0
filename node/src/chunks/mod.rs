//! Log chunks: the bytes of a job's log, kept off the Raft log.
//!
//! When every log line went through Raft, a 3-node cluster ingested logs
//! only as fast as one AppendEntries round at a time could carry them
//! (openraft 0.9 keeps one in flight per follower, and a round's time grew
//! with its bytes: 19-26 MB/s against the 50 wanted), every snapshot
//! rewrote every live job's log, and every node kept every log in memory.
//!
//! Now a batch of events larger than [`INLINE_MAX`] is packed, stored on
//! its homes, a majority of the voters chosen by its hash (`crate::cluster::placement`;
//! their writes are group-committed, many chunks to an fsync), and only
//! then is a small reference (its sha256 and the length of each event)
//! committed through Raft. Readers resolve references through a
//! small cache, this node's store, or a peer. Smaller batches (a job's
//! occasional line, control messages) still go inline: one round instead
//! of two, and their bytes cost Raft nothing.

mod cache;
pub mod fetch;
pub mod replicate;
mod store;

use std::sync::Arc;

pub use cache::Cache;
pub use store::ChunkStore;

use crate::sm::EventLog;

/// Largest batch (payload text and records, in bytes) that goes through
/// Raft inline; anything larger goes as a chunk.
pub const INLINE_MAX: u64 = 8 * 1024;

/// This node's chunk store and its cache of decoded chunks.
#[derive(Clone)]
pub struct Chunks {
    /// Chunks on disk.
    pub store: ChunkStore,
    /// Decoded chunks read or stored lately.
    pub cache: Arc<Cache>,
}

/// A chunk's sha256 as text, for messages.
pub fn hex(sha: &[u8; 32]) -> String {
    ::hex::encode(sha)
}

/// Decodes a stored chunk.
pub fn decode(bytes: &[u8]) -> Result<EventLog, bm_raft::codec::CodecError> {
    bm_raft::codec::decode("log chunk", bytes)
}
