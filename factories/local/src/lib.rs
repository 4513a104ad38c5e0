//! The local factory.

pub mod factory;
pub mod orphans;
pub mod sandbox;
