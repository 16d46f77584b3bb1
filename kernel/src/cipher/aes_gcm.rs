// SPDX-License-Identifier: MIT OR Apache-2.0
//! AES-256-GCM (NIST SP 800-38D) on AES-NI and PCLMULQDQ, for the peer link's session frames
//! (`castor_ft::link::AesGcm`, supplied by `link::aes_gcm`).
//!
//! - Key expansion with AESKEYGENASSIST (FIPS 197, 5.2; Intel's AES-NI white paper, 5.2).
//! - CTR: counter blocks `nonce || be32(i)` from `i = 2` encrypted with AESENC/AESENCLAST and
//!   XORed into the data (SP 800-38D, 7.1), four blocks side by side; the counter stays in a
//!   register byte-reversed, where PADDD increments it (`inc32`) and PSHUFB turns it back.
//!   `E(K, nonce || be32(1))` masks the tag.
//! - GHASH (SP 800-38D, 6.4) as POLYVAL (RFC 8452, appendix A): each block byte-reversed with
//!   PSHUFB (SSSE3), multiplied by a key power in four carry-less products, the products of
//!   four blocks summed and reduced once by Montgomery reduction (two more carry-less
//!   products by `x^127 + x^126 + x^121 + 1`), the key `mulX_POLYVAL(ByteReverse(H))` and its
//!   powers kept in registers (Gueron's aggregated POLYVAL, as in AES-GCM-SIV).
//!
//! Tests check every length around a block against the RustCrypto `aes-gcm` crate, and the
//! kernel checks a known answer on its CPU before offering the cipher (`self_check`).
//!
//! # Safety (every function here)
//! The CPU must have SSSE3, AES-NI and PCLMULQDQ, SSE must be enabled, and the XMM registers
//! the caller's to clobber (in the kernel: inside `vector::lend`).

use castor_ft::link::{AesGcmKey, tags_equal};

use super::xmm_asm;

/// Bytes of an AES block.
const BLOCK: usize = 16;

/// A 16-byte constant, aligned for SSE memory operands.
#[repr(C, align(16))]
struct Block([u8; BLOCK]);
/// PSHUFB mask that reverses a block's bytes.
static REVERSE: Block = Block([15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
/// One in the low doubleword: PADDD of it increments a byte-reversed counter block.
static ONE: Block = Block([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
/// POLYVAL's reduction constant, `x^127 + x^126 + x^121 + 1` (RFC 8452): its high quadword
/// multiplies in the Montgomery reduction.
static POLY: Block = Block([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xC2]);

/// The second half of an AES-256 key-schedule step for the even round key in XMM1, from
/// AESKEYGENASSIST's output in XMM2 (XMM4 scratch): the word rotated-and-substituted is
/// broadcast and XORed into the running prefix XOR of the previous key's words.
macro_rules! even_key {
    () => {
        concat!(
            "pshufd xmm2, xmm2, 0xff\n",
            "movdqa xmm4, xmm1\n pslldq xmm4, 4\n pxor xmm1, xmm4\n",
            "pslldq xmm4, 4\n pxor xmm1, xmm4\n pslldq xmm4, 4\n pxor xmm1, xmm4\n",
            "pxor xmm1, xmm2\n",
        )
    };
}

/// The odd round key in XMM3 from the even one just made in XMM1 (substitution only, no
/// rotation or round constant; XMM2, XMM4 scratch).
macro_rules! odd_key {
    () => {
        concat!(
            "aeskeygenassist xmm4, xmm1, 0\n pshufd xmm2, xmm4, 0xaa\n",
            "movdqa xmm4, xmm3\n pslldq xmm4, 4\n pxor xmm3, xmm4\n",
            "pslldq xmm4, 4\n pxor xmm3, xmm4\n pslldq xmm4, 4\n pxor xmm3, xmm4\n",
            "pxor xmm3, xmm2\n",
        )
    };
}

/// One schedule step with round constant `$rcon`, storing round keys `2i` and `2i + 1` at
/// byte offsets `$even` and `$odd`.
macro_rules! key_pair {
    ($rcon:literal, $even:literal, $odd:literal) => {
        concat!(
            "aeskeygenassist xmm2, xmm3, ",
            $rcon,
            "\n",
            even_key!(),
            "movdqa [{rk} + ",
            $even,
            "], xmm1\n",
            odd_key!(),
            "movdqa [{rk} + ",
            $odd,
            "], xmm3\n",
        )
    };
}

/// AES-256 on XMM0 with the round keys at `{rk}`.
macro_rules! encrypt_xmm0 {
    () => {
        concat!(
            "pxor xmm0, [{rk}]\n",
            "aesenc xmm0, [{rk} + 16]\n aesenc xmm0, [{rk} + 32]\n",
            "aesenc xmm0, [{rk} + 48]\n aesenc xmm0, [{rk} + 64]\n",
            "aesenc xmm0, [{rk} + 80]\n aesenc xmm0, [{rk} + 96]\n",
            "aesenc xmm0, [{rk} + 112]\n aesenc xmm0, [{rk} + 128]\n",
            "aesenc xmm0, [{rk} + 144]\n aesenc xmm0, [{rk} + 160]\n",
            "aesenc xmm0, [{rk} + 176]\n aesenc xmm0, [{rk} + 192]\n",
            "aesenc xmm0, [{rk} + 208]\n aesenclast xmm0, [{rk} + 224]\n",
        )
    };
}

/// The three partial carry-less products of XMM2 · `$k` (64-bit halves; XMM2 consumed):
/// low into XMM3, high into XMM6, middle (the two cross terms) into XMM4.
macro_rules! products {
    ($k:literal) => {
        concat!(
            "movdqa xmm3, xmm2\n pclmulqdq xmm3, ",
            $k,
            ", 0x00\n",
            "movdqa xmm6, xmm2\n pclmulqdq xmm6, ",
            $k,
            ", 0x11\n",
            "movdqa xmm4, xmm2\n pclmulqdq xmm4, ",
            $k,
            ", 0x10\n",
            "pclmulqdq xmm2, ",
            $k,
            ", 0x01\n pxor xmm4, xmm2\n",
        )
    };
}

/// [`products`] XORed into XMM3, XMM6 and XMM4 (XMM5 scratch): the products of several
/// blocks add up before one reduction.
macro_rules! add_products {
    ($k:literal) => {
        concat!(
            "movdqa xmm5, xmm2\n pclmulqdq xmm5, ",
            $k,
            ", 0x00\n pxor xmm3, xmm5\n",
            "movdqa xmm5, xmm2\n pclmulqdq xmm5, ",
            $k,
            ", 0x11\n pxor xmm6, xmm5\n",
            "movdqa xmm5, xmm2\n pclmulqdq xmm5, ",
            $k,
            ", 0x10\n pxor xmm4, xmm5\n",
            "pclmulqdq xmm2, ",
            $k,
            ", 0x01\n pxor xmm4, xmm2\n",
        )
    };
}

/// XMM0 = the 256-bit product in XMM3 (low), XMM4 (middle), XMM6 (high) times `x^-128`
/// modulo POLYVAL's polynomial (XMM2, XMM5 scratch; [`POLY`] in XMM10): the middle folded
/// in, then the low half folded into the high one by two Montgomery steps, each a carry-less
/// product of the low quadword by the constant's high quadword XORed into the halves swapped
/// (RFC 8452; Gueron, Lindell, "GCM-SIV", 2015).
macro_rules! reduce {
    () => {
        concat!(
            "movdqa xmm5, xmm4\n pslldq xmm5, 8\n psrldq xmm4, 8\n",
            "pxor xmm3, xmm5\n pxor xmm6, xmm4\n",
            "movdqa xmm2, xmm3\n pclmulqdq xmm2, xmm10, 0x10\n",
            "pshufd xmm3, xmm3, 0x4e\n pxor xmm3, xmm2\n",
            "movdqa xmm2, xmm3\n pclmulqdq xmm2, xmm10, 0x10\n",
            "pshufd xmm3, xmm3, 0x4e\n pxor xmm3, xmm2\n",
            "pxor xmm6, xmm3\n movdqa xmm0, xmm6\n",
        )
    };
}

/// XMM2 = the block at `[{d} + $at]`, byte-reversed (mask in XMM15).
macro_rules! load_block {
    ($at:literal) => {
        concat!("movdqu xmm2, [{d} + ", $at, "]\n pshufb xmm2, xmm15\n")
    };
}

/// One AES round with the round key at byte offset `$at` on the four blocks in XMM0-XMM3.
macro_rules! round4 {
    ($op:literal, $at:literal) => {
        concat!(
            $op,
            " xmm0, [{rk} + ",
            $at,
            "]\n",
            $op,
            " xmm1, [{rk} + ",
            $at,
            "]\n",
            $op,
            " xmm2, [{rk} + ",
            $at,
            "]\n",
            $op,
            " xmm3, [{rk} + ",
            $at,
            "]\n",
        )
    };
}

/// The next counter block into `$x`, byte order restored, and the counter in XMM14
/// incremented (XMM15 the byte-reversing mask, XMM13 [`ONE`]).
macro_rules! next_counter {
    ($x:literal) => {
        concat!(
            "movdqa ",
            $x,
            ", xmm14\n pshufb ",
            $x,
            ", xmm15\n paddd xmm14, xmm13\n",
        )
    };
}

/// XORs the keystream block in `$x` into the data at `[{d} + $at]` (XMM4 scratch).
macro_rules! xor_into {
    ($x:literal, $at:literal) => {
        concat!(
            "movdqu xmm4, [{d} + ",
            $at,
            "]\n pxor ",
            $x,
            ", xmm4\n movdqu [{d} + ",
            $at,
            "], ",
            $x,
            "\n",
        )
    };
}

/// Expands `key` and derives `H`.
///
/// # Safety
/// See the [module docs](self).
pub unsafe fn expand(key: &[u8; 32]) -> AesGcmKey {
    let mut k = AesGcmKey::zeroed();
    let rk = k.round_keys.as_mut_ptr();
    // SAFETY: reads 32 bytes at `key`; writes the 15 round keys of `k`, 16-byte aligned
    // (`AesGcmKey` is `align(16)`); the caller lets us use SSE, AES-NI and the XMM registers.
    unsafe {
        xmm_asm!(
            "movdqu xmm1, [{key}]",
            "movdqu xmm3, [{key} + 16]",
            "movdqa [{rk}], xmm1",
            "movdqa [{rk} + 16], xmm3",
            key_pair!("0x01", "32", "48"),
            key_pair!("0x02", "64", "80"),
            key_pair!("0x04", "96", "112"),
            key_pair!("0x08", "128", "144"),
            key_pair!("0x10", "160", "176"),
            key_pair!("0x20", "192", "208"),
            "aeskeygenassist xmm2, xmm3, 0x40",
            even_key!(),
            "movdqa [{rk} + 224], xmm1",
            key = in(reg) key.as_ptr(),
            rk = in(reg) rk,
        );
    }
    // H = E(K, 0^128): the zero nonce with counter 0.
    let mut h = [0u8; BLOCK];
    // SAFETY: the caller's promise; `k` holds its round keys now.
    unsafe { ctr_xor(&k, &[0; 12], 0, &mut h) };
    h.reverse();
    let key = mul_x(h);
    k.h_powers[0] = key;
    for i in 1..k.h_powers.len() {
        // SAFETY: the caller's promise.
        k.h_powers[i] = unsafe { gf_mul(&k.h_powers[i - 1], &key) };
    }
    k
}

/// `mulX_POLYVAL`: `v · x` modulo POLYVAL's polynomial (RFC 8452, appendix A), on a
/// little-endian field element: the POLYVAL key whose products, byte-reversed, are GHASH's.
fn mul_x(v: [u8; BLOCK]) -> [u8; BLOCK] {
    let v = u128::from_le_bytes(v);
    let carry = if v >> 127 != 0 {
        u128::from_le_bytes(POLY.0)
    } else {
        0
    };
    ((v << 1) ^ carry).to_le_bytes()
}

/// POLYVAL's product `a · b · x^-128` (RFC 8452), both and the result little-endian field
/// elements (byte-reversed GHASH blocks).
///
/// # Safety
/// See the [module docs](self).
unsafe fn gf_mul(a: &[u8; BLOCK], b: &[u8; BLOCK]) -> [u8; BLOCK] {
    let mut out = [0u8; BLOCK];
    // SAFETY: reads 16 bytes at `a`, `b` and the aligned constant, writes 16 at `out`; the
    // caller's promise covers the instructions and registers.
    unsafe {
        xmm_asm!(
            "movdqa xmm10, [{poly}]",
            "movdqu xmm2, [{a}]",
            "movdqu xmm1, [{b}]",
            products!("xmm1"),
            reduce!(),
            "movdqu [{out}], xmm0",
            poly = in(reg) POLY.0.as_ptr(),
            a = in(reg) a.as_ptr(),
            b = in(reg) b.as_ptr(),
            out = in(reg) out.as_mut_ptr(),
        );
    }
    out
}

/// XORs the CTR keystream into `data`: the encryptions of `nonce || be32(counter)`,
/// `nonce || be32(counter + 1)`, ...
///
/// # Safety
/// See the [module docs](self).
unsafe fn ctr_xor(key: &AesGcmKey, nonce: &[u8; 12], mut counter: u32, mut data: &mut [u8]) {
    let mut block = [0u8; BLOCK];
    block[..12].copy_from_slice(nonce);
    let fours = data.len() / (4 * BLOCK);
    if fours > 0 {
        block[12..].copy_from_slice(&counter.to_be_bytes());
        // SAFETY: reads the round keys (aligned), the counter block and the aligned constants;
        // reads and writes `4 * fours` blocks of `data`; the caller's promise covers the
        // instructions and registers.
        unsafe {
            xmm_asm!(
                "movdqa xmm15, [{mask}]",
                "movdqa xmm13, [{one}]",
                "movdqu xmm14, [{b}]",
                "pshufb xmm14, xmm15",
                "2:",
                next_counter!("xmm0"),
                next_counter!("xmm1"),
                next_counter!("xmm2"),
                next_counter!("xmm3"),
                "movdqa xmm4, [{rk}]",
                "pxor xmm0, xmm4\n pxor xmm1, xmm4\n pxor xmm2, xmm4\n pxor xmm3, xmm4",
                round4!("aesenc", "16"),
                round4!("aesenc", "32"),
                round4!("aesenc", "48"),
                round4!("aesenc", "64"),
                round4!("aesenc", "80"),
                round4!("aesenc", "96"),
                round4!("aesenc", "112"),
                round4!("aesenc", "128"),
                round4!("aesenc", "144"),
                round4!("aesenc", "160"),
                round4!("aesenc", "176"),
                round4!("aesenc", "192"),
                round4!("aesenc", "208"),
                round4!("aesenclast", "224"),
                xor_into!("xmm0", "0"),
                xor_into!("xmm1", "16"),
                xor_into!("xmm2", "32"),
                xor_into!("xmm3", "48"),
                "add {d}, 64",
                "dec {n}",
                "jnz 2b",
                mask = in(reg) REVERSE.0.as_ptr(),
                one = in(reg) ONE.0.as_ptr(),
                rk = in(reg) key.round_keys.as_ptr(),
                b = in(reg) block.as_ptr(),
                d = inout(reg) data.as_mut_ptr() => _,
                n = inout(reg) fours => _,
            );
        }
        counter = counter.wrapping_add(4 * fours as u32);
        data = &mut data[4 * fours * BLOCK..];
    }
    let whole = data.len() / BLOCK;
    if whole > 0 {
        // SAFETY: reads the round keys (aligned) and the 16-byte `block`, rewriting its last
        // four bytes; reads and writes `whole` blocks of `data`; the caller's promise covers
        // the instructions and registers.
        unsafe {
            xmm_asm!(
                "2:",
                "mov {t:e}, {ctr:e}",
                "bswap {t:e}",
                "mov [{b} + 12], {t:e}",
                "movdqu xmm0, [{b}]",
                encrypt_xmm0!(),
                "movdqu xmm1, [{d}]",
                "pxor xmm1, xmm0",
                "movdqu [{d}], xmm1",
                "add {d}, 16",
                "inc {ctr:e}",
                "dec {n}",
                "jnz 2b",
                rk = in(reg) key.round_keys.as_ptr(),
                b = in(reg) block.as_mut_ptr(),
                d = inout(reg) data.as_mut_ptr() => _,
                n = inout(reg) whole => _,
                ctr = inout(reg) counter,
                t = out(reg) _,
            );
        }
    }
    let rest = &mut data[whole * BLOCK..];
    if !rest.is_empty() {
        let mut last = [0u8; BLOCK];
        last[..rest.len()].copy_from_slice(rest);
        // SAFETY: as above, on one whole block.
        unsafe { ctr_xor(key, nonce, counter, &mut last) };
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// Folds `data` into the GHASH accumulator `acc` (byte-reversed: POLYVAL's), zero-padding its
/// last block. Four blocks at a time share one reduction:
/// `((((acc + B1)H + B2)H + B3)H + B4)H = (acc + B1)H^4 + B2 H^3 + B3 H^2 + B4 H`, with the
/// powers as POLYVAL keys (each product carries one `x^-128`, the one reduction supplies it).
///
/// # Safety
/// See the [module docs](self).
unsafe fn ghash(key: &AesGcmKey, acc: &mut [u8; BLOCK], data: &[u8]) {
    let fours = data.len() / (4 * BLOCK);
    if fours > 0 {
        // SAFETY: reads `4 * fours` blocks of `data`, the mask and the powers of `H`; reads
        // and writes `acc`; the caller's promise covers the instructions and registers.
        unsafe {
            xmm_asm!(
                "movdqa xmm15, [{mask}]",
                "movdqa xmm10, [{poly}]",
                "movdqu xmm14, [{h}]",
                "movdqu xmm13, [{h} + 16]",
                "movdqu xmm12, [{h} + 32]",
                "movdqu xmm11, [{h} + 48]",
                "movdqu xmm0, [{acc}]",
                "2:",
                load_block!("0"),
                "pxor xmm2, xmm0",
                products!("xmm11"),
                load_block!("16"),
                add_products!("xmm12"),
                load_block!("32"),
                add_products!("xmm13"),
                load_block!("48"),
                add_products!("xmm14"),
                reduce!(),
                "add {d}, 64",
                "dec {n}",
                "jnz 2b",
                "movdqu [{acc}], xmm0",
                mask = in(reg) REVERSE.0.as_ptr(),
                poly = in(reg) POLY.0.as_ptr(),
                acc = in(reg) acc.as_mut_ptr(),
                h = in(reg) key.h_powers.as_ptr(),
                d = inout(reg) data.as_ptr() => _,
                n = inout(reg) fours => _,
            );
        }
    }
    for block in data[fours * 4 * BLOCK..].chunks(BLOCK) {
        let mut b = [0u8; BLOCK];
        b[..block.len()].copy_from_slice(block);
        b.reverse();
        for (a, x) in acc.iter_mut().zip(b) {
            *a ^= x;
        }
        // SAFETY: the caller's promise.
        *acc = unsafe { gf_mul(acc, &key.h_powers[0]) };
    }
}

/// The tag over `aad` and the ciphertext `text` (SP 800-38D, 7.1 steps 5-6).
///
/// # Safety
/// See the [module docs](self).
unsafe fn tag(key: &AesGcmKey, nonce: &[u8; 12], aad: &[u8], text: &[u8]) -> [u8; BLOCK] {
    let mut acc = [0u8; BLOCK];
    let mut lengths = [0u8; BLOCK];
    lengths[..8].copy_from_slice(&(aad.len() as u64 * 8).to_be_bytes());
    lengths[8..].copy_from_slice(&(text.len() as u64 * 8).to_be_bytes());
    // SAFETY: the caller's promise.
    unsafe {
        ghash(key, &mut acc, aad);
        ghash(key, &mut acc, text);
        ghash(key, &mut acc, &lengths);
    }
    acc.reverse();
    // SAFETY: the caller's promise.
    unsafe { ctr_xor(key, nonce, 1, &mut acc) };
    acc
}

/// Encrypts `body` in place and returns the tag over `aad` and the ciphertext. `body` must
/// be shorter than 2^32 - 2 blocks (the link's frames are a few KiB).
///
/// # Safety
/// See the [module docs](self).
pub unsafe fn seal(key: &AesGcmKey, nonce: &[u8; 12], aad: &[u8], body: &mut [u8]) -> [u8; 16] {
    // SAFETY: the caller's promise.
    unsafe {
        ctr_xor(key, nonce, 2, body);
        tag(key, nonce, aad, body)
    }
}

/// Checks `expected` over `aad` and the ciphertext `body` and, only if it matches, decrypts
/// `body` in place; returns whether it matched.
///
/// # Safety
/// See the [module docs](self).
pub unsafe fn open(
    key: &AesGcmKey,
    nonce: &[u8; 12],
    aad: &[u8],
    body: &mut [u8],
    expected: &[u8; 16],
) -> bool {
    // SAFETY: the caller's promise.
    if !tags_equal(&unsafe { tag(key, nonce, aad, body) }, expected) {
        return false;
    }
    // SAFETY: the caller's promise.
    unsafe { ctr_xor(key, nonce, 2, body) };
    true
}

/// Whether this CPU computes the known answer of SP 800-38D's AES-256 test case 16 (GCM
/// specification, appendix B), as it must before links offer the cipher.
///
/// # Safety
/// See the [module docs](self).
pub unsafe fn self_check() -> bool {
    const KEY: [u8; 32] = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
    const NONCE: [u8; 12] = hex("cafebabefacedbaddecaf888");
    const AAD: [u8; 20] = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    const PLAIN: [u8; 60] = hex(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e\
         2449a6b525b16aedf5aa0de657ba637b39",
    );
    const CIPHER: [u8; 60] = hex(
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b\
         1056828838c5f61e6393ba7a0abcc9f662",
    );
    const TAG: [u8; 16] = hex("76fc6ece0f4e1768cddf8853bb2d551b");
    let mut text = PLAIN;
    // SAFETY: the caller's promise.
    let k = unsafe { expand(&KEY) };
    // SAFETY: as above.
    let tag = unsafe { seal(&k, &NONCE, &AAD, &mut text) };
    tag == TAG && text == CIPHER
}

/// `N` bytes from `2N` hexadecimal digits (known answers, evaluated at compile time).
const fn hex<const N: usize>(s: &str) -> [u8; N] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a hexadecimal digit"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 2 * N, "wrong length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = digit(b[2 * i]) << 4 | digit(b[2 * i + 1]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests;
