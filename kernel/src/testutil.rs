// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the kernel's host unit tests share: a small reproducible random generator and the
//! round trip every device state codec must pass.

use core::fmt::Debug;

use crate::vmm::devices::state::DeviceState;

/// xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators,
/// scrambled", 2016): enough to scatter bytes and pick cases, and reproducible from its seed.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`, which must not be 0 (xorshift stays at 0 forever).
    pub(crate) fn new(seed: u64) -> Self {
        assert_ne!(seed, 0, "xorshift needs a non-zero seed");
        Self(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0; the modulo bias does not matter to tests).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Saves `state`, restores it, and asserts that the copy equals the original and re-encodes to
/// the same bytes (the encoding is canonical); returns the copy.
pub(crate) fn round_trip<T: DeviceState + PartialEq + Debug>(state: &T) -> T {
    let bytes = state.state_bytes();
    let copy = T::from_state_bytes(&bytes).expect("a saved state restores");
    assert_eq!(&copy, state);
    assert_eq!(copy.state_bytes(), bytes, "canonical encoding");
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_reproducible_and_spreads() {
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        let first: [u64; 4] = core::array::from_fn(|_| a.next());
        assert_eq!(first, core::array::from_fn(|_| b.next()));
        assert!(first.windows(2).all(|w| w[0] != w[1]));
        let mut seen = [false; 8];
        for _ in 0..200 {
            seen[a.below(8) as usize] = true;
        }
        assert_eq!(seen, [true; 8], "every value of below(8) turns up");
    }

    #[test]
    #[should_panic(expected = "non-zero seed")]
    fn a_zero_seed_is_refused() {
        let _ = Rng::new(0);
    }
}
