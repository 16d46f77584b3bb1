// SPDX-License-Identifier: MIT OR Apache-2.0
//! The ChaCha20 stream cipher (RFC 8439, section 2.4) under the link's AEAD, and the seam
//! through which another keystream implementation replaces the portable one ([`Keystream`],
//! [`super::LinkConfig::keystream`]).
//!
//! Why a seam: the RustCrypto `chacha20` crate picks its vector back ends by run-time CPU
//! detection, which reports nothing on a freestanding target (`target_os = "none"`), so in the
//! kernel it always runs its portable code, which was most of the link's cost per frame. The
//! kernel's vector registers hold its guest's state, so only the kernel can say when they may
//! be used; it supplies a keystream that runs on SSE2 with the guest's registers saved around
//! it (`kernel/src/link/chacha.rs`), and uses it where it gives [`ChaCha20::apply_portable`]'s
//! bytes and runs faster.

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

/// Bytes per ChaCha20 block.
pub const BLOCK_LEN: usize = 64;

/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// A keystream implementation: XORs `data` with the keystream of `cipher` from block
/// `counter` on, after taking block `counter` itself as the Poly1305 key when asked (`true`;
/// the data then starts at block `counter + 1`), and returns that key (zeros when not asked).
/// The blocks used must not pass block `u32::MAX` (the AEAD bounds its messages so). Another
/// implementation must give the bytes of [`ChaCha20::apply_portable`].
pub type Keystream =
    fn(cipher: &ChaCha20, counter: u32, data: &mut [u8], key_block: bool) -> [u8; 32];

/// A ChaCha20 key and nonce.
#[derive(Clone)]
pub struct ChaCha20 {
    key: [u8; 32],
    nonce: [u8; 12],
}

impl ChaCha20 {
    /// The cipher for `key` and `nonce`.
    #[must_use]
    pub fn new(key: &[u8; 32], nonce: &[u8; 12]) -> Self {
        Self {
            key: *key,
            nonce: *nonce,
        }
    }

    /// The input state of block `counter`: constants, key, counter, nonce as little-endian
    /// words (RFC 8439, 2.3).
    #[must_use]
    pub fn state(&self, counter: u32) -> [u32; 16] {
        let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let mut s = [0u32; 16];
        s[..4].copy_from_slice(&SIGMA);
        for (w, b) in s[4..12].iter_mut().zip(self.key.chunks_exact(4)) {
            *w = word(b);
        }
        s[12] = counter;
        for (w, b) in s[13..].iter_mut().zip(self.nonce.chunks_exact(4)) {
            *w = word(b);
        }
        s
    }

    /// The portable [`Keystream`]: the RustCrypto `chacha20` crate.
    pub fn apply_portable(&self, counter: u32, data: &mut [u8], key_block: bool) -> [u8; 32] {
        let mut cipher = chacha20::ChaCha20::new(&self.key.into(), &self.nonce.into());
        cipher.seek(u64::from(counter) * BLOCK_LEN as u64);
        let mut poly_key = [0u8; 32];
        if key_block {
            let mut block = [0u8; BLOCK_LEN];
            cipher.apply_keystream(&mut block);
            poly_key.copy_from_slice(&block[..32]);
        }
        cipher.apply_keystream(data);
        poly_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::hex;

    #[test]
    fn rfc8439_block_function_and_state() {
        // RFC 8439 section 2.3.2: the state before the rounds, and the block.
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let nonce: [u8; 12] = hex("000000090000004a00000000").try_into().unwrap();
        let c = ChaCha20::new(&key, &nonce);
        assert_eq!(
            c.state(1),
            [
                0x61707865, 0x3320646e, 0x79622d32, 0x6b206574, 0x03020100, 0x07060504, 0x0b0a0908,
                0x0f0e0d0c, 0x13121110, 0x17161514, 0x1b1a1918, 0x1f1e1d1c, 0x00000001, 0x09000000,
                0x4a000000, 0x00000000
            ]
        );
        let mut block = [0u8; BLOCK_LEN];
        c.apply_portable(1, &mut block, false);
        assert_eq!(
            block.to_vec(),
            hex(
                "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e\
                 d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
            )
        );
        // With the key block: block 1 is the key, the data starts at block 2.
        let mut rest = [0u8; 20];
        assert_eq!(c.apply_portable(1, &mut rest, true)[..], block[..32]);
        let mut block2 = [0u8; 20];
        c.apply_portable(2, &mut block2, false);
        assert_eq!(rest, block2);
    }
}
