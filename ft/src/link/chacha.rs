// SPDX-License-Identifier: MIT OR Apache-2.0
//! The ChaCha20 stream cipher (RFC 8439, section 2.4) under the link's AEAD, and the seam
//! through which a faster keystream replaces the portable one ([`Keystream`],
//! [`super::LinkConfig::keystream`]).
//!
//! Why a seam: the RustCrypto crates pick their vector back ends by run-time CPU detection,
//! which reports nothing on a freestanding target (`target_os = "none"`), so in the kernel they
//! always ran portable code, which was most of the link's cost per frame. The kernel's vector
//! registers hold its guest's state, so only the kernel can say when they may be used; it
//! supplies a keystream that runs on SSE2 with the guest's registers saved around it
//! (`kernel/src/link/chacha.rs`), checked against [`ChaCha20::apply_portable`].

/// Bytes per ChaCha20 block.
pub const BLOCK_LEN: usize = 64;

/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// A keystream implementation: XORs `data` with the keystream of `cipher` from block
/// `counter` on, after taking block `counter` itself as the Poly1305 key when asked (`true`;
/// the data then starts at block `counter + 1`), and returns that key (zeros when not asked).
/// [`ChaCha20::apply_portable`] is the reference; another must give the same bytes.
pub type Keystream =
    fn(cipher: &ChaCha20, counter: u32, data: &mut [u8], key_block: bool) -> [u8; 32];

/// A ChaCha20 key and nonce.
#[derive(Clone)]
pub struct ChaCha20 {
    key: [u32; 8],
    nonce: [u32; 3],
}

impl ChaCha20 {
    /// The cipher for `key` and `nonce`.
    #[must_use]
    pub fn new(key: &[u8; 32], nonce: &[u8; 12]) -> Self {
        let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let mut k = [0u32; 8];
        for (w, chunk) in k.iter_mut().zip(key.chunks_exact(4)) {
            *w = word(chunk);
        }
        let mut n = [0u32; 3];
        for (w, chunk) in n.iter_mut().zip(nonce.chunks_exact(4)) {
            *w = word(chunk);
        }
        Self { key: k, nonce: n }
    }

    /// The input state of block `counter`: constants, key, counter, nonce (RFC 8439, 2.3).
    #[must_use]
    pub fn state(&self, counter: u32) -> [u32; 16] {
        let mut s = [0u32; 16];
        s[..4].copy_from_slice(&SIGMA);
        s[4..12].copy_from_slice(&self.key);
        s[12] = counter;
        s[13..].copy_from_slice(&self.nonce);
        s
    }

    /// Keystream block `counter`.
    #[must_use]
    pub fn block(&self, counter: u32) -> [u8; BLOCK_LEN] {
        let init = self.state(counter);
        let mut x = init;
        for _ in 0..10 {
            for [a, b, c, d] in ROUND {
                quarter_round(&mut x, a, b, c, d);
            }
        }
        let mut out = [0u8; BLOCK_LEN];
        for ((o, w), i) in out.chunks_exact_mut(4).zip(x).zip(init) {
            o.copy_from_slice(&w.wrapping_add(i).to_le_bytes());
        }
        out
    }

    /// The portable [`Keystream`]: one block at a time.
    pub fn apply_portable(&self, mut counter: u32, data: &mut [u8], key_block: bool) -> [u8; 32] {
        let mut poly_key = [0u8; 32];
        if key_block {
            poly_key.copy_from_slice(&self.block(counter)[..32]);
            counter = counter.wrapping_add(1);
        }
        for chunk in data.chunks_mut(BLOCK_LEN) {
            for (d, k) in chunk.iter_mut().zip(self.block(counter)) {
                *d ^= k;
            }
            counter = counter.wrapping_add(1);
        }
        poly_key
    }
}

/// The quarter rounds of a double round (state word indices): four columns, then four
/// diagonals.
pub const ROUND: [[usize; 4]; 8] = [
    [0, 4, 8, 12],
    [1, 5, 9, 13],
    [2, 6, 10, 14],
    [3, 7, 11, 15],
    [0, 5, 10, 15],
    [1, 6, 11, 12],
    [2, 7, 8, 13],
    [3, 4, 9, 14],
];

fn quarter_round(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(16);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(12);
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(8);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(7);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::hex;

    #[test]
    fn rfc8439_block_function() {
        // RFC 8439 section 2.3.2.
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let nonce: [u8; 12] = hex("000000090000004a00000000").try_into().unwrap();
        let block = ChaCha20::new(&key, &nonce).block(1);
        assert_eq!(
            block.to_vec(),
            hex(
                "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e\
                 d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
            )
        );
    }
}
