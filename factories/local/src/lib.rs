//! The local factory: each worker is a fresh sandbox on this host. The
//! provisioning loop is `bm-factory`'s; this crate is its provider.

pub mod agent_logs;
pub mod factory;
pub mod init;
pub mod orphans;
pub mod provider;
pub mod sandbox;
