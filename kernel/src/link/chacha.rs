// SPDX-License-Identifier: MIT OR Apache-2.0
//! The ChaCha20 keystream of every peer link the kernel makes (`LinkConfig::keystream`):
//! [`crate::cipher`]'s SSE2 one, four blocks at a time. The x87/SSE registers hold the guest's
//! state between exits, so it runs inside [`vector::lend`], which saves and restores them.

use castor_ft::link::{ChaCha20, Keystream};

use crate::arch::x86_64::vector;
use crate::cipher;

/// The keystream the kernel's peer links use ([`castor_ft::link::Keystream`]): the SSE2 one,
/// with the x87/SSE registers lent by [`vector::lend`] (the guest's saved around it).
pub fn keystream(c: &ChaCha20, counter: u32, data: &mut [u8], key_block: bool) -> [u8; 32] {
    let mut key = [0u8; 32];
    vector::lend(&mut || {
        // SAFETY: SSE2 is architectural on x86-64, and `lend` made it usable with the
        // guest's registers saved.
        key = unsafe { cipher::chacha20_sse2(c, counter, data, key_block) };
    });
    key
}

/// The keystream links are made with: [`keystream`] if it gives the portable bytes on this
/// machine, checked once ([`cipher::sse2_matches_portable`]); else the portable one, saying so.
pub fn for_links() -> Keystream {
    static CHECKED: spin::Once<bool> = spin::Once::new();
    let fast = *CHECKED.call_once(|| {
        let mut ok = false;
        // SAFETY: `lend` made SSE usable with the guest's registers saved.
        vector::lend(&mut || ok = unsafe { cipher::sse2_matches_portable() });
        if !ok {
            log::warn!("link: the SSE2 ChaCha20 differs from the portable one; using the portable");
        }
        ok
    });
    if fast {
        keystream
    } else {
        ChaCha20::apply_portable
    }
}
