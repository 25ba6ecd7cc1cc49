//! Reconnect delays: exponential backoff with jitter, so that many feeds
//! (or many ingest processes) losing a venue at once do not all come back
//! in the same instant.

use std::time::Duration;

use crate::rng::{self, Rng};

/// The delay before the next reconnect attempt.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
    rng: Rng,
}

impl Backoff {
    /// Delays from `min`, doubling per consecutive failure up to `max`.
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let seed = crate::runner::now_us() ^ u64::from(std::process::id()).rotate_left(21);
        Self::with_seed(min, max, rng::mix(seed))
    }

    /// The same with a given jitter seed (tests).
    pub(crate) fn with_seed(min: Duration, max: Duration, seed: u64) -> Self {
        Self {
            min,
            max: max.max(min),
            failures: 0,
            rng: Rng::new(seed),
        }
    }

    /// The delay before the next attempt: the ceiling is `min × 2^failures`
    /// capped at `max`, and the delay is drawn uniformly from its upper
    /// half (never below half the ceiling, so a flapping venue is not
    /// hammered).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .min
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        let ceiling_us = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        let half = ceiling_us / 2;
        Duration::from_micros(half + self.rng.below(ceiling_us - half + 1))
    }

    /// A connection worked: start again from `min`.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// The largest delay [`Backoff::next_delay`] can return.
    #[cfg(test)]
    pub(crate) fn bound(&self) -> Duration {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_caps() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let mut b = Backoff::with_seed(min, max, 7);
        let mut ceilings = Vec::new();
        for n in 0..10u32 {
            let d = b.next_delay();
            let ceiling = (min * 2u32.pow(n)).min(max);
            assert!(
                d <= ceiling && d >= ceiling / 2,
                "{n}: {d:?} vs {ceiling:?}"
            );
            ceilings.push(ceiling);
        }
        assert_eq!(*ceilings.last().expect("some"), b.bound());
        b.reset();
        assert!(b.next_delay() <= min);
    }

    #[test]
    fn delays_differ_between_seeds() {
        let min = Duration::from_secs(1);
        let draws = |seed| {
            let mut b = Backoff::with_seed(min, min * 64, seed);
            (0..5).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_ne!(draws(1), draws(2));
    }
}
