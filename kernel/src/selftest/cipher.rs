// SPDX-License-Identifier: MIT OR Apache-2.0
//! The peer link's ciphers on this machine: the SSE2 ChaCha20 keystream equals the portable
//! one, AES-256-GCM (where offered) opens what it sealed, and running them through
//! `vector::lend` leaves the x87/SSE registers as they were, so a guest whose registers they
//! are between exits never sees the host's use of them. The registers are loaded with a
//! pattern first (every XMM register and MXCSR distinct), the ciphers run, and all of them
//! are read back.

use alloc::vec;

use castor_ft::link::ChaCha20;

use super::Verdict;
use crate::arch::x86_64::vector::{self, FX_LEN, FxImage};
use crate::ensure;
use crate::link::chacha;

/// Where the XMM registers lie in an FXSAVE image (SDM Vol. 1, 10.5.1, table 10-2).
const XMM: core::ops::Range<usize> = 160..416;
/// MXCSR's place in the image.
const MXCSR: core::ops::Range<usize> = 24..28;

/// See the [module docs](self).
pub fn sse2_and_lending() -> Verdict {
    let mut before = FxImage([0; FX_LEN]);
    vector::fxsave(&mut before);
    for (i, b) in before.0[XMM].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0x5c;
    }
    // Rounding toward zero, all exceptions masked: not the power-on 0x1F80.
    before.0[MXCSR].copy_from_slice(&0x7F80u32.to_le_bytes());
    // SAFETY: this CPU's own image with MXCSR bits every SSE CPU has.
    unsafe { vector::fxrstor(&before) };

    let c = ChaCha20::new(&[0x42; 32], &[0x24; 12]);
    let (mut fast, mut slow) = (vec![0x11u8; 1452], vec![0x11u8; 1452]);
    let k_fast = chacha::keystream(&c, 0, &mut fast, true);
    let k_slow = c.apply_portable(0, &mut slow, true);
    // AES-256-GCM too where this CPU offers it: sealed and opened again.
    let aes = crate::link::aes_gcm::for_links().map(|aes| {
        let key = (aes.expand)(&[0x42; 32]);
        let mut frame = vec![0x11u8; 1452];
        let tag = (aes.seal)(&key, &[0x24; 12], b"header", &mut frame);
        let sealed = frame != slow && frame.iter().any(|&b| b != 0x11);
        sealed
            && (aes.open)(&key, &[0x24; 12], b"header", &mut frame, &tag)
            && frame == [0x11; 1452]
    });

    let mut after = FxImage([0; FX_LEN]);
    vector::fxsave(&mut after);
    ensure!(
        k_fast == k_slow && fast == slow,
        "the SSE2 keystream differs from the portable one"
    );
    ensure!(
        aes != Some(false),
        "an AES-256-GCM frame did not open to what was sealed"
    );
    let changed = (0..16)
        .filter(|r| {
            let at = XMM.start + 16 * r;
            before.0[at..at + 16] != after.0[at..at + 16]
        })
        .count();
    ensure!(
        changed == 0,
        "{changed} XMM registers changed across the lent cipher"
    );
    ensure!(
        before.0[MXCSR] == after.0[MXCSR],
        "MXCSR changed across the lent cipher"
    );
    let with_aes = if aes.is_some() {
        ", and sealed and opened under AES-256-GCM"
    } else {
        ""
    };
    Ok(alloc::format!(
        "1452 bytes enciphered as the portable code does{with_aes}, 16 XMM registers and MXCSR \
         kept"
    ))
}
