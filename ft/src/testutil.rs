// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the host tests of every module share: one seeded generator, so a failure reproduces
//! from its seed.

use alloc::vec;
use alloc::vec::Vec;

use crate::link::RandomSource;

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
/// OOPSLA 2014): small, fast, and every seed (zero included) gives a full-period sequence.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// The generator for `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0): a length, a count or an index.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.below_u64(n as u64) as usize
    }

    /// Uniform in `0..n` (0 when `n` is 0): a page number, a time.
    pub(crate) fn below_u64(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// A random byte.
    pub(crate) fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// Fills `buf` with random bytes.
    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// `len` random bytes.
    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.fill(&mut v);
        v
    }
}

/// How much a test does: `release` in optimised builds, the smaller `debug` in unoptimised
/// ones, to keep `cargo test` fast.
pub(crate) fn volume(release: usize, debug: usize) -> usize {
    if cfg!(debug_assertions) {
        debug
    } else {
        release
    }
}

impl RandomSource for Rng {
    fn next_u64(&mut self) -> u64 {
        Rng::next_u64(self)
    }
}

#[test]
fn below_stays_below_and_reaches_every_value() {
    let mut rng = Rng::new(7);
    let mut seen = [false; 5];
    for _ in 0..200 {
        let v = rng.below(5);
        assert!(v < 5);
        seen[v] = true;
    }
    assert_eq!(seen, [true; 5]);
    assert_eq!(rng.below(0), 0);
    assert_eq!(rng.below_u64(0), 0);
}

#[test]
fn the_same_seed_gives_the_same_sequence() {
    let (mut a, mut b, mut c) = (Rng::new(1), Rng::new(1), Rng::new(2));
    let (x, y, z) = (a.bytes(13), b.bytes(13), c.bytes(13));
    assert_eq!(x, y);
    assert_ne!(x, z);
    assert!(!(0..100).any(|_| a.chance(0.0)));
    assert!((0..100).all(|_| a.chance(1.0)));
}

/// The bytes written as hexadecimal digit pairs in `s` (test vectors).
pub(crate) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// AES-256-GCM from the RustCrypto `aes-gcm` crate, as a host would supply one
/// ([`crate::link::AesGcm`]). Its "expanded" key keeps the key itself in the first two round
/// keys, which AES-256's key schedule makes the key's two halves anyway.
pub(crate) const AES_GCM: crate::link::AesGcm = crate::link::AesGcm {
    expand: |key| {
        let mut k = crate::link::AesGcmKey::zeroed();
        k.round_keys[0].copy_from_slice(&key[..16]);
        k.round_keys[1].copy_from_slice(&key[16..]);
        k
    },
    seal: |key, nonce, aad, body| {
        use aes_gcm::aead::AeadInPlace;
        let tag = rust_crypto(key)
            .encrypt_in_place_detached(nonce.into(), aad, body)
            .expect("a frame-sized body");
        tag.into()
    },
    open: |key, nonce, aad, body, tag| {
        use aes_gcm::aead::AeadInPlace;
        rust_crypto(key)
            .decrypt_in_place_detached(nonce.into(), aad, body, tag.into())
            .is_ok()
    },
};

fn rust_crypto(key: &crate::link::AesGcmKey) -> aes_gcm::Aes256Gcm {
    use aes_gcm::KeyInit;
    let mut raw = [0u8; 32];
    raw[..16].copy_from_slice(&key.round_keys[0]);
    raw[16..].copy_from_slice(&key.round_keys[1]);
    aes_gcm::Aes256Gcm::new(&raw.into())
}
