// SPDX-License-Identifier: MIT OR Apache-2.0
//! AES-256-GCM for the session frames of every peer link the kernel makes
//! (`LinkConfig::aes_gcm`): [`crate::cipher::aes_gcm`] inside [`vector::lend`], which saves
//! and restores the guest's x87/SSE registers around it. A link offers it where the CPU has
//! the instructions, gives the known answer, and seals in fewer TSC cycles per byte than the
//! ChaCha20 keystream alone takes here ([`for_links`]); the pair uses it where both offer it.

use castor_ft::link::{AesGcm, AesGcmKey};

use super::chacha;
use crate::arch::x86_64::cpu::CpuFeatures;
use crate::arch::x86_64::vector;
use crate::cipher::aes_gcm;
use crate::kprintln;

/// [`AesGcm::expand`] on this CPU.
fn expand(key: &[u8; 32]) -> AesGcmKey {
    let mut k = AesGcmKey::zeroed();
    vector::lend(&mut || {
        // SAFETY: `for_links` offers this only on a CPU with the instructions, and `lend`
        // made SSE usable with the guest's registers saved.
        k = unsafe { aes_gcm::expand(key) };
    });
    k
}

/// [`AesGcm::seal`] on this CPU.
fn seal(key: &AesGcmKey, nonce: &[u8; 12], aad: &[u8], body: &mut [u8]) -> [u8; 16] {
    let mut tag = [0u8; 16];
    // SAFETY: as in `expand`.
    vector::lend(&mut || tag = unsafe { aes_gcm::seal(key, nonce, aad, body) });
    tag
}

/// [`AesGcm::open`] on this CPU.
fn open(key: &AesGcmKey, nonce: &[u8; 12], aad: &[u8], body: &mut [u8], tag: &[u8; 16]) -> bool {
    let mut ok = false;
    // SAFETY: as in `expand`.
    vector::lend(&mut || ok = unsafe { aes_gcm::open(key, nonce, aad, body, tag) });
    ok
}

/// This CPU's AES-256-GCM.
const ON_THIS_CPU: AesGcm = AesGcm { expand, seal, open };

/// AES-256-GCM for links, if this host offers it; decided once, and said why.
pub fn for_links() -> Option<AesGcm> {
    static CHOSEN: spin::Once<bool> = spin::Once::new();
    let offered = *CHOSEN.call_once(|| {
        if !CpuFeatures::detect().aes_gcm {
            kprintln!("link: no AES-NI and PCLMULQDQ here; AES-256-GCM not offered");
            return false;
        }
        let mut correct = false;
        // SAFETY: the CPU has the instructions; `lend` made SSE usable with the guest's
        // registers saved.
        vector::lend(&mut || correct = unsafe { aes_gcm::self_check() });
        if !correct {
            kprintln!("link: AES-256-GCM misses its known answer here; not offered");
            return false;
        }
        let key = expand(&[0x3c; 32]);
        let aes = chacha::cycles_per_kib(&mut |data| {
            seal(&key, &[0xc3; 12], &[], data);
        });
        let chacha = chacha::cycles_per_kib_for_links();
        let faster = aes < chacha;
        kprintln!(
            "link: AES-256-GCM {aes} TSC cycles/KiB, the ChaCha20 keystream alone {chacha}; {}",
            if faster {
                "offering AES-256-GCM"
            } else {
                "not offering AES-256-GCM"
            }
        );
        faster
    });
    offered.then_some(ON_THIS_CPU)
}
