//! The local factory.
