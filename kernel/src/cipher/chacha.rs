// SPDX-License-Identifier: MIT OR Apache-2.0
//! ChaCha20 (RFC 8439) blocks on SSE2, for the peer link's keystream (`link::chacha`). It must
//! give the bytes of the portable reference, `castor_ft::link::chacha::ChaCha20::apply_portable`
//! (tested below on the host, and checked again on the kernel target before links use it:
//! [`sse2_matches_portable`]). One block is written by hand: the state's four rows in
//! XMM0-XMM3, a quarter round on all four columns at once, the rows rotated (PSHUFD) to put
//! the diagonals in columns and back, about half the instructions of the portable block, and
//! the XOR with the data 16 bytes at a time.

use castor_ft::link::chacha::{BLOCK_LEN, ChaCha20};

use super::xmm_asm;

/// One quarter round on the four columns of rows XMM0 (a), XMM1 (b), XMM2 (c), XMM3 (d), with
/// XMM4 as scratch: RFC 8439, 2.1, with each rotation a shift pair.
macro_rules! quarter_round {
    () => {
        concat!(
            "paddd xmm0, xmm1\n pxor xmm3, xmm0\n movdqa xmm4, xmm3\n",
            "pslld xmm3, 16\n psrld xmm4, 16\n por xmm3, xmm4\n",
            "paddd xmm2, xmm3\n pxor xmm1, xmm2\n movdqa xmm4, xmm1\n",
            "pslld xmm1, 12\n psrld xmm4, 20\n por xmm1, xmm4\n",
            "paddd xmm0, xmm1\n pxor xmm3, xmm0\n movdqa xmm4, xmm3\n",
            "pslld xmm3, 8\n psrld xmm4, 24\n por xmm3, xmm4\n",
            "paddd xmm2, xmm3\n pxor xmm1, xmm2\n movdqa xmm4, xmm1\n",
            "pslld xmm1, 7\n psrld xmm4, 25\n por xmm1, xmm4\n",
        )
    };
}

/// The block of input state `state`, XORed into `out`.
///
/// # Safety
/// SSE must be usable and XMM0-XMM4 and XMM8-XMM11 ours to clobber (in the kernel: inside
/// `vector::lend`).
unsafe fn block_xor(state: &[u32; 16], out: &mut [u8; BLOCK_LEN]) {
    // SAFETY: reads 64 bytes at `state` and reads and writes 64 bytes at `out`, both valid for
    // that; the XMM registers it uses are the caller's to clobber.
    unsafe {
        xmm_asm!(
            "movdqu xmm0, [{s}]",
            "movdqu xmm1, [{s} + 16]",
            "movdqu xmm2, [{s} + 32]",
            "movdqu xmm3, [{s} + 48]",
            "movdqa xmm8, xmm0",
            "movdqa xmm9, xmm1",
            "movdqa xmm10, xmm2",
            "movdqa xmm11, xmm3",
            "mov {n:e}, 10",
            "2:",
            quarter_round!(),
            // Diagonals into columns: rotate b, c, d left by 1, 2, 3 words.
            "pshufd xmm1, xmm1, 0x39",
            "pshufd xmm2, xmm2, 0x4e",
            "pshufd xmm3, xmm3, 0x93",
            quarter_round!(),
            "pshufd xmm1, xmm1, 0x93",
            "pshufd xmm2, xmm2, 0x4e",
            "pshufd xmm3, xmm3, 0x39",
            "dec {n:e}",
            "jnz 2b",
            "paddd xmm0, xmm8",
            "paddd xmm1, xmm9",
            "paddd xmm2, xmm10",
            "paddd xmm3, xmm11",
            "movdqu xmm4, [{o}]",
            "pxor xmm4, xmm0",
            "movdqu [{o}], xmm4",
            "movdqu xmm4, [{o} + 16]",
            "pxor xmm4, xmm1",
            "movdqu [{o} + 16], xmm4",
            "movdqu xmm4, [{o} + 32]",
            "pxor xmm4, xmm2",
            "movdqu [{o} + 32], xmm4",
            "movdqu xmm4, [{o} + 48]",
            "pxor xmm4, xmm3",
            "movdqu [{o} + 48], xmm4",
            s = in(reg) state.as_ptr(),
            o = in(reg) out.as_mut_ptr(),
            n = out(reg) _,
        );
    }
}

/// [`ChaCha20::apply_portable`] with its blocks made on SSE2.
///
/// # Safety
/// As for [`block_xor`].
pub unsafe fn chacha20_sse2(
    c: &ChaCha20,
    mut counter: u32,
    data: &mut [u8],
    key_block: bool,
) -> [u8; 32] {
    let mut poly_key = [0u8; 32];
    if key_block {
        let mut ks = [0u8; BLOCK_LEN];
        // SAFETY: the caller's promise.
        unsafe { block_xor(&c.state(counter), &mut ks) };
        poly_key.copy_from_slice(&ks[..32]);
        counter = counter.wrapping_add(1);
    }
    for chunk in data.chunks_mut(BLOCK_LEN) {
        let state = c.state(counter);
        match <&mut [u8; BLOCK_LEN]>::try_from(&mut *chunk) {
            // SAFETY: as above.
            Ok(whole) => unsafe { block_xor(&state, whole) },
            Err(_) => {
                let mut ks = [0u8; BLOCK_LEN];
                // SAFETY: as above.
                unsafe { block_xor(&state, &mut ks) };
                for (d, k) in chunk.iter_mut().zip(ks) {
                    *d ^= k;
                }
            }
        }
        counter = counter.wrapping_add(1);
    }
    poly_key
}

/// Whether [`chacha20_sse2`] gives the portable keystream here (whole and partial blocks, with
/// the key block), as it must.
///
/// # Safety
/// As for [`block_xor`].
pub unsafe fn sse2_matches_portable() -> bool {
    let c = ChaCha20::new(&[0x5a; 32], &[0xa5; 12]);
    let mut fast = [0u8; 4 * BLOCK_LEN + 37];
    let mut slow = fast;
    // SAFETY: the caller's promise.
    let k_fast = unsafe { chacha20_sse2(&c, 0, &mut fast, true) };
    let k_slow = c.apply_portable(0, &mut slow, true);
    k_fast == k_slow && fast == slow
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Every length around a block, with and without the key block, at several counters: the
    /// same keystream and Poly1305 key as the portable reference.
    #[test]
    fn sse2_keystream_matches_the_portable_one() {
        let key: [u8; 32] = core::array::from_fn(|i| (i * 7 + 1) as u8);
        let c = ChaCha20::new(&key, &[3; 12]);
        for len in (0..=300).chain([1400, 1452, 4096]) {
            for key_block in [false, true] {
                for counter in [0, 1, 1000] {
                    let data: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
                    let (mut a, mut b) = (data.clone(), data);
                    // SAFETY: hosted: SSE2 is on, and the asm declares what it clobbers.
                    let ka = unsafe { chacha20_sse2(&c, counter, &mut a, key_block) };
                    let kb = c.apply_portable(counter, &mut b, key_block);
                    assert_eq!(a, b, "len {len} counter {counter} key block {key_block}");
                    assert_eq!(ka, kb);
                }
            }
        }
        // SAFETY: as above.
        assert!(unsafe { sse2_matches_portable() });
    }
}
