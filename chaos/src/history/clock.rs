//! The one time scale of a history: nanoseconds since the UNIX epoch, read monotonically within a process.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A wall-clock instant in a history's time scale, so that agent-side records (job start and end times) can be
/// placed next to the workloads' own operations. Times before the epoch become 0; times past year 2554 saturate.
pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A monotonic clock on the history's time scale: the wall-clock time when it was made plus the monotonic time
/// elapsed since, so a wall-clock step during a run cannot reorder the operations one process records.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Wall-clock time of `start`, in nanoseconds since the UNIX epoch.
    origin: u64,
    /// When the clock was made.
    start: Instant,
}

impl Clock {
    /// A clock reading the current wall-clock time now.
    pub fn new() -> Self {
        Self { origin: unix_nanos(SystemTime::now()), start: Instant::now() }
    }

    /// The current time, in nanoseconds since the UNIX epoch.
    pub fn now(&self) -> u64 {
        let elapsed = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.origin.saturating_add(elapsed)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_never_goes_back_and_starts_near_wall_time() {
        let clock = Clock::new();
        let wall = unix_nanos(SystemTime::now());
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
        assert!(a.abs_diff(wall) < 1_000_000_000, "{a} vs {wall}");
    }
}
