//! bm's wire types and typed HTTP client.
//!
//! Everything a program outside the server needs to talk to bm lives here,
//! so that the CLI, agents and factories never link server internals. The
//! server uses the same types, so a change to the API is a change to this
//! crate and shows up in `docs/openapi.json`.

pub mod agent;
pub mod agent_link;
pub mod byte_block;
pub mod client;
pub mod cluster;
pub mod codec;
pub mod error;
pub mod eventlog;
pub mod factories;
pub mod frame;
pub mod jobs;
pub mod latency;
pub mod loadgen;
pub mod output_rule;
pub mod patience;
pub mod quic;
pub mod targets;
pub mod users;
pub mod workers;

pub use client::{Client, ClientError};
pub use error::{ApiError, ErrorCode};

/// The version prefix of every API path.
pub const PREFIX: &str = "v1";

/// Privilege that allows everything.
pub const ADMIN: &str = "admin";
