//! Reconnect delays: exponential with jitter, capped, so that many
//! gateways losing the same Redis do not all come back in the same
//! millisecond.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// First delay after a failure.
const BASE: Duration = Duration::from_millis(100);
/// Longest delay between attempts.
const CAP: Duration = Duration::from_secs(5);

/// The delay sequence of one outage.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The delay before the next attempt: `BASE * 2^attempt`, capped at
    /// `CAP`, then drawn uniformly from its upper half.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = BASE.saturating_mul(1u32 << self.attempt.min(16)).min(CAP);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let jitter_ms = random() % (half.as_millis() as u64 + 1);
        half + Duration::from_millis(jitter_ms)
    }

    /// Starts over after a success.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A random number from the standard library's per-instance hash keys
/// (enough for jitter, no extra dependency).
fn random() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::default();
        let first = b.next_delay();
        assert!(first >= BASE / 2 && first <= BASE, "{first:?}");
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(d <= CAP, "{d:?}");
        }
        let late = b.next_delay();
        assert!(late >= CAP / 2, "{late:?}");
        b.reset();
        assert!(b.next_delay() <= BASE);
    }
}
