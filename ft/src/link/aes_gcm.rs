// SPDX-License-Identifier: MIT OR Apache-2.0
//! AES-256-GCM (NIST SP 800-38D) for session frames, where both hosts supply it
//! ([`super::LinkConfig::aes_gcm`]). This crate has no AES of its own: a host supplies one
//! that runs on its AES and carry-less-multiply instructions (the kernel's, on AES-NI and
//! PCLMULQDQ), and offers it in its HELLOs only then; a pair uses it when both offer it, and
//! ChaCha20-Poly1305 ([`super::chacha`]) otherwise.
//!
//! Why a second cipher: on CPUs with those instructions AES-GCM takes a fraction of the
//! instructions per byte that ChaCha20-Poly1305 takes on SSE2 (about 4.5 against 20), and
//! the AEAD is most of the peer link's cost per frame.

/// An expanded AES-256-GCM key: the 15 round keys, and the powers `H`, `H^2`, `H^3`, `H^4` of
/// the hash key `H = AES(K, 0^128)` in GF(2^128), with their bytes reversed (the form
/// carry-less multiplication takes them in; four blocks are hashed with one reduction).
/// 16-byte aligned, so SSE instructions may take its parts as memory operands.
#[derive(Clone, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct AesGcmKey {
    /// Round keys 0..=14 (FIPS 197, 5.2).
    pub round_keys: [[u8; 16]; 15],
    /// The hash key's first four powers, in the form the implementation multiplies by (the
    /// kernel's: POLYVAL keys, `mulX_POLYVAL(ByteReverse(H))` and its powers, RFC 8452).
    pub h_powers: [[u8; 16]; 4],
}

impl AesGcmKey {
    /// A key of zeros, for an implementation's `expand` to fill in.
    #[must_use]
    pub const fn zeroed() -> Self {
        Self {
            round_keys: [[0; 16]; 15],
            h_powers: [[0; 16]; 4],
        }
    }
}

/// [`AesGcm::seal`]: encrypts `body` in place and returns the tag over `aad` and the
/// ciphertext.
pub type Seal = fn(key: &AesGcmKey, nonce: &[u8; 12], aad: &[u8], body: &mut [u8]) -> [u8; 16];

/// [`AesGcm::open`]: checks `tag` over `aad` and the ciphertext `body` and, only if it
/// matches, decrypts `body` in place. Returns whether it matched.
pub type Open =
    fn(key: &AesGcmKey, nonce: &[u8; 12], aad: &[u8], body: &mut [u8], tag: &[u8; 16]) -> bool;

/// An AES-256-GCM implementation with 96-bit nonces and 16-byte tags.
#[derive(Clone, Copy, Debug)]
pub struct AesGcm {
    /// Expands a 256-bit key.
    pub expand: fn(key: &[u8; 32]) -> AesGcmKey,
    /// Seals a frame.
    pub seal: Seal,
    /// Opens a frame.
    pub open: Open,
}
