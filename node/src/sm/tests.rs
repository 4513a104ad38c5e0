//! tests come next
