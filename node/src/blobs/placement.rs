//! Which voters keep an output's blob: the homes of the output's id.
//!
//! A blob's sha256 is known only once its last byte has arrived, but its
//! pieces must travel to the other stores while they arrive, so blobs
//! cannot be placed by their hash as log chunks are. They are placed by
//! the id of the output that refers to them instead, which the receiving
//! node draws before the first byte and Raft then carries in the output's
//! record: every node computes the same homes from it
//! ([`crate::cluster::placement`]), with no list of holders to keep.
//!
//! The receiving node writes every byte it receives anyway, so it draws
//! an id whose homes include itself (half the ids or more qualify): its
//! own copy then counts, and an upload is written on exactly a majority of
//! the voters, where before it went to every node.
//!
//! The same bytes may back several outputs (content addressing); a node
//! keeps a blob when it is a home of any of them.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::cluster::placement;
use crate::sm::State;

/// Most ids drawn before one whose homes include this node is found (each
/// draw qualifies with a chance of a half or more).
const DRAWS: usize = 64;

/// The placement key of the output `id`.
pub fn key(id: &str) -> [u8; 32] {
    Sha256::new().chain_update(b"bm output ").chain_update(id.as_bytes()).finalize().into()
}

/// The homes of the output `id` among `voters`.
pub fn homes(id: &str, voters: &[u64]) -> Vec<u64> {
    placement::homes(&key(id), voters)
}

/// A fresh output id (ULID) for an upload node `me` receives: one whose
/// homes include `me` when it votes.
pub fn draw_id(me: u64, voters: &[u64]) -> String {
    let mut id = ulid::Ulid::new().to_string();
    if voters.contains(&me) {
        for _ in 0..DRAWS {
            if homes(&id, voters).contains(&me) {
                break;
            }
            id = ulid::Ulid::new().to_string();
        }
    }
    id
}

/// The homes of the blob `sha`: those of every output that refers to it.
pub fn homes_of_blob(s: &State, sha: &str, voters: &[u64]) -> BTreeSet<u64> {
    s.refs.outputs_of(sha).flat_map(|id| homes(id, voters)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drawn_id_has_the_drawing_voter_among_its_homes() {
        for voters in [vec![1, 2, 3], vec![1, 2, 3, 4, 5], vec![7]] {
            for me in voters.clone() {
                for _ in 0..50 {
                    let id = draw_id(me, &voters);
                    assert!(homes(&id, &voters).contains(&me), "{id} drawn by {me} among {voters:?}");
                    assert_eq!(homes(&id, &voters).len(), voters.len() / 2 + 1);
                }
            }
        }
        // A learner cannot be a home: it takes the first id.
        assert!(!homes(&draw_id(9, &[1, 2, 3]), &[1, 2, 3]).contains(&9));
    }

    #[test]
    fn uploads_through_one_node_spread_their_other_copy_over_the_rest() {
        let voters = [1, 2, 3];
        let mut other = [0u32; 4];
        for _ in 0..3000 {
            let h = homes(&draw_id(1, &voters), &voters);
            for v in h.into_iter().filter(|v| *v != 1) {
                other[v as usize] += 1;
            }
        }
        let share = f64::from(other[2]) / f64::from(other[2] + other[3]);
        assert!((share - 0.5).abs() < 0.05, "node 2 took {share:.3} of the second copies: {other:?}");
    }
}
