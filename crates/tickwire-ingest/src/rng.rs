//! A tiny deterministic PRNG (splitmix64) for the synthetic market: the same
//! seed always gives the same market, which makes failures reproducible.

/// splitmix64: one add and three xor-multiply steps per number; passes
/// BigCrush, far more than a price walk needs, and has no dependency.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// A generator from a seed; any seed (including 0) is fine.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// A number in `0..n` (0 when `n` is 0), by Lemire's multiply-shift:
    /// no division, and a bias below 2^-32 for the ranges used here.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi` (`lo` when `hi < lo`).
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = hi.abs_diff(lo).saturating_add(1);
        lo.wrapping_add(self.below(span) as i64)
    }

    /// True with probability `per_mille / 1000`.
    pub(crate) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// The splitmix64 finalizer; also a good way to turn weak seeds (times,
/// process ids) into well-spread bits.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        for _ in 0..1000 {
            let r = a.range(-3, 5);
            assert!((-3..=5).contains(&r));
            assert!(a.below(10) < 10);
        }
        assert_eq!(a.range(4, 4), 4);
        assert_eq!(a.below(0), 0);
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn range_covers_both_ends() {
        let mut r = Rng::new(42);
        let mut seen = [false; 3];
        for _ in 0..200 {
            seen[(r.range(-1, 1) + 1) as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
    }
}
