// SPDX-License-Identifier: MIT OR Apache-2.0
//! The ChaCha20 keystream of every peer link the kernel makes (`LinkConfig::keystream`):
//! [`crate::cipher`]'s SSE2 one, four blocks at a time. The x87/SSE registers hold the guest's
//! state between exits, so it runs inside [`vector::lend`], which saves and restores them.
//! Links use it where it is correct and faster than the portable keystream ([`for_links`]).

use castor_ft::link::{ChaCha20, Keystream};

use crate::arch::x86_64::{instr, vector};
use crate::cipher;
use crate::kprintln;

/// The keystream the kernel's peer links use ([`castor_ft::link::Keystream`]): the SSE2 one,
/// with the x87/SSE registers lent by [`vector::lend`] (the guest's saved around it).
pub fn keystream(c: &ChaCha20, counter: u32, data: &mut [u8], key_block: bool) -> [u8; 32] {
    let mut key = [0u8; 32];
    vector::lend(&mut || {
        // SAFETY: SSE2 is architectural on x86-64, and `lend` made it usable with the
        // guest's registers saved.
        key = unsafe { cipher::chacha::chacha20_sse2(c, counter, data, key_block) };
    });
    key
}

/// The keystream links are made with, chosen once: [`keystream`] if it gives the portable bytes
/// here ([`cipher::chacha::sse2_matches_portable`]) and runs faster than the portable one on this
/// machine, timed on the TSC (as Linux times its RAID checksum routines at boot): on hardware
/// SSE2 wins, but an emulator may run scalar code faster than its emulated SSE (QEMU's TCG in
/// wall time does). Says what it measured and chose.
pub fn for_links() -> Keystream {
    match chosen().0 {
        true => keystream,
        false => ChaCha20::apply_portable,
    }
}

/// TSC cycles per KiB of [`for_links`]'s keystream, as measured when it was chosen.
pub fn cycles_per_kib_for_links() -> u64 {
    chosen().1
}

/// Whether links use the SSE2 keystream, and the chosen keystream's TSC cycles per KiB.
fn chosen() -> (bool, u64) {
    static CHOSEN: spin::Once<(bool, u64)> = spin::Once::new();
    *CHOSEN.call_once(|| {
        let portable = keystream_cycles_per_kib(ChaCha20::apply_portable);
        let mut correct = false;
        // SAFETY: `lend` made SSE usable with the guest's registers saved.
        vector::lend(&mut || correct = unsafe { cipher::chacha::sse2_matches_portable() });
        if !correct {
            kprintln!("link: the SSE2 ChaCha20 differs from the portable one; using the portable");
            return (false, portable);
        }
        let sse2 = keystream_cycles_per_kib(keystream);
        let faster = sse2 < portable;
        kprintln!(
            "link: ChaCha20 {sse2} TSC cycles/KiB on SSE2, {portable} portable; using {}",
            if faster { "SSE2" } else { "the portable code" }
        );
        (faster, sse2.min(portable))
    })
}

/// TSC cycles per KiB of the keystream `k`.
fn keystream_cycles_per_kib(k: Keystream) -> u64 {
    let c = ChaCha20::new(&[0x3c; 32], &[0xc3; 12]);
    cycles_per_kib(&mut |data| {
        k(&c, 0, data, true);
    })
}

/// TSC cycles per KiB of `f` (the best of a few runs over 4 KiB).
pub(super) fn cycles_per_kib(f: &mut dyn FnMut(&mut [u8])) -> u64 {
    const LEN: usize = 4096;
    let mut data = [0u8; LEN];
    (0..4)
        .map(|_| {
            let start = instr::rdtsc();
            f(&mut data);
            instr::rdtsc().wrapping_sub(start)
        })
        .min()
        .unwrap_or(0)
        / (LEN as u64 / 1024)
}
