//! Output files, content-addressed by sha256 and kept on their homes, a
//! majority of the voters.
//!
//! An upload is written to the receiving node's disk and copied to the
//! other homes of its output ([`placement`]) before the upload is
//! acknowledged (and before its reference is committed through Raft). A
//! node asked to serve a blob it lacks streams it from a peer, its homes
//! first (an agent's input is copied here first), and a repair pass copies every referenced blob a node is a home of but
//! lacks, so a replaced or rejoining node ends up holding its share again.

mod direct;
pub mod fetch;
pub mod placement;
pub mod repair;
pub mod replicate;
mod running;
mod store;
pub mod stream;

pub use store::Blobs;

/// Size of one piece of a blob sent between nodes.
pub const CHUNK: usize = 4 * 1024 * 1024;
