//! Typed errors of the peer link: wire parsing, frame building, key parsing, configuration,
//! pairing and sending, plus the reason an inbound frame was dropped.
//!
//! Every parser in [`crate::link`] returns one of these instead of panicking, whatever bytes it
//! is given.

use core::fmt;

use super::config::Role;

/// Why a received byte string is not a valid header or message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The input ends before the structure does.
    Truncated {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes that were available.
        available: usize,
    },
    /// A length field disagrees with the surrounding data or with the protocol's limits.
    BadLength,
    /// A checksum (IPv4 header or UDP) does not verify.
    BadChecksum,
    /// An Ethernet frame carries an IEEE 802.3 length instead of an EtherType (< 0x0600).
    NotEthernetII(u16),
    /// IPv4: the version nibble is not 4.
    BadIpVersion(u8),
    /// IPv4: the header has options (IHL != 5); Castor accepts none.
    Ipv4Options(u8),
    /// IPv4: the datagram is a fragment (MF set or non-zero offset); Castor does not reassemble.
    Ipv4Fragment,
    /// IPv4: the reserved flag bit is set.
    Ipv4ReservedFlag,
    /// IPv4: the payload is not the expected transport protocol.
    WrongProtocol(u8),
    /// ARP: hardware or protocol type/size is not Ethernet/IPv4.
    ArpUnsupported,
    /// ARP: the opcode is neither request (1) nor reply (2).
    ArpBadOpcode(u16),
    /// Peer-link frame: the magic number is wrong.
    BadMagic,
    /// Peer-link frame: unknown wire-format version.
    UnsupportedVersion(u8),
    /// Peer-link frame or message: unknown kind/role code.
    UnknownKind(u8),
    /// A reserved field is not zero.
    ReservedNonZero,
    /// A field holds a value outside its legal range.
    BadField,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(f, "truncated: need {needed} bytes, have {available}")
            }
            Self::BadLength => f.write_str("inconsistent length field"),
            Self::BadChecksum => f.write_str("bad checksum"),
            Self::NotEthernetII(t) => write!(f, "802.3 length field {t:#06x}, not Ethernet II"),
            Self::BadIpVersion(v) => write!(f, "IP version {v}, expected 4"),
            Self::Ipv4Options(ihl) => write!(f, "IPv4 options not supported (IHL {ihl})"),
            Self::Ipv4Fragment => f.write_str("IPv4 fragments not supported"),
            Self::Ipv4ReservedFlag => f.write_str("IPv4 reserved flag set"),
            Self::WrongProtocol(p) => write!(f, "unexpected IP protocol {p}"),
            Self::ArpUnsupported => f.write_str("ARP for something other than IPv4 over Ethernet"),
            Self::ArpBadOpcode(op) => write!(f, "ARP opcode {op}"),
            Self::BadMagic => f.write_str("bad peer-link magic"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported peer-link wire version {v}"),
            Self::UnknownKind(k) => write!(f, "unknown kind code {k}"),
            Self::ReservedNonZero => f.write_str("reserved field not zero"),
            Self::BadField => f.write_str("field out of range"),
        }
    }
}

impl core::error::Error for ParseError {}

/// Why a header or frame could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The output buffer is too short.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The payload does not fit the length field of the protocol (e.g. > 65515 bytes in IPv4).
    PayloadTooLarge,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => {
                write!(f, "buffer too small: need {needed} bytes, have {available}")
            }
            Self::PayloadTooLarge => f.write_str("payload too large for the protocol"),
        }
    }
}

impl core::error::Error for BuildError {}

/// Why a pre-shared key could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The kernel command line has no such parameter.
    Missing,
    /// The hex string is not 64 characters long.
    WrongLength {
        /// Characters found.
        found: usize,
    },
    /// A character is not a hexadecimal digit.
    InvalidHexDigit {
        /// Zero-based character position.
        position: usize,
    },
    /// The key is all zeros (almost certainly a placeholder, never a real key).
    AllZero,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("peer-link key parameter missing"),
            Self::WrongLength { found } => {
                write!(f, "peer-link key must be 64 hex characters, found {found}")
            }
            Self::InvalidHexDigit { position } => {
                write!(
                    f,
                    "peer-link key has a non-hex character at position {position}"
                )
            }
            Self::AllZero => f.write_str("peer-link key is all zeros"),
        }
    }
}

impl core::error::Error for KeyError {}

/// Why a [`super::LinkConfig`] or the arguments of [`super::Link::new`] were rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The MTU leaves no room for payload, or exceeds the largest frame (65507 bytes).
    BadMtu,
    /// A window or buffer size is zero or too large.
    BadWindow,
    /// `max_message_bytes` does not fit in the receive window (reassembly could never finish)
    /// or in the send buffer.
    MessageTooLargeForWindow,
    /// A time interval is zero or the bounds are inconsistent (e.g. `rto_min > rto_max`).
    BadTiming,
    /// The guest-config fingerprint is longer than [`super::config::MAX_FINGERPRINT`] bytes.
    FingerprintTooLong,
    /// The random source returned zero repeatedly.
    BadRandomness,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadMtu => "MTU out of range",
            Self::BadWindow => "window or buffer size out of range",
            Self::MessageTooLargeForWindow => "max message size exceeds window or buffer",
            Self::BadTiming => "inconsistent timer configuration",
            Self::FingerprintTooLong => "config fingerprint too long",
            Self::BadRandomness => "random source returned only zeros",
        })
    }
}

impl core::error::Error for ConfigError {}

/// Why pairing with the peer failed. Pairing failures are final for a [`super::Link`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairingError {
    /// This many HELLOs failed authentication and none succeeded: the peer uses a different
    /// pre-shared key (or someone is forging HELLOs).
    WrongKeyOrForged {
        /// Bad HELLOs counted.
        bad_hellos: u32,
    },
    /// The peer claims the same role as we do (two primaries or two backups).
    RoleConflict(Role),
    /// The peer speaks another protocol version.
    VersionMismatch {
        /// Our version.
        ours: u16,
        /// The peer's version.
        theirs: u16,
    },
    /// The guest-configuration fingerprints differ.
    ConfigMismatch,
    /// No pairing within the configured pairing timeout.
    Timeout,
}

impl fmt::Display for PairingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongKeyOrForged { bad_hellos } => write!(
                f,
                "{bad_hellos} HELLOs failed authentication: wrong pre-shared key or forgery"
            ),
            Self::RoleConflict(r) => write!(f, "both hosts claim role {r}"),
            Self::VersionMismatch { ours, theirs } => {
                write!(f, "protocol version mismatch: ours {ours}, peer {theirs}")
            }
            Self::ConfigMismatch => f.write_str("guest configuration fingerprints differ"),
            Self::Timeout => f.write_str("pairing timed out"),
        }
    }
}

impl core::error::Error for PairingError {}

/// Why [`super::Link::send`] refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The link is not paired yet.
    NotPaired,
    /// The link failed pairing or lost its peer; it will never send again.
    Closed,
    /// The message exceeds the maximum message size (ours or the peer's).
    TooLarge {
        /// Message length.
        len: usize,
        /// Largest accepted length.
        max: usize,
    },
    /// Send buffer or message slots are full: retry after `Acked` events have been polled.
    WouldBlock,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPaired => f.write_str("link not paired"),
            Self::Closed => f.write_str("link closed"),
            Self::TooLarge { len, max } => write!(f, "message of {len} bytes exceeds {max}"),
            Self::WouldBlock => f.write_str("send buffer full"),
        }
    }
}

impl core::error::Error for SendError {}

/// Why [`super::Link::on_frame`] dropped a frame (every drop is also counted in
/// [`super::LinkStats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Not a well-formed peer-link frame (or a well-authenticated frame with a malformed body).
    Malformed(ParseError),
    /// Authentication failed.
    Forged,
    /// The counter was already seen or is older than the replay window.
    Replayed,
    /// Addressed to or from a session other than the current one (old incarnation, other host).
    StaleSession,
    /// The link is closed (pairing failed or peer lost) or not in a state to use the frame.
    Closed,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed: {e}"),
            Self::Forged => f.write_str("authentication failed"),
            Self::Replayed => f.write_str("replayed"),
            Self::StaleSession => f.write_str("stale session"),
            Self::Closed => f.write_str("link closed"),
        }
    }
}
