//! Link configuration: the host's role, the guest-configuration fingerprint compared during
//! pairing, and all sizes and timers (times are nanoseconds of caller-supplied time).

use core::fmt;

use super::aes_gcm::AesGcm;
use super::chacha::{ChaCha20, Keystream};
use super::error::ConfigError;
use super::frame;

/// Longest guest-configuration fingerprint carried in a HELLO.
pub const MAX_FINGERPRINT: usize = 64;
/// Largest peer-link frame (the largest UDP payload over IPv4).
pub const MAX_FRAME: usize = 65_507;
/// Smallest accepted MTU: room for the headers plus 64 payload bytes.
pub const MIN_MTU: usize = frame::DATA_OVERHEAD + 64;

/// Which side of the fault-tolerant pair this host is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Runs the guest and streams checkpoints.
    Primary,
    /// Receives checkpoints and takes over when the primary is lost.
    Backup,
}

impl Role {
    /// The other role.
    #[must_use]
    pub fn peer(self) -> Self {
        match self {
            Self::Primary => Self::Backup,
            Self::Backup => Self::Primary,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Primary => "primary",
            Self::Backup => "backup",
        })
    }
}

/// Opaque guest-configuration fingerprint (up to [`MAX_FINGERPRINT`] bytes, e.g. a BLAKE3 hash
/// of the VM configuration). Pairing fails unless both hosts present identical fingerprints.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    bytes: [u8; MAX_FINGERPRINT],
    len: u8,
}

impl Fingerprint {
    /// The empty fingerprint.
    pub const EMPTY: Self = Self {
        bytes: [0; MAX_FINGERPRINT],
        len: 0,
    };

    /// Wraps `bytes`.
    ///
    /// # Errors
    /// [`ConfigError::FingerprintTooLong`] beyond [`MAX_FINGERPRINT`] bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, ConfigError> {
        let mut out = Self::EMPTY;
        let dst = out
            .bytes
            .get_mut(..bytes.len())
            .ok_or(ConfigError::FingerprintTooLong)?;
        dst.copy_from_slice(bytes);
        out.len = u8::try_from(bytes.len()).map_err(|_| ConfigError::FingerprintTooLong)?;
        Ok(out)
    }

    /// The fingerprint bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Default for Fingerprint {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprint(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

const MS: u64 = 1_000_000;

/// Sizes and timers of a [`super::Link`]. Start from [`LinkConfig::default`] (Ethernet) or
/// [`LinkConfig::for_udp`] and adjust.
#[derive(Clone, Copy, Debug)]
pub struct LinkConfig {
    /// Largest peer-link frame produced by `poll_transmit` (header + ciphertext + tag): the
    /// Ethernet payload budget (1500) or the UDP payload budget (1472).
    pub mtu: usize,
    /// Largest message accepted by `send` and reassembled on receive.
    pub max_message_bytes: usize,
    /// Bytes of messages held for (re)transmission before `send` reports `WouldBlock`.
    pub send_buffer_bytes: usize,
    /// Messages held (unacknowledged or with an unpolled `Acked` event) before `WouldBlock`.
    pub max_send_messages: usize,
    /// Receive buffer in fragments (frames); advertised to the peer as its flow-control window.
    pub recv_window_packets: u32,
    /// Upper bound on data frames in flight, whatever the peer advertises.
    pub max_in_flight_packets: u32,
    /// Congestion window (frames) at start and after recovery; NewReno-style AIMD above it.
    pub initial_cwnd: u32,
    /// Whether to run congestion control (slow start, halving on loss); otherwise only the
    /// peer window and `max_in_flight_packets` limit sending.
    pub congestion_control: bool,
    /// Minimum spacing between transmitted frames (0 = no pacing), e.g. 1 ms for a Bochs peer.
    pub pacing_interval: u64,
    /// Retransmission timeout before any RTT sample (RFC 6298 says 1 s; LANs want less).
    pub rto_initial: u64,
    /// Lower RTO bound.
    pub rto_min: u64,
    /// Upper RTO bound (also caps exponential backoff).
    pub rto_max: u64,
    /// Longest delay of a pure acknowledgement (every second in-order frame is acked at once).
    pub ack_delay: u64,
    /// A heartbeat goes out when nothing was sent for this long.
    pub heartbeat_interval: u64,
    /// The peer is declared lost after this long without an authenticated frame. Must exceed
    /// QEMU e1000's ~1 s receive blackout after RCTL writes.
    pub peer_timeout: u64,
    /// Interval between HELLOs while pairing.
    pub hello_interval: u64,
    /// HELLOs failing authentication (with none succeeding) before pairing fails.
    pub max_bad_hellos: u32,
    /// Pairing fails with `Timeout` after this long (`None` = keep trying).
    pub pairing_timeout: Option<u64>,
    /// Guest-configuration fingerprint that must match the peer's.
    pub fingerprint: Fingerprint,
    /// How the AEAD makes its ChaCha20 keystream: [`ChaCha20::apply_portable`] unless a
    /// faster one that gives the same bytes is supplied (the kernel's, on SSE2).
    pub keystream: Keystream,
    /// AES-256-GCM, where this host supplies one (session frames use it if the peer offers it
    /// too; [`super::aes_gcm`]).
    pub aes_gcm: Option<AesGcm>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            mtu: 1500,
            max_message_bytes: 256 * 1024,
            send_buffer_bytes: 4 * 1024 * 1024,
            max_send_messages: 4096,
            recv_window_packets: 512,
            max_in_flight_packets: 512,
            initial_cwnd: 16,
            congestion_control: true,
            pacing_interval: 0,
            rto_initial: 200 * MS,
            rto_min: 5 * MS,
            rto_max: 1000 * MS,
            ack_delay: MS / 2,
            heartbeat_interval: 100 * MS,
            peer_timeout: 3000 * MS,
            hello_interval: 200 * MS,
            max_bad_hellos: 5,
            pairing_timeout: None,
            fingerprint: Fingerprint::EMPTY,
            keystream: ChaCha20::apply_portable,
            aes_gcm: None,
        }
    }
}

impl LinkConfig {
    /// Defaults for UDP/IPv4 transport over a 1500-byte Ethernet MTU (1472-byte payloads).
    #[must_use]
    pub fn for_udp() -> Self {
        Self {
            mtu: 1500 - crate::link::udp::IPV4_UDP_OVERHEAD,
            ..Self::default()
        }
    }

    /// Payload bytes carried by one data frame at this MTU.
    #[must_use]
    pub fn fragment_payload(&self) -> usize {
        self.mtu.saturating_sub(frame::DATA_OVERHEAD)
    }

    /// Checks ranges and consistency.
    ///
    /// # Errors
    /// The [`ConfigError`] describing the first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(MIN_MTU..=MAX_FRAME).contains(&self.mtu) {
            return Err(ConfigError::BadMtu);
        }
        if !(4..=65_536).contains(&self.recv_window_packets)
            || !(1..=65_536).contains(&self.max_in_flight_packets)
            || self.initial_cwnd == 0
            || self.max_send_messages == 0
            || self.send_buffer_bytes == 0
        {
            return Err(ConfigError::BadWindow);
        }
        let window_bytes =
            (self.recv_window_packets as usize).saturating_mul(self.fragment_payload());
        if self.max_message_bytes > window_bytes || self.max_message_bytes > self.send_buffer_bytes
        {
            return Err(ConfigError::MessageTooLargeForWindow);
        }
        if self.rto_min == 0
            || self.rto_min > self.rto_max
            || !(self.rto_min..=self.rto_max).contains(&self.rto_initial)
            || self.heartbeat_interval == 0
            || self.hello_interval == 0
            || self.peer_timeout <= self.heartbeat_interval
            || self.max_bad_hellos == 0
        {
            return Err(ConfigError::BadTiming);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        assert_eq!(LinkConfig::default().validate(), Ok(()));
        assert_eq!(LinkConfig::for_udp().validate(), Ok(()));
        assert_eq!(LinkConfig::for_udp().mtu, 1472);
        assert!(LinkConfig::default().fragment_payload() > 1300);
    }

    #[test]
    fn rejects_inconsistent() {
        let d = LinkConfig::default();
        assert_eq!(
            LinkConfig { mtu: 40, ..d }.validate(),
            Err(ConfigError::BadMtu)
        );
        assert_eq!(
            LinkConfig { mtu: 70_000, ..d }.validate(),
            Err(ConfigError::BadMtu)
        );
        assert_eq!(
            LinkConfig {
                recv_window_packets: 1,
                ..d
            }
            .validate(),
            Err(ConfigError::BadWindow)
        );
        assert_eq!(
            LinkConfig {
                max_message_bytes: 10 << 20,
                ..d
            }
            .validate(),
            Err(ConfigError::MessageTooLargeForWindow)
        );
        assert_eq!(
            LinkConfig { rto_min: 0, ..d }.validate(),
            Err(ConfigError::BadTiming)
        );
        assert_eq!(
            LinkConfig {
                peer_timeout: d.heartbeat_interval,
                ..d
            }
            .validate(),
            Err(ConfigError::BadTiming)
        );
    }

    #[test]
    fn fingerprint_bounds() {
        assert_eq!(Fingerprint::new(&[7; 64]).unwrap().as_bytes(), &[7; 64]);
        assert_eq!(
            Fingerprint::new(&[7; 65]),
            Err(ConfigError::FingerprintTooLong)
        );
        assert_eq!(Fingerprint::new(b"").unwrap(), Fingerprint::EMPTY);
    }
}
