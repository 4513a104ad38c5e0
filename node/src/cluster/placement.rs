//! Which voters keep bytes that stay off the Raft log (log chunks and
//! output blobs): their homes, a majority of the voters chosen by a
//! 32-byte key (a chunk's sha256; for a blob, the hash of the output's id,
//! see `crate::blobs::placement`).
//!
//! Every node used to keep every chunk and every blob, so each byte was
//! written and fsynced three times on a cluster of three. Under load the
//! disks of the followers were then too busy to append the Raft log within
//! the one heartbeat openraft 0.9 allows an AppendEntries, and a follower
//! fell seconds behind (docs/benchmarks.md, session 11). A majority is
//! what the design promises (nothing acknowledged is lost while a majority
//! survives), and any majority of the voters holds at least one home of
//! every key, so it can still serve everything: a node that is not a home
//! fetches the bytes from a peer when they are read.
//!
//! Homes come from rendezvous hashing (each voter scores each key, the
//! highest scores win): every node computes the same homes without asking
//! anyone, the keys spread evenly, and a change of membership moves only
//! the keys whose homes it touches.

/// The homes of the key `sha` (a chunk's sha256, or a blob's key) among `voters`: a majority of them, the
/// best score first.
pub fn homes(sha: &[u8; 32], voters: &[u64]) -> Vec<u64> {
    let mut scored: Vec<(u64, u64)> = voters.iter().map(|v| (score(sha, *v), *v)).collect();
    scored.sort_unstable_by(|a, b| b.cmp(a));
    scored.dedup_by_key(|s| s.1);
    let majority = scored.len() / 2 + 1;
    scored.into_iter().take(majority).map(|(_, v)| v).collect()
}

/// Whether `node` is a home of the key `sha` among `voters`.
pub fn is_home(sha: &[u8; 32], voters: &[u64], node: u64) -> bool {
    homes(sha, voters).contains(&node)
}

/// How much `voter` wants the key `sha`. The key is a sha256, already uniform,
/// so mixing its first eight bytes with the voter's id (splitmix64's
/// finaliser, twice) scores fairly at the cost of a few multiplications.
fn score(sha: &[u8; 32], voter: u64) -> u64 {
    let head = u64::from_be_bytes(sha[..8].try_into().expect("eight bytes"));
    mix(head ^ mix(voter.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn sha(i: u32) -> [u8; 32] {
        Sha256::digest(i.to_be_bytes()).into()
    }

    #[test]
    fn a_majority_of_the_voters_are_homes_and_every_node_agrees_which() {
        for voters in [vec![1], vec![1, 2], vec![1, 2, 3], vec![4, 9, 2, 7, 5]] {
            for i in 0..200 {
                let h = homes(&sha(i), &voters);
                assert_eq!(h.len(), voters.len() / 2 + 1, "{voters:?}");
                assert!(h.iter().all(|v| voters.contains(v)), "{h:?} not all in {voters:?}");
                let mut other_order = voters.clone();
                other_order.reverse();
                let mut a = h.clone();
                let mut b = homes(&sha(i), &other_order);
                a.sort();
                b.sort();
                assert_eq!(a, b, "the order of the voters changed the homes");
            }
        }
    }

    #[test]
    fn any_majority_holds_a_home_of_every_chunk() {
        let voters = [1, 2, 3, 4, 5];
        for i in 0..500 {
            let h = homes(&sha(i), &voters);
            // Each set of three survivors (the smallest majority) meets the homes.
            for a in 0..5 {
                for b in a + 1..5 {
                    let survivors: Vec<u64> =
                        voters.iter().copied().filter(|v| *v != voters[a] && *v != voters[b]).collect();
                    assert!(survivors.iter().any(|s| h.contains(s)), "chunk {i}: homes {h:?}, survivors {survivors:?}");
                }
            }
        }
    }

    #[test]
    fn chunks_spread_evenly_over_the_voters() {
        let voters = [1, 2, 3];
        let mut held = [0u32; 3];
        let n = 3000;
        for i in 0..n {
            for v in homes(&sha(i), &voters) {
                held[v as usize - 1] += 1;
            }
        }
        // Each voter is a home of two chunks in three; allow 5% either way.
        for (v, h) in held.iter().enumerate() {
            let share = f64::from(*h) / f64::from(n);
            assert!((share - 2.0 / 3.0).abs() < 0.05, "voter {} holds {share:.3} of the chunks: {held:?}", v + 1);
        }
    }

    #[test]
    fn growing_from_three_voters_to_five_keeps_most_homes() {
        let (three, five) = ([1, 2, 3], [1, 2, 3, 4, 5]);
        let n = 2000;
        let mut kept = 0;
        for i in 0..n {
            let before = homes(&sha(i), &three);
            let after = homes(&sha(i), &five);
            kept += before.iter().filter(|v| after.contains(v)).count();
        }
        // Two homes of three voters each; with five, a chunk keeps a home
        // of the three that is among its three new homes most of the time.
        let share = kept as f64 / (2 * n) as f64;
        assert!(share > 0.5, "only {share:.2} of the homes stayed");
    }
}
