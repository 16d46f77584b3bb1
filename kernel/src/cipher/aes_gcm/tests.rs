// SPDX-License-Identifier: MIT OR Apache-2.0
use super::*;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit};
use alloc::vec::Vec;

/// Whether this host can run the code (the build machine's CPU; every x86-64 CPU of the
/// last decade has all three).
fn supported() -> bool {
    std::is_x86_feature_detected!("ssse3")
        && std::is_x86_feature_detected!("aes")
        && std::is_x86_feature_detected!("pclmulqdq")
}

#[test]
fn the_known_answer_of_the_gcm_specification() {
    assert!(supported(), "this host lacks AES-NI or PCLMULQDQ");
    // SAFETY: hosted, with the instructions present; `xmm_asm` declares the clobbers.
    assert!(unsafe { self_check() });
}

/// Every length around a block and the link's frame sizes, with AADs of several lengths:
/// the bytes and tags of the RustCrypto crate, opened from its output, and a flipped bit
/// anywhere refused with the body left as ciphertext.
#[test]
fn agrees_with_the_rustcrypto_aead() {
    assert!(supported(), "this host lacks AES-NI or PCLMULQDQ");
    let raw: [u8; 32] = core::array::from_fn(|i| (i * 29 + 3) as u8);
    let theirs = Aes256Gcm::new(&raw.into());
    // SAFETY: as above.
    let ours = unsafe { expand(&raw) };
    for len in (0..=80).chain([255, 256, 257, 1400, 1452, 4096, 9000]) {
        let nonce: [u8; 12] = core::array::from_fn(|i| (i + len) as u8);
        let aad: Vec<u8> = (0..len % 37).map(|i| i as u8 ^ 0xa5).collect();
        let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let (mut a, mut b) = (plain.clone(), plain.clone());
        // SAFETY: as above.
        let tag_a = unsafe { seal(&ours, &nonce, &aad, &mut a) };
        let tag_b = theirs
            .encrypt_in_place_detached(&nonce.into(), &aad, &mut b)
            .unwrap();
        assert_eq!(a, b, "ciphertext, {len} bytes");
        assert_eq!(tag_a[..], tag_b[..], "tag, {len} bytes");
        // SAFETY: as above.
        assert!(unsafe { open(&ours, &nonce, &aad, &mut b, &tag_a) });
        assert_eq!(b, plain);
        if len > 0 {
            let mut c = a.clone();
            c[len / 2] ^= 0x10;
            // SAFETY: as above.
            assert!(!unsafe { open(&ours, &nonce, &aad, &mut c, &tag_a) });
            c[len / 2] ^= 0x10;
            assert_eq!(c, a, "a forged frame is never decrypted");
        }
        let mut bad = tag_a;
        bad[15] ^= 1;
        // SAFETY: as above.
        assert!(!unsafe { open(&ours, &nonce, &aad, &mut a.clone(), &bad) });
    }
}
