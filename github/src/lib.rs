//! GitHub side of bm.
