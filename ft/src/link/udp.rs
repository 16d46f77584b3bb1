//! UDP over IPv4 (RFC 768): the header, the pseudo-header checksum (optional on IPv4, but
//! verified whenever present) and an in-place builder for IPv4+UDP datagrams.

use super::bounds::{ensure_room, split_header};
use super::checksum::Checksum;
use super::error::{BuildError, ParseError};
use super::ipv4::{self, Ipv4Addr, Ipv4Header, PROTO_UDP};

/// Length of a UDP header.
pub const HEADER_LEN: usize = 8;
/// Bytes of IPv4 and UDP headers in front of a UDP payload.
pub const IPV4_UDP_OVERHEAD: usize = ipv4::HEADER_LEN + HEADER_LEN;

/// A UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of header plus payload.
    pub length: u16,
    /// Checksum as received (0 = none).
    pub checksum: u16,
}

/// The UDP checksum over the IPv4 pseudo-header and `datagram` (header + payload, with the
/// checksum field as it is). RFC 768: a computed 0 is transmitted as 0xFFFF.
fn pseudo_checksum(src: Ipv4Addr, dst: Ipv4Addr, datagram: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add(&src.0);
    c.add(&dst.0);
    c.add_u16(u16::from(PROTO_UDP));
    // Callers guarantee datagram.len() <= u16::MAX.
    c.add_u16(u16::try_from(datagram.len()).unwrap_or(u16::MAX));
    c.add(datagram);
    c.finish()
}

impl UdpHeader {
    /// Parses the UDP datagram carried by `ip` (whose payload is `datagram`), verifies the
    /// checksum if it is non-zero, and returns the header and payload.
    ///
    /// # Errors
    /// [`ParseError::WrongProtocol`] if `ip` is not UDP, [`ParseError::Truncated`] /
    /// [`ParseError::BadLength`] when the UDP length is below 8 or differs from the IP payload
    /// length, [`ParseError::BadChecksum`] on a checksum mismatch.
    pub fn parse<'a>(ip: &Ipv4Header, datagram: &'a [u8]) -> Result<(Self, &'a [u8]), ParseError> {
        if ip.protocol != PROTO_UDP {
            return Err(ParseError::WrongProtocol(ip.protocol));
        }
        let (h, _) = split_header::<HEADER_LEN>(datagram)?;
        let hdr = Self {
            src_port: u16::from_be_bytes([h[0], h[1]]),
            dst_port: u16::from_be_bytes([h[2], h[3]]),
            length: u16::from_be_bytes([h[4], h[5]]),
            checksum: u16::from_be_bytes([h[6], h[7]]),
        };
        let len = usize::from(hdr.length);
        if len < HEADER_LEN || len != datagram.len() {
            return Err(ParseError::BadLength);
        }
        if hdr.checksum != 0 && pseudo_checksum(ip.src, ip.dst, datagram) != 0 {
            return Err(ParseError::BadChecksum);
        }
        Ok((hdr, &datagram[HEADER_LEN..]))
    }
}

/// Addresses and ports of one UDP/IPv4 flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpEndpoints {
    /// Source address.
    pub src_ip: Ipv4Addr,
    /// Destination address.
    pub dst_ip: Ipv4Addr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

/// Builds an IPv4+UDP datagram in place: the payload must already be at
/// `buf[28..28 + payload_len]`; this writes the two headers (with both checksums) in front of
/// it and returns the datagram length.
///
/// # Errors
/// [`BuildError::BufferTooSmall`] if `buf` cannot hold headers plus payload,
/// [`BuildError::PayloadTooLarge`] beyond 65507 payload bytes.
pub fn write_ipv4_udp(
    buf: &mut [u8],
    ep: &UdpEndpoints,
    ident: u16,
    payload_len: usize,
) -> Result<usize, BuildError> {
    let total = payload_len
        .checked_add(IPV4_UDP_OVERHEAD)
        .ok_or(BuildError::PayloadTooLarge)?;
    if total > usize::from(u16::MAX) {
        return Err(BuildError::PayloadTooLarge);
    }
    ensure_room(buf, total)?;
    let udp_len = total - ipv4::HEADER_LEN;
    let ip = Ipv4Header::new(ep.src_ip, ep.dst_ip, PROTO_UDP, udp_len, ident)?;
    ip.write(buf)?;
    let dgram = &mut buf[ipv4::HEADER_LEN..total];
    dgram[0..2].copy_from_slice(&ep.src_port.to_be_bytes());
    dgram[2..4].copy_from_slice(&ep.dst_port.to_be_bytes());
    // udp_len <= 65515 checked above.
    dgram[4..6].copy_from_slice(&u16::try_from(udp_len).unwrap_or(u16::MAX).to_be_bytes());
    dgram[6..8].copy_from_slice(&[0, 0]);
    let mut sum = pseudo_checksum(ep.src_ip, ep.dst_ip, dgram);
    if sum == 0 {
        sum = 0xffff;
    }
    dgram[6..8].copy_from_slice(&sum.to_be_bytes());
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> UdpEndpoints {
        UdpEndpoints {
            src_ip: Ipv4Addr::new(192, 168, 1, 10),
            dst_ip: Ipv4Addr::new(10, 1, 2, 3),
            src_port: 5555,
            dst_port: 7777,
        }
    }

    #[test]
    fn round_trip() {
        let mut buf = [0u8; 64];
        buf[28..33].copy_from_slice(b"hello");
        let n = write_ipv4_udp(&mut buf, &ep(), 42, 5).unwrap();
        assert_eq!(n, 33);
        let (ip, dgram) = Ipv4Header::parse(&buf[..n]).unwrap();
        assert_eq!(ip.ident, 42);
        let (u, payload) = UdpHeader::parse(&ip, dgram).unwrap();
        assert_eq!((u.src_port, u.dst_port, u.length), (5555, 7777, 13));
        assert_ne!(u.checksum, 0);
        assert_eq!(payload, b"hello");
    }

    #[test]
    fn known_answer() {
        // 192.168.1.10:5555 -> 10.1.2.3:7777, payload "hello". Pseudo-header sum:
        // c0a8 + 010a + 0a01 + 0203 + 0011 + 000d, header: 15b3 + 1e61 + 000d + 0,
        // data: 6865 + 6c6c + 6f00 = 0x2_45c6 -> fold 0x45c8 -> checksum !0x45c8 = 0xba37.
        let mut buf = [0u8; 33];
        buf[28..].copy_from_slice(b"hello");
        write_ipv4_udp(&mut buf, &ep(), 0, 5).unwrap();
        assert_eq!(u16::from_be_bytes([buf[26], buf[27]]), 0xba37);
    }

    #[test]
    fn checksum_optional_but_verified() {
        let mut buf = [0u8; 33];
        buf[28..].copy_from_slice(b"hello");
        write_ipv4_udp(&mut buf, &ep(), 0, 5).unwrap();
        let (ip, _) = Ipv4Header::parse(&buf).unwrap();
        let mut d = buf[20..].to_vec();
        d[8] ^= 0x01;
        assert_eq!(UdpHeader::parse(&ip, &d), Err(ParseError::BadChecksum));
        d[6] = 0;
        d[7] = 0;
        assert!(UdpHeader::parse(&ip, &d).is_ok());
        let mut short = buf[20..].to_vec();
        short[5] = 7;
        assert_eq!(UdpHeader::parse(&ip, &short), Err(ParseError::BadLength));
        let mut tcp = ip;
        tcp.protocol = 6;
        assert_eq!(
            UdpHeader::parse(&tcp, &buf[20..]),
            Err(ParseError::WrongProtocol(6))
        );
        assert!(write_ipv4_udp(&mut [0; 30], &ep(), 0, 5).is_err());
        assert!(write_ipv4_udp(&mut [0; 30], &ep(), 0, 65_508).is_err());
    }
}
