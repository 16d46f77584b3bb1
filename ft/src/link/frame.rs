//! The peer-link wire format. All integers are big-endian.
//!
//! ```text
//! frame   = header(32) | ciphertext(body_len) | tag(16) [| ignored trailing bytes]
//! header  = magic "\xCA\x57" | wire version u8 (1) | kind u8 | body_len u16 | reserved u16 (0)
//!         | sender session id u64 | receiver session id u64 (0 = unknown) | counter u64
//! ```
//!
//! The header is the AEAD associated data, so every field in it is authenticated; the body is
//! encrypted. Trailing bytes (Ethernet padding, an FCS a NIC failed to strip) are ignored
//! because `body_len` delimits the frame. Bodies:
//!
//! ```text
//! HELLO, HELLO_ACK = role u8 (1 primary, 2 backup) | ciphers u8 (1 = offers AES-256-GCM)
//!                  | protocol version u16 | mtu u16 | recv window u32 | max message u32
//!                  | fp_len u8 | fingerprint
//! ACK, HEARTBEAT   = ack
//! DATA             = ack | seq u64 | fragment flags u8 (1 first, 2 last) | reserved u8 | payload
//! ack              = flags u8 (1 = ack requested) | sack words u8 (0..=4) | window u32
//!                  | cumulative ack u64 | sack bitmap u64 * words
//! ```
//!
//! SACK bit `i` of word `w` (most significant first) reports that sequence number
//! `cum + 2 + 64 w + i` was received.

use super::config::{Fingerprint, MAX_FINGERPRINT, Role};
use super::crypto::TAG_LEN;
use super::error::ParseError;

/// First two bytes of every peer-link frame.
pub const MAGIC: [u8; 2] = [0xCA, 0x57];
/// Version of the frame layout above.
pub const WIRE_VERSION: u8 = 1;
/// Protocol version announced in HELLOs (pairing fails if the peer's differs).
pub const PROTOCOL_VERSION: u16 = 2;
/// Length of the cleartext, authenticated header.
pub const HEADER_LEN: usize = 32;
/// Most SACK bitmap words in an ack section.
pub const MAX_SACK_WORDS: usize = 4;
/// Length of an ack section without SACK words.
pub const ACK_MIN_LEN: usize = 14;
/// Length of an ack section with all SACK words.
pub const ACK_MAX_LEN: usize = ACK_MIN_LEN + 8 * MAX_SACK_WORDS;
/// Length of the data sub-header (sequence number and fragment flags).
pub const DATA_HEADER_LEN: usize = 10;
/// Bytes of a DATA frame that are not payload.
pub const DATA_OVERHEAD: usize = HEADER_LEN + ACK_MAX_LEN + DATA_HEADER_LEN + TAG_LEN;
/// Bytes of a HELLO body without the fingerprint.
pub const HELLO_FIXED_LEN: usize = 15;
/// Shortest valid frame (an ACK without SACK): above Ethernet's 46-byte minimum payload, so
/// frames are never padded by the sender.
pub const MIN_FRAME: usize = HEADER_LEN + ACK_MIN_LEN + TAG_LEN;

/// Fragment flag: first fragment of a message.
pub const FRAG_FIRST: u8 = 1;
/// Fragment flag: last fragment of a message.
pub const FRAG_LAST: u8 = 2;
/// Ack flag: the sender of this frame asks for an immediate acknowledgement (window probe).
pub const ACK_REQUESTED: u8 = 1;

/// The kind of a frame (authenticated in the header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Pairing request, sealed under the sender's HELLO key.
    Hello = 1,
    /// Pairing reply (same body as `Hello`).
    HelloAck = 2,
    /// A message fragment plus acknowledgement, sealed under the session key.
    Data = 3,
    /// A pure acknowledgement / window update / window probe.
    Ack = 4,
    /// An acknowledgement sent because the link was idle.
    Heartbeat = 5,
}

impl Kind {
    fn from_u8(v: u8) -> Result<Self, ParseError> {
        Ok(match v {
            1 => Self::Hello,
            2 => Self::HelloAck,
            3 => Self::Data,
            4 => Self::Ack,
            5 => Self::Heartbeat,
            other => return Err(ParseError::UnknownKind(other)),
        })
    }

    /// Whether frames of this kind belong to the pairing handshake.
    #[must_use]
    pub fn is_hello(self) -> bool {
        matches!(self, Self::Hello | Self::HelloAck)
    }
}

/// The cleartext frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Frame kind.
    pub kind: Kind,
    /// Length of the ciphertext (without tag).
    pub body_len: u16,
    /// The sender's session id (never 0).
    pub sender: u64,
    /// The receiver's session id as known to the sender (0 = not yet known).
    pub receiver: u64,
    /// Per-key send counter, the nonce (never 0).
    pub counter: u64,
}

/// A parsed frame: header, the header bytes (AAD), ciphertext and tag.
#[derive(Clone, Copy, Debug)]
pub struct RawFrame<'a> {
    /// Parsed header.
    pub header: Header,
    /// The 32 header bytes, the associated data.
    pub aad: &'a [u8; HEADER_LEN],
    /// The encrypted body.
    pub body: &'a [u8],
    /// The Poly1305 tag.
    pub tag: &'a [u8; TAG_LEN],
}

impl Header {
    /// Splits and validates a frame's envelope (nothing is authenticated yet).
    ///
    /// # Errors
    /// [`ParseError`] for short frames, bad magic, unknown version or kind, non-zero reserved
    /// bits, a zero sender id or counter, or a `body_len` beyond the frame.
    pub fn parse(frame: &[u8]) -> Result<RawFrame<'_>, ParseError> {
        let (aad, rest) = frame
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(ParseError::Truncated {
                needed: HEADER_LEN + TAG_LEN,
                available: frame.len(),
            })?;
        if aad[0..2] != MAGIC {
            return Err(ParseError::BadMagic);
        }
        if aad[2] != WIRE_VERSION {
            return Err(ParseError::UnsupportedVersion(aad[2]));
        }
        let kind = Kind::from_u8(aad[3])?;
        let body_len = u16::from_be_bytes([aad[4], aad[5]]);
        if aad[6] != 0 || aad[7] != 0 {
            return Err(ParseError::ReservedNonZero);
        }
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&aad[o..o + 8]);
            u64::from_be_bytes(b)
        };
        let header = Header {
            kind,
            body_len,
            sender: u64_at(8),
            receiver: u64_at(16),
            counter: u64_at(24),
        };
        if header.sender == 0 || header.counter == 0 {
            return Err(ParseError::BadField);
        }
        let blen = usize::from(body_len);
        if rest.len() < blen + TAG_LEN {
            return Err(ParseError::Truncated {
                needed: HEADER_LEN + blen + TAG_LEN,
                available: frame.len(),
            });
        }
        let (body, rest) = rest.split_at(blen);
        let tag = rest.first_chunk::<TAG_LEN>().ok_or(ParseError::BadLength)?;
        Ok(RawFrame {
            header,
            aad,
            body,
            tag,
        })
    }

    /// Encodes the header.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..2].copy_from_slice(&MAGIC);
        h[2] = WIRE_VERSION;
        h[3] = self.kind as u8;
        h[4..6].copy_from_slice(&self.body_len.to_be_bytes());
        h[8..16].copy_from_slice(&self.sender.to_be_bytes());
        h[16..24].copy_from_slice(&self.receiver.to_be_bytes());
        h[24..32].copy_from_slice(&self.counter.to_be_bytes());
        h
    }
}

fn be_u16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

fn be_u32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn be_u64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_be_bytes(a)
}

/// Pairing parameters carried by HELLO and HELLO_ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HelloBody {
    pub(crate) role: Role,
    pub(crate) version: u16,
    pub(crate) mtu: u16,
    pub(crate) recv_window: u32,
    pub(crate) max_message: u32,
    pub(crate) fingerprint: Fingerprint,
    /// The sender supplies AES-256-GCM (bit 0 of the ciphers byte).
    pub(crate) aes_gcm: bool,
}

/// Bit of a HELLO's ciphers byte: the sender offers AES-256-GCM for session frames.
const OFFERS_AES_GCM: u8 = 0x01;

impl HelloBody {
    pub(crate) fn encoded_len(&self) -> usize {
        HELLO_FIXED_LEN + self.fingerprint.as_bytes().len()
    }

    /// Writes the body into `out` (at least `encoded_len` bytes) and returns its length.
    pub(crate) fn encode(&self, out: &mut [u8]) -> usize {
        let fp = self.fingerprint.as_bytes();
        out[0] = match self.role {
            Role::Primary => 1,
            Role::Backup => 2,
        };
        out[1] = if self.aes_gcm { OFFERS_AES_GCM } else { 0 };
        out[2..4].copy_from_slice(&self.version.to_be_bytes());
        out[4..6].copy_from_slice(&self.mtu.to_be_bytes());
        out[6..10].copy_from_slice(&self.recv_window.to_be_bytes());
        out[10..14].copy_from_slice(&self.max_message.to_be_bytes());
        // The fingerprint is at most 64 bytes.
        out[14] = fp.len() as u8;
        out[HELLO_FIXED_LEN..HELLO_FIXED_LEN + fp.len()].copy_from_slice(fp);
        self.encoded_len()
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, ParseError> {
        if b.len() < HELLO_FIXED_LEN {
            return Err(ParseError::Truncated {
                needed: HELLO_FIXED_LEN,
                available: b.len(),
            });
        }
        let role = match b[0] {
            1 => Role::Primary,
            2 => Role::Backup,
            other => return Err(ParseError::UnknownKind(other)),
        };
        if b[1] & !OFFERS_AES_GCM != 0 {
            return Err(ParseError::ReservedNonZero);
        }
        let fp_len = usize::from(b[14]);
        if fp_len > MAX_FINGERPRINT || b.len() != HELLO_FIXED_LEN + fp_len {
            return Err(ParseError::BadLength);
        }
        let fingerprint =
            Fingerprint::new(&b[HELLO_FIXED_LEN..]).map_err(|_| ParseError::BadLength)?;
        Ok(Self {
            role,
            version: be_u16(b, 2),
            mtu: be_u16(b, 4),
            recv_window: be_u32(b, 6),
            max_message: be_u32(b, 10),
            fingerprint,
            aes_gcm: b[1] & OFFERS_AES_GCM != 0,
        })
    }
}

/// Cumulative + selective acknowledgement and receive window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct AckInfo {
    pub(crate) flags: u8,
    /// Highest sequence number such that it and all below were received (0 = none).
    pub(crate) cum: u64,
    /// Frames beyond `cum` the peer may send.
    pub(crate) window: u32,
    pub(crate) sack_words: u8,
    pub(crate) sack: [u64; MAX_SACK_WORDS],
}

impl AckInfo {
    pub(crate) fn encoded_len(&self) -> usize {
        ACK_MIN_LEN + 8 * usize::from(self.sack_words)
    }

    pub(crate) fn encode(&self, out: &mut [u8]) -> usize {
        out[0] = self.flags;
        out[1] = self.sack_words;
        out[2..6].copy_from_slice(&self.window.to_be_bytes());
        out[6..14].copy_from_slice(&self.cum.to_be_bytes());
        for (i, w) in self.sack[..usize::from(self.sack_words)].iter().enumerate() {
            out[ACK_MIN_LEN + 8 * i..ACK_MIN_LEN + 8 * i + 8].copy_from_slice(&w.to_be_bytes());
        }
        self.encoded_len()
    }

    /// Decodes an ack section at the start of `b`; returns it and its length.
    pub(crate) fn decode(b: &[u8]) -> Result<(Self, usize), ParseError> {
        if b.len() < ACK_MIN_LEN {
            return Err(ParseError::Truncated {
                needed: ACK_MIN_LEN,
                available: b.len(),
            });
        }
        let flags = b[0];
        if flags & !ACK_REQUESTED != 0 {
            return Err(ParseError::ReservedNonZero);
        }
        let sack_words = b[1];
        if usize::from(sack_words) > MAX_SACK_WORDS {
            return Err(ParseError::BadField);
        }
        let mut a = Self {
            flags,
            sack_words,
            window: be_u32(b, 2),
            cum: be_u64(b, 6),
            sack: [0; 4],
        };
        let len = a.encoded_len();
        if b.len() < len {
            return Err(ParseError::Truncated {
                needed: len,
                available: b.len(),
            });
        }
        for i in 0..usize::from(sack_words) {
            a.sack[i] = be_u64(b, ACK_MIN_LEN + 8 * i);
        }
        Ok((a, len))
    }

    /// Iterates the sequence numbers reported by the SACK bitmap.
    pub(crate) fn sacked(&self) -> impl Iterator<Item = u64> + '_ {
        let base = self.cum.saturating_add(2);
        self.sack[..usize::from(self.sack_words)]
            .iter()
            .enumerate()
            .flat_map(move |(w, &bits)| {
                (0..64u64)
                    .filter(move |i| bits & (1u64 << (63 - i)) != 0)
                    .map(move |i| base.saturating_add(64 * w as u64 + i))
            })
    }
}

/// A decoded session body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionBody<'a> {
    pub(crate) ack: AckInfo,
    /// `(seq, fragment flags, payload)` for DATA frames.
    pub(crate) data: Option<(u64, u8, &'a [u8])>,
}

impl<'a> SessionBody<'a> {
    pub(crate) fn decode(kind: Kind, b: &'a [u8]) -> Result<Self, ParseError> {
        let (ack, n) = AckInfo::decode(b)?;
        let rest = &b[n..];
        match kind {
            Kind::Data => {
                if rest.len() < DATA_HEADER_LEN {
                    return Err(ParseError::Truncated {
                        needed: n + DATA_HEADER_LEN,
                        available: b.len(),
                    });
                }
                let seq = be_u64(rest, 0);
                let flags = rest[8];
                if flags & !(FRAG_FIRST | FRAG_LAST) != 0 || rest[9] != 0 {
                    return Err(ParseError::ReservedNonZero);
                }
                if seq == 0 {
                    return Err(ParseError::BadField);
                }
                Ok(Self {
                    ack,
                    data: Some((seq, flags, &rest[DATA_HEADER_LEN..])),
                })
            }
            Kind::Ack | Kind::Heartbeat if rest.is_empty() => Ok(Self { ack, data: None }),
            Kind::Ack | Kind::Heartbeat => Err(ParseError::BadLength),
            Kind::Hello | Kind::HelloAck => Err(ParseError::UnknownKind(kind as u8)),
        }
    }
}

/// Writes a data sub-header into `out[..10]`.
pub(crate) fn encode_data_header(out: &mut [u8], seq: u64, flags: u8) -> usize {
    out[0..8].copy_from_slice(&seq.to_be_bytes());
    out[8] = flags;
    out[9] = 0;
    DATA_HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn header_round_trip_and_trailing_bytes() {
        let h = Header {
            kind: Kind::Data,
            body_len: 3,
            sender: 7,
            receiver: 9,
            counter: 11,
        };
        let mut f = h.encode().to_vec();
        f.extend_from_slice(&[1, 2, 3]);
        f.extend_from_slice(&[0xAA; TAG_LEN]);
        f.extend_from_slice(&[0; 4]); // padding / FCS
        let raw = Header::parse(&f).unwrap();
        assert_eq!(raw.header, h);
        assert_eq!(raw.body, &[1, 2, 3]);
        assert_eq!(raw.tag, &[0xAA; TAG_LEN]);
        assert_eq!(&raw.aad[..2], &MAGIC);
        assert!(matches!(
            Header::parse(&f[..50]),
            Err(ParseError::Truncated { .. })
        ));
        let mut bad = f.clone();
        bad[3] = 9;
        assert_eq!(Header::parse(&bad).unwrap_err(), ParseError::UnknownKind(9));
        let mut bad = f.clone();
        bad[7] = 1;
        assert_eq!(
            Header::parse(&bad).unwrap_err(),
            ParseError::ReservedNonZero
        );
        let mut bad = f.clone();
        bad[2] = 2;
        assert_eq!(
            Header::parse(&bad).unwrap_err(),
            ParseError::UnsupportedVersion(2)
        );
        let mut bad = f;
        bad[31] = 0;
        assert_eq!(Header::parse(&bad).unwrap_err(), ParseError::BadField);
    }

    #[test]
    fn ack_and_sack_round_trip() {
        let mut a = AckInfo {
            flags: ACK_REQUESTED,
            cum: 100,
            window: 64,
            sack_words: 2,
            sack: [0; 4],
        };
        a.sack[0] = 1 << 63 | 1 << 61;
        a.sack[1] = 1;
        let mut buf = [0u8; ACK_MAX_LEN];
        let n = a.encode(&mut buf);
        assert_eq!(n, 30);
        let (b, m) = AckInfo::decode(&buf[..n]).unwrap();
        assert_eq!((b, m), (a, n));
        assert_eq!(b.sacked().collect::<Vec<_>>(), [102, 104, 102 + 127]);
        buf[1] = 5;
        assert_eq!(AckInfo::decode(&buf), Err(ParseError::BadField));
        buf[1] = 2;
        buf[0] = 2;
        assert_eq!(AckInfo::decode(&buf), Err(ParseError::ReservedNonZero));
    }

    #[test]
    fn hello_round_trip() {
        let h = HelloBody {
            role: Role::Backup,
            version: PROTOCOL_VERSION,
            mtu: 1500,
            recv_window: 512,
            max_message: 1 << 18,
            fingerprint: Fingerprint::new(b"vm-config-hash").unwrap(),
            aes_gcm: true,
        };
        let mut buf = [0u8; 100];
        let n = h.encode(&mut buf);
        assert_eq!(HelloBody::decode(&buf[..n]), Ok(h));
        let chacha_only = HelloBody {
            aes_gcm: false,
            ..h
        };
        let m = chacha_only.encode(&mut buf);
        assert_eq!(HelloBody::decode(&buf[..m]), Ok(chacha_only));
        // Cipher bits this version does not know are refused, not ignored.
        buf[1] = 0x02;
        assert_eq!(
            HelloBody::decode(&buf[..m]),
            Err(ParseError::ReservedNonZero)
        );
        h.encode(&mut buf);
        assert_eq!(HelloBody::decode(&buf[..n - 1]), Err(ParseError::BadLength));
        assert_eq!(HelloBody::decode(&buf[..n + 1]), Err(ParseError::BadLength));
        buf[0] = 3;
        assert_eq!(
            HelloBody::decode(&buf[..n]),
            Err(ParseError::UnknownKind(3))
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(DATA_OVERHEAD, 104);
        const { assert!(MIN_FRAME >= super::super::ether::MIN_PAYLOAD) };
        const { assert!(HEADER_LEN + HELLO_FIXED_LEN + TAG_LEN >= super::super::ether::MIN_PAYLOAD) };
    }
}
