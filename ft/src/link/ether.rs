//! Ethernet II (DIX) framing: MAC addresses and the 14-byte header (destination, source,
//! EtherType). The frame check sequence is the NIC's business and is never part of the input.

use core::fmt;

use super::bounds::{header_mut, split_header};
use super::error::{BuildError, ParseError};

/// Length of an Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Smallest Ethernet payload (frames are padded up to 60 bytes without FCS).
pub const MIN_PAYLOAD: usize = 46;
/// EtherType of IPv4 (RFC 894).
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP (RFC 826).
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of Castor peer-link frames: IEEE 802 "local experimental EtherType 1".
pub const ETHERTYPE_CASTOR_LINK: u16 = 0x88B5;

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: Self = Self([0xff; 6]);
    /// The all-zero address (used as "unknown" in ARP requests).
    pub const ZERO: Self = Self([0; 6]);

    /// Whether this is the broadcast address.
    #[must_use]
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit (least significant bit of the first octet) is set.
    #[must_use]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// Whether this address may be used as a source address (unicast and not all-zero).
    #[must_use]
    pub fn is_valid_unicast(&self) -> bool {
        !self.is_multicast() && *self != Self::ZERO
    }

    /// Parses six colon-separated pairs of hexadecimal digits, e.g. `52:54:00:12:34:56`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let mut mac = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut mac {
            let part = parts.next()?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            *byte = u8::from_str_radix(part, 16).ok()?;
        }
        parts.next().is_none().then_some(Self(mac))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// An Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetHeader {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// EtherType (always >= 0x0600).
    pub ethertype: u16,
}

impl EthernetHeader {
    /// Parses the header and returns it with the payload (which may include padding).
    ///
    /// # Errors
    /// [`ParseError::Truncated`] for short input, [`ParseError::NotEthernetII`] when the type
    /// field is an IEEE 802.3 length (< 0x0600).
    pub fn parse(frame: &[u8]) -> Result<(Self, &[u8]), ParseError> {
        let (h, payload) = split_header::<HEADER_LEN>(frame)?;
        let mut dst = [0; 6];
        let mut src = [0; 6];
        dst.copy_from_slice(&h[0..6]);
        src.copy_from_slice(&h[6..12]);
        let ethertype = u16::from_be_bytes([h[12], h[13]]);
        if ethertype < 0x0600 {
            return Err(ParseError::NotEthernetII(ethertype));
        }
        Ok((
            Self {
                dst: MacAddr(dst),
                src: MacAddr(src),
                ethertype,
            },
            payload,
        ))
    }

    /// Writes the header into `buf[..14]` and returns 14.
    ///
    /// # Errors
    /// [`BuildError::BufferTooSmall`] if `buf` is shorter than 14 bytes.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, BuildError> {
        let h = header_mut::<HEADER_LEN>(buf)?;
        h[0..6].copy_from_slice(&self.dst.0);
        h[6..12].copy_from_slice(&self.src.0);
        h[12..14].copy_from_slice(&self.ethertype.to_be_bytes());
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_known_bytes() {
        let h = EthernetHeader {
            dst: MacAddr::BROADCAST,
            src: MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            ethertype: ETHERTYPE_CASTOR_LINK,
        };
        let mut buf = [0u8; 20];
        assert_eq!(h.write(&mut buf), Ok(14));
        assert_eq!(
            &buf[..14],
            &[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x88, 0xb5
            ]
        );
        let (p, rest) = EthernetHeader::parse(&buf).unwrap();
        assert_eq!(p, h);
        assert_eq!(rest.len(), 6);
        assert_eq!(std::format!("{}", h.src), "52:54:00:12:34:56");
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            EthernetHeader::parse(&[0; 13]),
            Err(ParseError::Truncated { .. })
        ));
        let mut buf = [0u8; 14];
        buf[12] = 0x05;
        buf[13] = 0xdc;
        assert_eq!(
            EthernetHeader::parse(&buf),
            Err(ParseError::NotEthernetII(0x05dc))
        );
        assert!(
            EthernetHeader {
                dst: MacAddr::ZERO,
                src: MacAddr::ZERO,
                ethertype: 0x800
            }
            .write(&mut [0; 13])
            .is_err()
        );
        assert!(MacAddr([1, 0, 0, 0, 0, 0]).is_multicast());
        assert!(!MacAddr::ZERO.is_valid_unicast());
    }

    #[test]
    fn mac_addresses_parse_strictly() {
        assert_eq!(
            MacAddr::parse("52:54:00:Ab:cd:0f"),
            Some(MacAddr([0x52, 0x54, 0, 0xab, 0xcd, 0x0f]))
        );
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:0f:00",
            "5:54:00:ab:cd:0f",
            "52-54-00-ab-cd-0f",
            "52:54:00:ab:cd:g0",
            "+1:54:00:ab:cd:0f",
        ] {
            assert_eq!(MacAddr::parse(bad), None, "{bad}");
        }
    }
}
