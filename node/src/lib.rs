//! The bm server: the replicated state machine, the HTTP API, the scheduler.

pub mod agent_link;
pub mod auth;
pub mod blobs;
pub mod chunks;
pub mod cluster;
pub mod config;
pub mod heartbeats;
pub mod http;
pub mod node;
pub mod openapi;
pub mod proposer;
pub mod retention;
pub mod scheduler;
pub mod server;
pub mod sm;
pub mod uploads;

pub use config::NodeConfig;
pub use node::Node;
pub use server::{start, Running};
