//! Homes that missed a copy (of a log chunk or a blob) lately.
//!
//! With one home down, every chunk or upload homed there would wait for
//! its copy to fail (a dead peer answers nothing until QUIC gives up on
//! it) before going to the other voters. A home that missed a copy is
//! remembered for a while, and bytes homed there go to every voter at once
//! meanwhile; the first copy that reaches it again forgets the miss. One
//! record per node serves both kinds of bytes: a peer that cannot take a
//! chunk cannot take a blob either.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a miss is remembered.
const REMEMBER: Duration = Duration::from_secs(10);

/// Node ids that missed a copy, and until when that counts.
#[derive(Default)]
pub struct Missed(Mutex<HashMap<u64, Instant>>);

impl Missed {
    /// Notes that `node` missed a copy.
    pub fn missed(&self, node: u64) {
        self.0.lock().expect("missed lock").insert(node, Instant::now() + REMEMBER);
    }

    /// Notes that `node` took a copy.
    pub fn reached(&self, node: u64) {
        self.0.lock().expect("missed lock").remove(&node);
    }

    /// Whether any of `nodes` missed a copy lately.
    pub fn any(&self, nodes: impl IntoIterator<Item = u64>) -> bool {
        let now = Instant::now();
        let m = self.0.lock().expect("missed lock");
        nodes.into_iter().any(|n| m.get(&n).is_some_and(|until| *until > now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miss_counts_until_the_node_is_reached_again() {
        let m = Missed::default();
        assert!(!m.any([1, 2]));
        m.missed(2);
        assert!(m.any([1, 2]));
        assert!(!m.any([1, 3]));
        m.reached(2);
        assert!(!m.any([2]));
    }
}
