//! The peer link between the primary and backup Castor hosts: an authenticated, reliable,
//! ordered message transport over a lossy datagram service (a NIC that drops, reorders and
//! duplicates frames), written sans-IO so it can be tested on the host without hardware.
//!
//! Layers, bottom up:
//! - Framing: [`ether`] (Ethernet II), [`ipv4`] (RFC 791), [`udp`] (RFC 768), [`route`], [`checksum`]
//!   (RFC 1071), [`arp`] (RFC 826, with a resolution cache) and [`encap`] (wrapping and
//!   classifying frames for either transport).
//! - Security: [`crypto`] (pre-shared key, per-direction ChaCha20-Poly1305 keys, RFC 8439),
//!   [`chacha`] (the cipher, and the seam for a faster keystream such as the kernel's SSE2 one),
//!   [`aes_gcm`] (the seam for AES-256-GCM session keys, where both hosts supply it),
//!   a replay window over frame counters, and the pairing handshake
//!   ([`endpoint`]'s `pairing`).
//! - Transport: [`frame`] (the wire format), sliding send/receive windows with SACK, RTT
//!   estimation (RFC 6298), congestion and flow control, fragmentation, heartbeats.
//!
//! The entry point is [`Link`] (in [`endpoint`]); see its module docs for the calling
//! convention.

pub mod aes_gcm;
pub mod announce;
pub mod arp;
pub mod chacha;
pub mod checksum;
pub mod config;
pub mod crypto;
pub mod encap;
pub mod endpoint;
pub mod error;
pub mod ether;
pub mod frame;
pub mod ipv4;
pub mod route;
pub mod stats;
pub mod udp;

mod bounds;
mod congestion;
mod fragment;
mod heartbeat;
mod replay;
mod rtt;
mod window;

#[cfg(test)]
mod tests;

pub use aes_gcm::{AesGcm, AesGcmKey};
pub use chacha::{ChaCha20, Keystream};
pub use config::{Fingerprint, LinkConfig, Role};
pub use crypto::{PreSharedKey, RandomSource, tags_equal};
pub use endpoint::{Event, Inbound, Link, LinkState, MsgId};
pub use error::{
    BuildError, ConfigError, DropReason, KeyError, PairingError, ParseError, SendError,
};
pub use stats::LinkStats;
