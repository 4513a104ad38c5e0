//! The bm agent.
