// SPDX-License-Identifier: MIT OR Apache-2.0
//! Witness messages on the wire.
//!
//! ```text
//!  0  magic    "CWv1"
//!  4  kind     u8: 1 request, 2 reply
//!  5  zero     3 bytes
//!  8  sender   u64 BE: the sender's random id (a host's per boot, the witness's per start)
//! 16  counter  u64 BE: the sender's message counter, 1, 2, 3, ...
//! 24  body     sealed (ChaCha20-Poly1305; key: the pre-shared key and `sender`; nonce: kind,
//!              three zero bytes, counter; associated data: bytes 0..24)
//!       request (32): pair [16], nonce u64, want u8 (1 hold, 2 query), zero [7]
//!       reply   (48): pair [16], nonce u64 (the request's), holder u64 (0: none),
//!                     remaining_ms u32, lease_ms u32, granted u8, zero [7]
//!  ..  tag      16 bytes
//! ```
//!
//! Decoding is strict (lengths, magic, kinds, padding, `want`, `granted`) and never panics.

use crate::link::crypto::{Aead, TAG_LEN};
use crate::link::{Keystream, PreSharedKey};

const MAGIC: [u8; 4] = *b"CWv1";
const HEADER_LEN: usize = 24;
const REQUEST_BODY: usize = 32;
const REPLY_BODY: usize = 48;
const KIND_REQUEST: u8 = 1;
const KIND_REPLY: u8 = 2;
/// Length of a sealed request.
pub const REQUEST_LEN: usize = HEADER_LEN + REQUEST_BODY + TAG_LEN;
/// Length of a sealed reply.
pub const REPLY_LEN: usize = HEADER_LEN + REPLY_BODY + TAG_LEN;

/// What a host asks the witness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Grant (or renew) the lease to the sender if it is free, expired or the sender's.
    Hold,
    /// Only say who holds the lease.
    Query,
}

/// A host's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The pair (its guest's digest, first 16 bytes).
    pub pair: [u8; 16],
    /// A fresh random number the reply must echo.
    pub nonce: u64,
    /// What the host wants.
    pub want: Want,
}

/// The witness's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The pair.
    pub pair: [u8; 16],
    /// The request's nonce.
    pub nonce: u64,
    /// Who holds the lease now (0: nobody).
    pub holder: u64,
    /// How long the holder's lease has left, on the witness's clock (ms).
    pub remaining_ms: u32,
    /// The witness's lease length (ms).
    pub lease_ms: u32,
    /// Whether this request was granted the lease (renewed: `remaining_ms == lease_ms`).
    pub granted: bool,
}

/// A message that authenticated, with who sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sealed<T> {
    /// The sender's id.
    pub sender: u64,
    /// The sender's counter.
    pub counter: u64,
    /// The message.
    pub message: T,
}

/// Why a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Wrong length, magic, kind or padding.
    Malformed,
    /// The tag did not verify: another key, or forged or damaged.
    Forged,
}

fn nonce(kind: u8, counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[0] = kind;
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

fn seal(
    psk: &PreSharedKey,
    keystream: Keystream,
    kind: u8,
    sender: u64,
    counter: u64,
    body: &[u8],
) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec::Vec::with_capacity(HEADER_LEN + body.len() + TAG_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[kind, 0, 0, 0]);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&counter.to_be_bytes());
    out.extend_from_slice(body);
    let (header, body) = out.split_at_mut(HEADER_LEN);
    let key: Aead = psk.witness_key(sender, keystream);
    // Bodies are a few dozen bytes: far below the AEAD's limit, so sealing cannot fail.
    let tag = key
        .seal(&nonce(kind, counter), header, body)
        .unwrap_or_default();
    out.extend_from_slice(&tag);
    out
}

/// Checks and opens a message of `kind` with a body of `body_len` bytes.
fn open(
    psk: &PreSharedKey,
    keystream: Keystream,
    kind: u8,
    body_len: usize,
    bytes: &[u8],
) -> Result<(u64, u64, [u8; REPLY_BODY]), WireError> {
    if bytes.len() != HEADER_LEN + body_len + TAG_LEN
        || bytes[..4] != MAGIC
        || bytes[4..8] != [kind, 0, 0, 0]
    {
        return Err(WireError::Malformed);
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_be_bytes(w)
    };
    let (sender, counter) = (word(8), word(16));
    let mut body = [0u8; REPLY_BODY];
    body[..body_len].copy_from_slice(&bytes[HEADER_LEN..HEADER_LEN + body_len]);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&bytes[HEADER_LEN + body_len..]);
    psk.witness_key(sender, keystream)
        .open(
            &nonce(kind, counter),
            &bytes[..HEADER_LEN],
            &mut body[..body_len],
            &tag,
        )
        .map_err(|_| WireError::Forged)?;
    Ok((sender, counter, body))
}

/// The pair name at the start of a body, and whether the padding from `pad` on is zero.
fn pair_and_padding(b: &[u8], pad: usize) -> Result<[u8; 16], WireError> {
    if b[pad..].iter().any(|&x| x != 0) {
        return Err(WireError::Malformed);
    }
    let mut pair = [0u8; 16];
    pair.copy_from_slice(&b[..16]);
    Ok(pair)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

impl Request {
    /// Sealed by `sender` with its `counter`.
    #[must_use]
    pub fn seal(
        &self,
        psk: &PreSharedKey,
        keystream: Keystream,
        sender: u64,
        counter: u64,
    ) -> alloc::vec::Vec<u8> {
        let mut body = [0u8; REQUEST_BODY];
        body[..16].copy_from_slice(&self.pair);
        body[16..24].copy_from_slice(&self.nonce.to_le_bytes());
        body[24] = match self.want {
            Want::Hold => 1,
            Want::Query => 2,
        };
        seal(psk, keystream, KIND_REQUEST, sender, counter, &body)
    }

    /// Opens a sealed request.
    ///
    /// # Errors
    /// [`WireError`] for anything but an authentic, well-formed request.
    pub fn open(
        psk: &PreSharedKey,
        keystream: Keystream,
        bytes: &[u8],
    ) -> Result<Sealed<Request>, WireError> {
        let (sender, counter, b) = open(psk, keystream, KIND_REQUEST, REQUEST_BODY, bytes)?;
        let want = match b[24] {
            1 => Want::Hold,
            2 => Want::Query,
            _ => return Err(WireError::Malformed),
        };
        let pair = pair_and_padding(&b[..REQUEST_BODY], 25)?;
        Ok(Sealed {
            sender,
            counter,
            message: Request {
                pair,
                nonce: u64_at(&b, 16),
                want,
            },
        })
    }
}

impl Reply {
    /// Sealed by the witness `sender` with its `counter`.
    #[must_use]
    pub fn seal(
        &self,
        psk: &PreSharedKey,
        keystream: Keystream,
        sender: u64,
        counter: u64,
    ) -> alloc::vec::Vec<u8> {
        let mut body = [0u8; REPLY_BODY];
        body[..16].copy_from_slice(&self.pair);
        body[16..24].copy_from_slice(&self.nonce.to_le_bytes());
        body[24..32].copy_from_slice(&self.holder.to_le_bytes());
        body[32..36].copy_from_slice(&self.remaining_ms.to_le_bytes());
        body[36..40].copy_from_slice(&self.lease_ms.to_le_bytes());
        body[40] = u8::from(self.granted);
        seal(psk, keystream, KIND_REPLY, sender, counter, &body)
    }

    /// Opens a sealed reply.
    ///
    /// # Errors
    /// [`WireError`] for anything but an authentic, well-formed reply.
    pub fn open(
        psk: &PreSharedKey,
        keystream: Keystream,
        bytes: &[u8],
    ) -> Result<Sealed<Reply>, WireError> {
        let (sender, counter, b) = open(psk, keystream, KIND_REPLY, REPLY_BODY, bytes)?;
        let granted = match b[40] {
            0 => false,
            1 => true,
            _ => return Err(WireError::Malformed),
        };
        let pair = pair_and_padding(&b, 41)?;
        Ok(Sealed {
            sender,
            counter,
            message: Reply {
                pair,
                nonce: u64_at(&b, 16),
                holder: u64_at(&b, 24),
                remaining_ms: u32_at(&b, 32),
                lease_ms: u32_at(&b, 36),
                granted,
            },
        })
    }
}
