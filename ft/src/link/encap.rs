//! Carrying peer-link frames on the wire: directly in Ethernet II frames of EtherType
//! [`ETHERTYPE_CASTOR_LINK`] (same L2 segment), or as UDP/IPv4 payloads (a backup behind a
//! router). Outbound frames are built in place: [`Link::poll_transmit`](super::Link) writes
//! the peer-link frame at [`Encapsulation::payload_offset`] and [`Encapsulation::wrap`] adds
//! the headers in front of it. Inbound frames are sorted by [`classify`].

use super::arp::ArpPacket;
use super::bounds::ensure_room;
use super::error::{BuildError, ParseError};
use super::ether::{
    ETHERTYPE_ARP, ETHERTYPE_CASTOR_LINK, ETHERTYPE_IPV4, EthernetHeader, HEADER_LEN as ETH_LEN,
    MacAddr,
};
use super::ipv4::{Ipv4Addr, Ipv4Header, PROTO_UDP};
use super::udp::{IPV4_UDP_OVERHEAD, UdpEndpoints, UdpHeader, write_ipv4_udp};

/// How peer-link frames travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encapsulation {
    /// Raw Ethernet, EtherType 0x88B5.
    Ethernet {
        /// Our MAC.
        src: MacAddr,
        /// The peer's MAC.
        dst: MacAddr,
    },
    /// UDP over IPv4 over Ethernet; `next_hop` is the peer or the router (resolved by ARP).
    Udp {
        /// Our MAC.
        src: MacAddr,
        /// MAC of the next hop.
        next_hop: MacAddr,
        /// Addresses and ports.
        endpoints: UdpEndpoints,
    },
}

impl Encapsulation {
    /// Offset at which the peer-link frame goes in the transmit buffer.
    #[must_use]
    pub fn payload_offset(&self) -> usize {
        match self {
            Self::Ethernet { .. } => ETH_LEN,
            Self::Udp { .. } => ETH_LEN + IPV4_UDP_OVERHEAD,
        }
    }

    /// Writes the headers in front of the `payload_len`-byte peer-link frame already at
    /// `buf[payload_offset()..]` and returns the Ethernet frame length. `ident` is the IPv4
    /// identification (any counter).
    ///
    /// # Errors
    /// [`BuildError`] if `buf` is too small or the payload too large for UDP.
    pub fn wrap(
        &self,
        buf: &mut [u8],
        payload_len: usize,
        ident: u16,
    ) -> Result<usize, BuildError> {
        self.wrap_as(buf, payload_len, ident, ETHERTYPE_CASTOR_LINK)
    }

    /// [`wrap`](Self::wrap) for a payload that raw Ethernet carries under `ethertype` instead
    /// of the peer link's (a witness message: over UDP the ports tell it apart).
    ///
    /// # Errors
    /// As [`wrap`](Self::wrap).
    pub fn wrap_as(
        &self,
        buf: &mut [u8],
        payload_len: usize,
        ident: u16,
        ethertype: u16,
    ) -> Result<usize, BuildError> {
        match self {
            Self::Ethernet { src, dst } => {
                let total = ETH_LEN + payload_len;
                ensure_room(buf, total)?;
                EthernetHeader {
                    dst: *dst,
                    src: *src,
                    ethertype,
                }
                .write(buf)?;
                Ok(total)
            }
            Self::Udp {
                src,
                next_hop,
                endpoints,
            } => {
                ensure_room(buf, ETH_LEN)?;
                let n = write_ipv4_udp(&mut buf[ETH_LEN..], endpoints, ident, payload_len)?;
                EthernetHeader {
                    dst: *next_hop,
                    src: *src,
                    ethertype: ETHERTYPE_IPV4,
                }
                .write(buf)?;
                Ok(ETH_LEN + n)
            }
        }
    }
}

/// A received Ethernet frame, sorted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// A peer-link frame in an Ethernet frame of type 0x88B5.
    Link {
        /// Sender MAC.
        src: MacAddr,
        /// The peer-link frame (may carry trailing padding, which the link ignores).
        frame: &'a [u8],
    },
    /// A UDP datagram to our address (a peer-link frame or a witness reply, by `dst_port`).
    Udp {
        /// Sender MAC (the sender itself or the router).
        src_mac: MacAddr,
        /// Sender address.
        src_ip: Ipv4Addr,
        /// Sender port.
        src_port: u16,
        /// Our port it went to.
        dst_port: u16,
        /// The payload.
        data: &'a [u8],
    },
    /// An ARP packet.
    Arp(ArpPacket),
    /// Anything else (other EtherTypes, other ports, frames for other hosts).
    Other,
}

/// Sorts a received Ethernet frame for a host with MAC `our_mac` (and, for UDP transport,
/// IPv4 address `our_ip`). Frames not addressed to us (unicast to another MAC, or to another
/// IPv4 address) are `Other`.
///
/// # Errors
/// [`ParseError`] if the Ethernet, ARP, IPv4 or UDP layer is malformed.
pub fn classify(
    frame: &[u8],
    our_mac: MacAddr,
    our_ip: Option<Ipv4Addr>,
) -> Result<Received<'_>, ParseError> {
    let (eth, payload) = EthernetHeader::parse(frame)?;
    if eth.dst != our_mac && !eth.dst.is_broadcast() {
        return Ok(Received::Other);
    }
    match eth.ethertype {
        ETHERTYPE_CASTOR_LINK => Ok(Received::Link {
            src: eth.src,
            frame: payload,
        }),
        ETHERTYPE_ARP => Ok(Received::Arp(ArpPacket::parse(payload)?)),
        ETHERTYPE_IPV4 => {
            let Some(our_ip) = our_ip else {
                return Ok(Received::Other);
            };
            let (ip, dgram) = Ipv4Header::parse(payload)?;
            if ip.dst != our_ip || ip.protocol != PROTO_UDP {
                return Ok(Received::Other);
            }
            let (u, data) = UdpHeader::parse(&ip, dgram)?;
            Ok(Received::Udp {
                src_mac: eth.src,
                src_ip: ip.src,
                src_port: u.src_port,
                dst_port: u.dst_port,
                data,
            })
        }
        _ => Ok(Received::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    #[test]
    fn ethernet_round_trip() {
        let e = Encapsulation::Ethernet { src: A, dst: B };
        let mut buf = [0u8; 100];
        buf[14..74].fill(0x5a);
        let n = e.wrap(&mut buf, 60, 0).unwrap();
        assert_eq!(n, 74);
        match classify(&buf[..n], B, None).unwrap() {
            Received::Link { src, frame } => {
                assert_eq!(src, A);
                assert_eq!(frame, &[0x5a; 60][..]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            classify(&buf[..n], MacAddr([2, 0, 0, 0, 0, 9]), None),
            Ok(Received::Other)
        );
    }

    #[test]
    fn another_ethertype_on_raw_ethernet_is_not_a_link_frame() {
        let e = Encapsulation::Ethernet { src: A, dst: B };
        let mut buf = [0u8; 60];
        let n = e.wrap_as(&mut buf, 40, 0, 0x88B7).unwrap();
        assert_eq!((n, &buf[12..14]), (54, &[0x88, 0xB7][..]));
        assert_eq!(classify(&buf[..n], B, None), Ok(Received::Other));
    }

    #[test]
    fn udp_round_trip() {
        let ep = UdpEndpoints {
            src_ip: Ipv4Addr::new(10, 0, 0, 1),
            dst_ip: Ipv4Addr::new(10, 0, 1, 1),
            src_port: 4000,
            dst_port: 4001,
        };
        let e = Encapsulation::Udp {
            src: A,
            next_hop: B,
            endpoints: ep,
        };
        assert_eq!(e.payload_offset(), 42);
        let mut buf = [0u8; 200];
        buf[42..142].fill(7);
        let n = e.wrap(&mut buf, 100, 9).unwrap();
        assert_eq!(n, 142);
        match classify(&buf[..n], B, Some(ep.dst_ip)).unwrap() {
            Received::Udp {
                src_ip,
                src_port,
                dst_port,
                data,
                ..
            } => {
                assert_eq!((src_ip, src_port, dst_port), (ep.src_ip, 4000, 4001));
                assert_eq!(data, &[7; 100][..]);
            }
            other => panic!("{other:?}"),
        }
        // To another address, or without UDP transport: not ours.
        assert_eq!(classify(&buf[..n], B, Some(ep.src_ip)), Ok(Received::Other));
        assert_eq!(classify(&buf[..n], B, None), Ok(Received::Other));
        buf[30] ^= 1;
        assert!(classify(&buf[..n], B, Some(ep.dst_ip)).is_err());
        assert!(e.wrap(&mut [0u8; 50], 100, 0).is_err());
    }
}
