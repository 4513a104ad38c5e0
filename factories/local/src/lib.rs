//! The local factory.

pub mod factory;
pub mod sandbox;
