//! Output files, content-addressed by sha256 and kept on every node.
//!
//! An upload is written to the receiving node's disk and copied to enough
//! other nodes that a majority of the voters hold it before the upload is
//! acknowledged (and before its reference is committed through Raft); the
//! copies to the remaining nodes follow in the background. A node asked
//! for a blob it lacks fetches it from a peer, and a repair pass copies
//! every referenced blob a node lacks, so a replaced or rejoining node
//! ends up holding everything again.

mod direct;
pub mod fetch;
pub mod repair;
pub mod replicate;
mod running;
mod store;

pub use store::Blobs;

/// Size of one piece of a blob sent between nodes.
pub const CHUNK: usize = 4 * 1024 * 1024;
