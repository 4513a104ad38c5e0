//! Link quality: random drops, duplicates and delays, drawn from a seeded generator.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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

/// The network's random generator together with the quality it draws against.
pub(crate) struct Dice {
    rng: StdRng,
    quality: Quality,
}

impl Dice {
    /// Perfect links, random choices seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self { rng: StdRng::seed_from_u64(seed), quality: Quality::default() }
    }

    /// Applies `quality` to every later datagram.
    pub(crate) fn set(&mut self, quality: Quality) {
        self.quality = quality.normalized();
    }

    /// Draws the fate of one datagram: `None` if it is dropped, else its copies.
    pub(crate) fn roll(&mut self) -> Option<Copies> {
        let q = self.quality;
        if q.drop > 0.0 && self.rng.gen_bool(q.drop) {
            return None;
        }
        let first = self.delay();
        let second = (q.duplicate > 0.0 && self.rng.gen_bool(q.duplicate)).then(|| self.delay());
        Some(Copies { first, second })
    }

    /// Draws one copy's delay.
    fn delay(&mut self) -> Duration {
        let q = self.quality;
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
        assert!((0..100).all(|_| dice.roll() == Some(Copies::NOW)));
    }

    #[test]
    fn certain_drop_and_duplicate() {
        let mut dice = Dice::new(1);
        dice.set(Quality { drop: 1.0, ..Quality::default() });
        assert!((0..100).all(|_| dice.roll().is_none()));
        dice.set(Quality { duplicate: 1.0, ..Quality::default() });
        assert!((0..100).all(|_| dice.roll() == Some(Copies { first: Duration::ZERO, second: Some(Duration::ZERO) })));
    }

    #[test]
    fn delays_stay_in_range_and_vary() {
        let mut dice = Dice::new(7);
        dice.set(Quality { delay_min: 5 * MS, delay_max: 10 * MS, ..Quality::default() });
        let delays: Vec<Duration> = (0..200).map(|_| dice.roll().unwrap().first).collect();
        assert!(delays.iter().all(|d| (5 * MS..=10 * MS).contains(d)));
        assert!(delays.iter().any(|d| *d != delays[0]));
    }

    #[test]
    fn odd_settings_do_not_panic() {
        let mut dice = Dice::new(3);
        for (drop, duplicate) in [(f64::NAN, -1.0), (2.0, f64::INFINITY), (-0.5, f64::NAN)] {
            dice.set(Quality { drop, duplicate, delay_min: 9 * MS, delay_max: 2 * MS });
            for _ in 0..50 {
                if let Some(copies) = dice.roll() {
                    assert!(copies.delays().all(|d| (2 * MS..=9 * MS).contains(&d)));
                }
            }
        }
    }
}
