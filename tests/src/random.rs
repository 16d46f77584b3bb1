//! The harness's one random generator, for tests that vary what they do from run to run
//! (e.g. when to kill a host): xorshift64*, seeded from the clock unless told, and the seed
//! printed so a failing run can be told apart and repeated.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A small reproducible generator (not for keys: see [`crate::pair::random_key`]).
#[derive(Debug, Clone)]
pub struct Random(u64);

impl Random {
    /// A generator from `seed` (0 is taken as 1: xorshift would stay at 0).
    pub fn new(seed: u64) -> Random {
        Random(seed.max(1))
    }

    /// A generator seeded from the clock; prints the seed with `what` on stderr.
    pub fn from_clock(what: &str) -> Random {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        eprintln!("{what}: random seed {seed:#x}");
        Random::new(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `from..to` (`from` < `to`).
    pub fn between(&mut self, from: u64, to: u64) -> u64 {
        assert!(from < to, "an empty range {from}..{to}");
        from + self.next_u64() % (to - from)
    }

    /// A duration of `from..to` milliseconds.
    pub fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(self.between(from, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_from_the_seed_and_within_range() {
        let (mut a, mut b) = (Random::new(7), Random::new(7));
        for _ in 0..1000 {
            let ms = a.millis(300, 4000);
            assert_eq!(ms, b.millis(300, 4000));
            assert!((300..4000).contains(&(ms.as_millis() as u64)), "{ms:?}");
        }
        assert_ne!(Random::new(0).next_u64(), 0, "a zero seed still moves");
    }
}
