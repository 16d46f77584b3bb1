//! IPv4 headers (RFC 791) without options or fragmentation: Castor only needs to carry one UDP
//! datagram per packet to a backup behind a router, so anything fancier is rejected.

use core::fmt;

use super::bounds::{header_mut, split_header};
use super::checksum::internet_checksum;
use super::error::{BuildError, ParseError};

/// Length of an option-less IPv4 header (IHL = 5).
pub const HEADER_LEN: usize = 20;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// Default time-to-live for packets Castor sends.
pub const DEFAULT_TTL: u8 = 64;

/// An IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Ipv4Addr(pub [u8; 4]);

impl Ipv4Addr {
    /// 0.0.0.0.
    pub const UNSPECIFIED: Self = Self([0; 4]);
    /// 255.255.255.255.
    pub const BROADCAST: Self = Self([255; 4]);

    /// Builds an address from its four dotted-quad octets.
    #[must_use]
    pub const fn new(a: u8, b: u8, c: u8, d: u8) -> Self {
        Self([a, b, c, d])
    }

    /// Parses a dotted-quad string such as `10.0.2.15` (used for kernel command-line options).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let mut out = [0u8; 4];
        let mut parts = s.split('.');
        for o in &mut out {
            let p = parts.next()?;
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *o = p.parse().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some(Self(out))
    }
}

impl fmt::Display for Ipv4Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// An IPv4 header without options (RFC 791 section 3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Header {
    /// DSCP and ECN bits (the former type-of-service octet).
    pub tos: u8,
    /// Total length: header plus payload.
    pub total_len: u16,
    /// Identification field.
    pub ident: u16,
    /// The "don't fragment" flag.
    pub dont_fragment: bool,
    /// Time to live.
    pub ttl: u8,
    /// Payload protocol number.
    pub protocol: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
}

impl Ipv4Header {
    /// A header for a `payload_len`-byte payload with DF set and TTL 64.
    ///
    /// # Errors
    /// [`BuildError::PayloadTooLarge`] if the total exceeds 65535 bytes.
    pub fn new(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: u8,
        payload_len: usize,
        ident: u16,
    ) -> Result<Self, BuildError> {
        let total = payload_len
            .checked_add(HEADER_LEN)
            .ok_or(BuildError::PayloadTooLarge)?;
        let total_len = u16::try_from(total).map_err(|_| BuildError::PayloadTooLarge)?;
        Ok(Self {
            tos: 0,
            total_len,
            ident,
            dont_fragment: true,
            ttl: DEFAULT_TTL,
            protocol,
            src,
            dst,
        })
    }

    /// Parses and verifies a header and returns it with its payload, trimmed to `total_len`
    /// (dropping Ethernet padding).
    ///
    /// # Errors
    /// Rejects short input, versions other than 4, options, fragments, the reserved flag,
    /// inconsistent lengths and bad header checksums.
    pub fn parse(packet: &[u8]) -> Result<(Self, &[u8]), ParseError> {
        let (h, _) = split_header::<HEADER_LEN>(packet)?;
        let version = h[0] >> 4;
        if version != 4 {
            return Err(ParseError::BadIpVersion(version));
        }
        let ihl = h[0] & 0x0f;
        if ihl != 5 {
            return Err(ParseError::Ipv4Options(ihl));
        }
        let total_len = u16::from_be_bytes([h[2], h[3]]);
        let total = usize::from(total_len);
        if total < HEADER_LEN {
            return Err(ParseError::BadLength);
        }
        if total > packet.len() {
            return Err(ParseError::Truncated {
                needed: total,
                available: packet.len(),
            });
        }
        let flags_frag = u16::from_be_bytes([h[6], h[7]]);
        if flags_frag & 0x8000 != 0 {
            return Err(ParseError::Ipv4ReservedFlag);
        }
        if flags_frag & 0x2000 != 0 || flags_frag & 0x1fff != 0 {
            return Err(ParseError::Ipv4Fragment);
        }
        if internet_checksum(h) != 0 {
            return Err(ParseError::BadChecksum);
        }
        let hdr = Self {
            tos: h[1],
            total_len,
            ident: u16::from_be_bytes([h[4], h[5]]),
            dont_fragment: flags_frag & 0x4000 != 0,
            ttl: h[8],
            protocol: h[9],
            src: Ipv4Addr([h[12], h[13], h[14], h[15]]),
            dst: Ipv4Addr([h[16], h[17], h[18], h[19]]),
        };
        Ok((hdr, &packet[HEADER_LEN..total]))
    }

    /// Writes the header with a freshly computed checksum into `buf[..20]` and returns 20.
    ///
    /// # Errors
    /// [`BuildError::BufferTooSmall`] if `buf` is shorter than 20 bytes.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, BuildError> {
        let h = header_mut::<HEADER_LEN>(buf)?;
        h[0] = 0x45;
        h[1] = self.tos;
        h[2..4].copy_from_slice(&self.total_len.to_be_bytes());
        h[4..6].copy_from_slice(&self.ident.to_be_bytes());
        let flags: u16 = if self.dont_fragment { 0x4000 } else { 0 };
        h[6..8].copy_from_slice(&flags.to_be_bytes());
        h[8] = self.ttl;
        h[9] = self.protocol;
        h[10..12].copy_from_slice(&[0, 0]);
        h[12..16].copy_from_slice(&self.src.0);
        h[16..20].copy_from_slice(&self.dst.0);
        let sum = internet_checksum(h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widely used example header 45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00
    /// c7 (a UDP packet 192.168.0.1 -> 192.168.0.199) whose checksum is 0xb861.
    const EXAMPLE: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn known_answer_checksum() {
        let mut packet = [0u8; 0x73];
        packet[..20].copy_from_slice(&EXAMPLE);
        let (h, payload) = Ipv4Header::parse(&packet).unwrap();
        assert_eq!(h.src, Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(h.dst, Ipv4Addr::new(192, 168, 0, 199));
        assert_eq!(h.protocol, PROTO_UDP);
        assert!(h.dont_fragment);
        assert_eq!(payload.len(), 0x73 - 20);
        let mut out = [0u8; 20];
        h.write(&mut out).unwrap();
        assert_eq!(out, EXAMPLE);
    }

    #[test]
    fn rejects_bad_headers() {
        let mut p = [0u8; 0x73];
        p[..20].copy_from_slice(&EXAMPLE);
        let mut bad = p;
        bad[11] ^= 1;
        assert_eq!(Ipv4Header::parse(&bad), Err(ParseError::BadChecksum));
        let mut bad = p;
        bad[0] = 0x46;
        assert_eq!(Ipv4Header::parse(&bad), Err(ParseError::Ipv4Options(6)));
        let mut bad = p;
        bad[0] = 0x65;
        assert_eq!(Ipv4Header::parse(&bad), Err(ParseError::BadIpVersion(6)));
        let mut bad = p;
        bad[6] = 0x20;
        assert_eq!(Ipv4Header::parse(&bad), Err(ParseError::Ipv4Fragment));
        let mut bad = p;
        bad[7] = 0x01;
        assert_eq!(Ipv4Header::parse(&bad), Err(ParseError::Ipv4Fragment));
        let mut bad = p;
        bad[6] = 0x80;
        assert_eq!(Ipv4Header::parse(&bad), Err(ParseError::Ipv4ReservedFlag));
        assert!(matches!(
            Ipv4Header::parse(&p[..0x72]),
            Err(ParseError::Truncated { .. })
        ));
        let mut bad = p;
        bad[2] = 0;
        bad[3] = 19;
        assert_eq!(Ipv4Header::parse(&bad), Err(ParseError::BadLength));
    }

    #[test]
    fn trims_padding_and_parses_addresses() {
        let h = Ipv4Header::new(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            17,
            8,
            7,
        )
        .unwrap();
        let mut buf = [0u8; 46];
        h.write(&mut buf).unwrap();
        let (p, payload) = Ipv4Header::parse(&buf).unwrap();
        assert_eq!(p, h);
        assert_eq!(payload.len(), 8);
        assert_eq!(
            Ipv4Addr::parse("10.0.2.15"),
            Some(Ipv4Addr::new(10, 0, 2, 15))
        );
        for bad in [
            "10.0.2",
            "10.0.2.15.1",
            "256.0.0.1",
            "a.b.c.d",
            "1..2.3",
            "+1.2.3.4",
        ] {
            assert_eq!(Ipv4Addr::parse(bad), None, "{bad}");
        }
        assert!(Ipv4Header::new(h.src, h.dst, 17, 65_516, 0).is_err());
    }
}
