//! Link quality: random drops, duplicates and delays, drawn from a seeded generator, for every link or for
//! chosen links only.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Endpoint;

/// How bad every link is, applied to each datagram a cut lets through, so tests can exercise loss, duplication
/// and reordering. Probabilities outside `0.0..=1.0` are clamped (NaN counts as 0); a delay range given backwards
/// is swapped.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quality {
    /// Probability that a datagram is dropped.
    pub drop: f64,
    /// Probability that a datagram that was not dropped is sent twice.
    pub duplicate: f64,
    /// Shortest delay of a datagram (each copy draws its own delay uniformly from `delay_min..=delay_max`).
    pub delay_min: Duration,
    /// Longest delay; a range wider than the gap between datagrams reorders them. Zero means no delay.
    pub delay_max: Duration,
}

impl Quality {
    /// The same quality with probabilities clamped and the delay range in order, so sampling cannot panic.
    fn normalized(self) -> Self {
        let (delay_min, delay_max) = if self.delay_min <= self.delay_max {
            (self.delay_min, self.delay_max)
        } else {
            (self.delay_max, self.delay_min)
        };
        Self { drop: probability(self.drop), duplicate: probability(self.duplicate), delay_min, delay_max }
    }
}

/// `p` as a valid probability.
fn probability(p: f64) -> f64 {
    if p.is_nan() {
        0.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// The copies of a datagram to send and the delay of each (zero: send at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Copies {
    pub(crate) first: Duration,
    pub(crate) second: Option<Duration>,
}

impl Copies {
    /// One copy sent at once: the fate of a datagram on a perfect link.
    #[cfg(test)]
    pub(crate) const NOW: Copies = Copies { first: Duration::ZERO, second: None };

    /// The delay of each copy.
    pub(crate) fn delays(self) -> impl Iterator<Item = Duration> {
        std::iter::once(self.first).chain(self.second)
    }
}

/// The network's random generator together with the qualities it draws against: one for every link, and
/// overrides for single one-way links between known endpoints and for every link of one endpoint (so a test can
/// degrade some links and not others).
pub(crate) struct Dice {
    rng: StdRng,
    quality: Quality,
    links: HashMap<(Endpoint, Endpoint), Quality>,
    endpoints: HashMap<Endpoint, Quality>,
}

impl Dice {
    /// Perfect links, random choices seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            quality: Quality::default(),
            links: HashMap::new(),
            endpoints: HashMap::new(),
        }
    }

    /// Applies `quality` to every later datagram on a link without a quality of its own.
    pub(crate) fn set(&mut self, quality: Quality) {
        self.quality = quality.normalized();
    }

    /// Applies `quality` to every later datagram from `from` to `to` (one way), instead of the network's.
    pub(crate) fn set_link(&mut self, from: Endpoint, to: Endpoint, quality: Quality) {
        self.links.insert((from, to), quality.normalized());
    }

    /// Applies `quality` to every later datagram from or to `id`, anonymous peers included, unless the link has a
    /// quality of its own.
    pub(crate) fn set_endpoint(&mut self, id: Endpoint, quality: Quality) {
        self.endpoints.insert(id, quality.normalized());
    }

    /// Forgets every link's and endpoint's own quality: all links go back to the network's.
    pub(crate) fn clear_links(&mut self) {
        self.links.clear();
        self.endpoints.clear();
    }

    /// The quality a datagram from `from` to `to` suffers: its link's, else its sender's, else its receiver's
    /// endpoint quality, else the network's.
    fn quality(&self, from: Option<Endpoint>, to: Option<Endpoint>) -> Quality {
        let link = from.zip(to).and_then(|l| self.links.get(&l));
        let end = |e: Option<Endpoint>| e.and_then(|e| self.endpoints.get(&e));
        link.or_else(|| end(from)).or_else(|| end(to)).copied().unwrap_or(self.quality)
    }

    /// Draws the fate of one datagram from `from` to `to`: `None` if it is dropped, else its copies.
    pub(crate) fn roll(&mut self, from: Option<Endpoint>, to: Option<Endpoint>) -> Option<Copies> {
        let q = self.quality(from, to);
        if q.drop > 0.0 && self.rng.gen_bool(q.drop) {
            return None;
        }
        let first = self.delay(q);
        let second = (q.duplicate > 0.0 && self.rng.gen_bool(q.duplicate)).then(|| self.delay(q));
        Some(Copies { first, second })
    }

    /// Draws one copy's delay.
    fn delay(&mut self, q: Quality) -> Duration {
        if q.delay_min == q.delay_max {
            q.delay_min
        } else {
            self.rng.gen_range(q.delay_min..=q.delay_max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn perfect_links_send_one_copy_at_once() {
        let mut dice = Dice::new(1);
        assert!((0..100).all(|_| dice.roll(None, None) == Some(Copies::NOW)));
    }

    #[test]
    fn certain_drop_and_duplicate() {
        let mut dice = Dice::new(1);
        dice.set(Quality { drop: 1.0, ..Quality::default() });
        assert!((0..100).all(|_| dice.roll(None, None).is_none()));
        dice.set(Quality { duplicate: 1.0, ..Quality::default() });
        assert!((0..100)
            .all(|_| dice.roll(None, None) == Some(Copies { first: Duration::ZERO, second: Some(Duration::ZERO) })));
    }

    #[test]
    fn delays_stay_in_range_and_vary() {
        let mut dice = Dice::new(7);
        dice.set(Quality { delay_min: 5 * MS, delay_max: 10 * MS, ..Quality::default() });
        let delays: Vec<Duration> = (0..200).map(|_| dice.roll(None, None).unwrap().first).collect();
        assert!(delays.iter().all(|d| (5 * MS..=10 * MS).contains(d)));
        assert!(delays.iter().any(|d| *d != delays[0]));
    }

    #[test]
    fn a_link_quality_applies_to_that_link_one_way_only() {
        let mut dice = Dice::new(5);
        dice.set_link(1, 2, Quality { drop: 1.0, ..Quality::default() });
        assert!((0..50).all(|_| dice.roll(Some(1), Some(2)).is_none()));
        assert!((0..50).all(|_| dice.roll(Some(2), Some(1)) == Some(Copies::NOW)));
        assert!((0..50).all(|_| dice.roll(None, Some(2)) == Some(Copies::NOW)));
        dice.set(Quality { duplicate: 1.0, ..Quality::default() });
        assert!(dice.roll(Some(1), Some(2)).is_none(), "the link's own quality wins over the network's");
        dice.clear_links();
        assert!(dice.roll(Some(1), Some(2)).is_some_and(|c| c.second.is_some()));
    }

    #[test]
    fn an_endpoint_quality_covers_all_its_links_anonymous_peers_included() {
        let mut dice = Dice::new(6);
        dice.set_endpoint(3, Quality { drop: 1.0, ..Quality::default() });
        for (from, to) in [(Some(3), Some(1)), (Some(1), Some(3)), (None, Some(3)), (Some(3), None)] {
            assert!(dice.roll(from, to).is_none(), "{from:?} -> {to:?}");
        }
        assert_eq!(dice.roll(Some(1), Some(2)), Some(Copies::NOW));
        assert_eq!(dice.roll(None, Some(2)), Some(Copies::NOW));
        dice.set_link(1, 3, Quality::default());
        assert_eq!(dice.roll(Some(1), Some(3)), Some(Copies::NOW), "a link's own quality wins");
        dice.clear_links();
        assert_eq!(dice.roll(None, Some(3)), Some(Copies::NOW));
    }

    #[test]
    fn odd_settings_do_not_panic() {
        let mut dice = Dice::new(3);
        for (drop, duplicate) in [(f64::NAN, -1.0), (2.0, f64::INFINITY), (-0.5, f64::NAN)] {
            dice.set(Quality { drop, duplicate, delay_min: 9 * MS, delay_max: 2 * MS });
            for _ in 0..50 {
                if let Some(copies) = dice.roll(None, None) {
                    assert!(copies.delays().all(|d| (2 * MS..=9 * MS).contains(&d)));
                }
            }
        }
    }
}
