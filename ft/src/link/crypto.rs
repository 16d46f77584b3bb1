//! The pre-shared key, session-key derivation, nonces and the ChaCha20-Poly1305 AEAD
//! (RFC 8439) that authenticates (and encrypts) every peer-link frame.
//!
//! Keys:
//! - HELLO frames are sealed under `K_hello(sender) = BLAKE3-derive-key("castor-ft link v1
//!   hello", PSK || sender_session_id)`, so the two hosts (and every restart, which draws a fresh
//!   random 64-bit session id) use distinct keys.
//! - Session frames are sealed under one key per direction, `K_dir = BLAKE3-derive-key(
//!   "castor-ft link v1 session", PSK || primary_session_id || backup_session_id || dir)`.
//!
//! The AEAD is RFC 8439's construction (section 2.8) from our ChaCha20 ([`super::chacha`],
//! which runs on SSE2 where it may) and the `poly1305` crate; tests check it against the
//! RustCrypto `chacha20poly1305` crate. Session keys are AES-256-GCM keys instead where both
//! hosts supply it ([`super::aes_gcm`]), derived under a context of their own so the two
//! ciphers never share a key.
//!
//! Nonces (96 bits, RFC 8439 section 2.8) are `kind || 0 0 0 || counter` with the 64-bit
//! big-endian per-key send counter, which never repeats within a key: the counter only grows,
//! and a new incarnation of a host has a new session id and hence new keys.

use core::fmt;

use poly1305::Poly1305;
use poly1305::universal_hash::{KeyInit, UniversalHash};

use alloc::boxed::Box;

use super::aes_gcm::{AesGcm, AesGcmKey};
use super::chacha::{ChaCha20, Keystream};

use super::config::Role;
use super::error::KeyError;

/// Length of the Poly1305 tag appended to every frame.
pub const TAG_LEN: usize = 16;
/// Length of the pre-shared key.
pub const KEY_LEN: usize = 32;

/// Source of randomness supplied by the caller (RDRAND/RDSEED mixed with the TSC in the
/// kernel; a seeded PRNG in tests). Only used for session ids.
pub trait RandomSource {
    /// Returns 64 random bits.
    fn next_u64(&mut self) -> u64;
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }
}

/// The 32-byte pre-shared key both hosts are configured with. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct PreSharedKey([u8; KEY_LEN]);

impl PreSharedKey {
    /// Wraps raw key bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hexadecimal characters (either case, surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`KeyError::WrongLength`], [`KeyError::InvalidHexDigit`] or [`KeyError::AllZero`].
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        let b = s.as_bytes();
        if b.len() != 2 * KEY_LEN {
            return Err(KeyError::WrongLength {
                found: s.chars().count(),
            });
        }
        let digit = |i: usize| -> Result<u8, KeyError> {
            let c = b[i];
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(KeyError::InvalidHexDigit { position: i }),
            }
        };
        let mut key = [0u8; KEY_LEN];
        for (i, k) in key.iter_mut().enumerate() {
            *k = (digit(2 * i)? << 4) | digit(2 * i + 1)?;
        }
        if key == [0; KEY_LEN] {
            return Err(KeyError::AllZero);
        }
        Ok(Self(key))
    }

    /// Finds `param=<hex>` among the whitespace-separated words of a kernel command line
    /// (e.g. `param = "castor.key"`) and parses it with [`PreSharedKey::from_hex`].
    ///
    /// # Errors
    /// [`KeyError::Missing`] if the parameter is absent, otherwise as `from_hex`.
    pub fn from_cmdline(cmdline: &str, param: &str) -> Result<Self, KeyError> {
        cmdline
            .split_ascii_whitespace()
            .filter_map(|w| w.strip_prefix(param)?.strip_prefix('='))
            .next_back()
            .map_or(Err(KeyError::Missing), Self::from_hex)
    }

    fn derive_key(&self, context: &str, parts: &[&[u8]]) -> [u8; KEY_LEN] {
        let mut h = blake3::Hasher::new_derive_key(context);
        h.update(&self.0);
        for p in parts {
            h.update(p);
        }
        *h.finalize().as_bytes()
    }

    fn derive(&self, context: &str, parts: &[&[u8]], keystream: Keystream) -> Aead {
        Aead::ChaCha {
            key: self.derive_key(context, parts),
            keystream,
        }
    }

    /// The key sealing HELLOs sent by the host whose session id is `sender_sid`, its cipher
    /// running on `keystream`.
    pub(crate) fn hello_key(&self, sender_sid: u64, keystream: Keystream) -> Aead {
        self.derive(
            "castor-ft link v1 hello",
            &[&sender_sid.to_be_bytes()],
            keystream,
        )
    }

    /// The key sealing witness messages sent by `sender` (a host's or a witness's random id),
    /// its cipher running on `keystream` (`crate::witness`).
    pub(crate) fn witness_key(&self, sender: u64, keystream: Keystream) -> Aead {
        self.derive("castor-ft witness v1", &[&sender.to_be_bytes()], keystream)
    }

    /// The two session keys `(tx, rx)` of the host with role `role`, for `cipher`.
    pub(crate) fn session_keys(
        &self,
        role: Role,
        local_sid: u64,
        peer_sid: u64,
        cipher: SessionCipher,
    ) -> (Aead, Aead) {
        let (p, b) = match role {
            Role::Primary => (local_sid, peer_sid),
            Role::Backup => (peer_sid, local_sid),
        };
        let key = |dir: Direction| {
            let parts: [&[u8]; 3] = [&p.to_be_bytes(), &b.to_be_bytes(), &[dir as u8]];
            match cipher {
                SessionCipher::ChaCha20Poly1305(keystream) => {
                    self.derive("castor-ft link v1 session", &parts, keystream)
                }
                SessionCipher::Aes256Gcm(imp) => Aead::AesGcm {
                    key: Box::new((imp.expand)(
                        &self.derive_key("castor-ft link v1 session aes-256-gcm", &parts),
                    )),
                    imp,
                },
            }
        };
        let tx = Direction::from_sender(role);
        let rx = Direction::from_sender(role.peer());
        (key(tx), key(rx))
    }
}

impl fmt::Debug for PreSharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreSharedKey(<redacted>)")
    }
}

/// Direction of a frame, the first nonce byte of session frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Direction {
    /// Primary to backup.
    PrimaryToBackup = 0,
    /// Backup to primary.
    BackupToPrimary = 1,
    /// HELLOs (which have their own per-sender key).
    Hello = 2,
}

impl Direction {
    pub(crate) fn from_sender(role: Role) -> Self {
        match role {
            Role::Primary => Self::PrimaryToBackup,
            Role::Backup => Self::BackupToPrimary,
        }
    }
}

/// The 96-bit nonce: direction byte, three zero bytes, 64-bit big-endian counter.
pub(crate) fn nonce(dir: Direction, counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[0] = dir as u8;
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// The cipher of a session's frames (HELLOs are always ChaCha20-Poly1305).
#[derive(Clone, Copy, Debug)]
pub(crate) enum SessionCipher {
    /// ChaCha20-Poly1305 with its keystream on this implementation.
    ChaCha20Poly1305(Keystream),
    /// AES-256-GCM on this implementation.
    Aes256Gcm(AesGcm),
}

impl SessionCipher {
    /// The cipher's name, as logs print it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::ChaCha20Poly1305(_) => "ChaCha20-Poly1305",
            Self::Aes256Gcm(_) => "AES-256-GCM",
        }
    }
}

/// A derived key with its cipher.
#[derive(Clone)]
pub(crate) enum Aead {
    /// ChaCha20-Poly1305 (RFC 8439).
    ChaCha {
        key: [u8; KEY_LEN],
        keystream: Keystream,
    },
    /// AES-256-GCM, expanded (boxed: 256 bytes).
    AesGcm { key: Box<AesGcmKey>, imp: AesGcm },
}

impl fmt::Debug for Aead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Aead(<key>)")
    }
}

/// Authentication (or length) failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AuthError;

impl Aead {
    /// Longest body: the 32-bit block counter, which starts at 1 (ChaCha20) or 2 (GCM), must
    /// not wrap.
    const MAX_BODY: u64 = (u32::MAX as u64 - 2) * 16;

    /// Encrypts `body` in place and returns the tag authenticating `aad` and the ciphertext.
    pub(crate) fn seal(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        body: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AuthError> {
        if body.len() as u64 > Self::MAX_BODY {
            return Err(AuthError);
        }
        match self {
            Self::ChaCha { key, keystream } => {
                // Block 0 keys Poly1305, blocks 1.. encrypt.
                let mac_key = keystream(&ChaCha20::new(key, nonce), 0, body, true);
                Ok(tag(&mac_key, aad, body))
            }
            Self::AesGcm { key, imp } => Ok((imp.seal)(key, nonce, aad, body)),
        }
    }

    /// Verifies `tag` over `aad` and `body` and decrypts `body` in place. On failure `body`
    /// is left as ciphertext (never exposed as plaintext).
    pub(crate) fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        body: &mut [u8],
        expected: &[u8; TAG_LEN],
    ) -> Result<(), AuthError> {
        if body.len() as u64 > Self::MAX_BODY {
            return Err(AuthError);
        }
        let (key, keystream) = match self {
            Self::ChaCha { key, keystream } => (key, keystream),
            Self::AesGcm { key, imp } => {
                return (imp.open)(key, nonce, aad, body, expected)
                    .then_some(())
                    .ok_or(AuthError);
            }
        };
        let cipher = ChaCha20::new(key, nonce);
        let mac_key = keystream(&cipher, 0, &mut [], true);
        if !tags_equal(&tag(&mac_key, aad, body), expected) {
            return Err(AuthError);
        }
        keystream(&cipher, 1, body, false);
        Ok(())
    }
}

/// Whether two tags are equal, in constant time: every byte compared whatever the first
/// difference. For implementations of [`AesGcm::open`] too.
#[must_use]
pub fn tags_equal(a: &[u8; TAG_LEN], b: &[u8; TAG_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Poly1305 under `key` over `aad`, `text` (each zero-padded to 16 bytes) and their lengths
/// (RFC 8439, 2.8).
fn tag(key: &[u8; 32], aad: &[u8], text: &[u8]) -> [u8; TAG_LEN] {
    let mut mac = Poly1305::new(key.into());
    mac.update_padded(aad);
    mac.update_padded(text);
    let mut lengths = [0u8; 16];
    lengths[..8].copy_from_slice(&(aad.len() as u64).to_le_bytes());
    lengths[8..].copy_from_slice(&(text.len() as u64).to_le_bytes());
    mac.update_padded(&lengths);
    mac.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::hex;
    use alloc::vec::Vec;

    const CHACHA: SessionCipher = SessionCipher::ChaCha20Poly1305(ChaCha20::apply_portable);

    #[test]
    fn rfc8439_aead_test_vector() {
        // RFC 8439 section 2.8.2.
        let key: [u8; 32] = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
            .try_into()
            .unwrap();
        let nonce: [u8; 12] = hex("070000004041424344454647").try_into().unwrap();
        let aad = hex("50515253c0c1c2c3c4c5c6c7");
        let mut text = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".to_vec();
        let aead = Aead::ChaCha {
            key,
            keystream: ChaCha20::apply_portable,
        };
        let tag = aead.seal(&nonce, &aad, &mut text).unwrap();
        assert_eq!(&text[..16], &hex("d31a8d34648e60db7b86afbc53ef7ec2")[..]);
        assert_eq!(tag.to_vec(), hex("1ae10b594f09e26a7e902ecbd0600691"));
        aead.open(&nonce, &aad, &mut text, &tag).unwrap();
        assert!(text.starts_with(b"Ladies"));
        let mut bad = tag;
        bad[0] ^= 1;
        assert_eq!(
            aead.open(&nonce, &aad, &mut text.clone(), &bad),
            Err(AuthError)
        );
    }

    /// Messages of every length around the cipher's 256-byte stride, and frame sizes: sealed
    /// exactly as the RustCrypto crate seals them, and opened from its output.
    #[test]
    fn agrees_with_the_rustcrypto_aead() {
        use chacha20poly1305::aead::AeadInOut;
        use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
        let key: [u8; 32] = core::array::from_fn(|i| (i * 13 + 5) as u8);
        let ours = Aead::ChaCha {
            key,
            keystream: ChaCha20::apply_portable,
        };
        let theirs = ChaCha20Poly1305::new(&key.into());
        for len in (0..=520).chain([1400, 1452, 9000]) {
            let nonce = nonce(Direction::PrimaryToBackup, len as u64);
            let aad = [len as u8; 12];
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let mut a = plain.clone();
            let mut b = plain.clone();
            let tag_a = ours.seal(&nonce, &aad[..len % 13], &mut a).unwrap();
            let tag_b = theirs
                .encrypt_inout_detached(&nonce.into(), &aad[..len % 13], (&mut b[..]).into())
                .unwrap();
            assert_eq!(a, b, "ciphertext, {len} bytes");
            assert_eq!(tag_a[..], tag_b[..], "tag, {len} bytes");
            ours.open(&nonce, &aad[..len % 13], &mut b, &tag_a).unwrap();
            assert_eq!(b, plain);
            if len > 0 {
                let mut c = a.clone();
                c[len / 2] ^= 0x40;
                assert_eq!(
                    ours.open(&nonce, &aad[..len % 13], &mut c, &tag_a),
                    Err(AuthError)
                );
                assert_ne!(c, plain, "a forged frame is never decrypted");
            }
        }
    }

    #[test]
    fn key_parsing() {
        let good = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let k = PreSharedKey::from_hex(good).unwrap();
        assert_eq!(k.0[1], 0x11);
        assert_eq!(k.0[31], 0xff);
        assert_eq!(
            PreSharedKey::from_hex(&good[1..]),
            Err(KeyError::WrongLength { found: 63 })
        );
        assert_eq!(
            PreSharedKey::from_hex(&good.replace('7', "g")),
            Err(KeyError::InvalidHexDigit { position: 14 })
        );
        assert_eq!(
            PreSharedKey::from_hex(&"0".repeat(64)),
            Err(KeyError::AllZero)
        );
        assert_eq!(
            PreSharedKey::from_hex("ééééééééééééééééééééééééééééééééé"),
            Err(KeyError::WrongLength { found: 33 })
        );
        let cmd = std::format!("console=ttyS0 castor.key={good} castor.role=primary");
        assert_eq!(
            PreSharedKey::from_cmdline(&cmd, "castor.key"),
            Ok(k.clone())
        );
        assert_eq!(
            PreSharedKey::from_cmdline("quiet", "castor.key"),
            Err(KeyError::Missing)
        );
        assert_eq!(
            PreSharedKey::from_cmdline("castor.key=zz", "castor.key"),
            Err(KeyError::WrongLength { found: 2 })
        );
        assert_eq!(std::format!("{k:?}"), "PreSharedKey(<redacted>)");
    }

    #[test]
    fn directions_and_hosts_get_distinct_keys() {
        let k = PreSharedKey::from_bytes([9; 32]);
        let (p_tx, p_rx) = k.session_keys(Role::Primary, 1, 2, CHACHA);
        let (b_tx, b_rx) = k.session_keys(Role::Backup, 2, 1, CHACHA);
        let n = nonce(Direction::PrimaryToBackup, 1);
        let mut m = *b"message";
        let tag = p_tx.seal(&n, b"aad", &mut m).unwrap();
        let mut c = m;
        b_rx.open(&n, b"aad", &mut c, &tag).unwrap();
        assert_eq!(&c, b"message");
        // The reverse-direction keys must not verify it.
        assert!(b_tx.open(&n, b"aad", &mut m.clone(), &tag).is_err());
        assert!(p_rx.open(&n, b"aad", &mut m.clone(), &tag).is_err());
        // Neither must a different session's keys or the hello keys.
        let (_, other_rx) = k.session_keys(Role::Backup, 3, 1, CHACHA);
        assert!(other_rx.open(&n, b"aad", &mut m.clone(), &tag).is_err());
        assert!(
            k.hello_key(1, ChaCha20::apply_portable)
                .open(&n, b"aad", &mut m.clone(), &tag)
                .is_err()
        );
        assert_eq!(
            nonce(Direction::BackupToPrimary, 0x0102)[..],
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]
        );
    }
}
