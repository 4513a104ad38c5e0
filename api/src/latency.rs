//! Commit latency as a node measures it: from the moment its write path
//! takes a command to the moment the command's outcome is known (committed
//! on a quorum and applied). A client also sees its HTTP round trip and its
//! own scheduling; this is the part that is the cluster's.
//!
//! The node keeps counts in fixed buckets since it started, so any number of
//! readers can take two readings and subtract them ([`LatencyHistogram::since`])
//! with nothing reset in between.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Buckets per doubling of the latency: a quantile read from the histogram
/// is at most 1/32 (3.1%) above the true value, never below it.
const SUB: u64 = 32;
const SUB_BITS: u32 = 5;
/// Doublings covered above the first `SUB` microseconds (up to 2^37 µs,
/// about 38 hours; longer latencies count in the last bucket).
const OCTAVES: u64 = 32;

/// Number of buckets in a [`LatencyHistogram`].
pub const BUCKETS: usize = (SUB + SUB * OCTAVES) as usize;

/// Counts of commit latencies per bucket (see [`bucket_of`] for the bounds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LatencyHistogram {
    /// Node id.
    pub node: u64,
    /// `counts[i]` latencies fell in bucket `i`; trailing empty buckets may be left out.
    pub counts: Vec<u64>,
}

/// A duration in whole microseconds (saturating), the unit of the
/// buckets and of the timing fields nodes log.
pub fn micros(d: std::time::Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

/// The bucket of a latency of `us` microseconds: exact below 32 µs, then
/// 32 buckets per doubling.
pub fn bucket_of(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let top = 63 - us.leading_zeros(); // >= SUB_BITS
    let octave = u64::from(top - SUB_BITS);
    if octave >= OCTAVES {
        return BUCKETS - 1;
    }
    let mantissa = (us >> octave) - SUB; // 0..SUB
    (SUB + octave * SUB + mantissa) as usize
}

/// The largest latency, in microseconds, that falls in bucket `b`.
pub fn bucket_max(b: usize) -> u64 {
    let b = b as u64;
    if b < SUB {
        return b;
    }
    let octave = (b - SUB) / SUB;
    let mantissa = (b - SUB) % SUB;
    ((SUB + mantissa + 1) << octave) - 1
}

impl LatencyHistogram {
    /// How many latencies were counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// What was counted after `earlier` (a reading of the same node).
    pub fn since(&self, earlier: &LatencyHistogram) -> LatencyHistogram {
        let counts = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| c.saturating_sub(earlier.counts.get(i).copied().unwrap_or(0)))
            .collect();
        LatencyHistogram { node: self.node, counts }
    }

    /// Adds `other`'s counts (another node's) to these.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (i, c) in other.counts.iter().enumerate() {
            self.counts[i] += c;
        }
    }

    /// The `q` quantile (0 to 1) in microseconds, as the top of its bucket
    /// (at most 3.1% high); `None` when nothing was counted.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_max(b));
            }
        }
        self.counts.len().checked_sub(1).map(bucket_max)
    }

    /// [`LatencyHistogram::quantile_us`] in milliseconds, as benchmarks print it.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        self.quantile_us(q).map(|us| us as f64 / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_latency_in_order_and_within_a_32nd() {
        let mut last = 0;
        for us in (0..100_000u64).chain([1 << 20, (1 << 37) - 1, 1 << 40, u64::MAX]) {
            let b = bucket_of(us);
            assert!(b >= last, "{us} went to bucket {b} after {last}");
            last = b;
            assert!(b < BUCKETS);
            if us < 1 << 37 {
                let top = bucket_max(b);
                assert!(top >= us, "{us} is above its bucket's top {top}");
                assert!(top - us <= us / 32, "{us} µs read as {top}");
            }
        }
    }

    #[test]
    fn durations_become_whole_microseconds_and_saturate() {
        assert_eq!(micros(std::time::Duration::from_nanos(5_999)), 5);
        assert_eq!(micros(std::time::Duration::from_millis(3)), 3_000);
        assert_eq!(micros(std::time::Duration::MAX), u64::MAX);
    }

    #[test]
    fn quantiles_come_from_the_counts_since_an_earlier_reading() {
        let mut before = LatencyHistogram { node: 1, counts: vec![0; BUCKETS] };
        before.counts[bucket_of(50_000)] = 10; // an earlier slow period
        let mut now = before.clone();
        for us in 1..=100u64 {
            now.counts[bucket_of(us * 100)] += 1; // 0.1 ms .. 10 ms
        }
        let d = now.since(&before);
        assert_eq!(d.total(), 100);
        let p50 = d.quantile_us(0.5).unwrap();
        assert!((5_000..=5_000 + 5_000 / 32).contains(&p50), "{p50}");
        assert_eq!(d.quantile_ms(0.5), Some(p50 as f64 / 1e3));
        let p99 = d.quantile_us(0.99).unwrap();
        assert!((9_900..=9_900 + 9_900 / 32).contains(&p99), "{p99}");
        assert_eq!(LatencyHistogram::default().quantile_us(0.5), None);
        let mut both = d.clone();
        both.merge(&LatencyHistogram { node: 2, counts: vec![3] });
        assert_eq!(both.total(), 103);
        assert_eq!(both.quantile_us(0.0), Some(0));
    }
}
