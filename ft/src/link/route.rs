//! Where UDP/IPv4 peer-link frames go: this host's address and subnet, the peer's address, and
//! the router for a peer outside the subnet (RFC 1122 section 3.3.1.1: a destination on the
//! local subnet is reached directly, any other through a gateway).

use core::fmt;

use super::ipv4::Ipv4Addr;

/// UDP port of the peer link (the same on both hosts): 0x88B5, the peer link's EtherType.
pub const LINK_UDP_PORT: u16 = 0x88B5;

/// An address with its subnet prefix length, e.g. `10.0.0.1/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address.
    pub addr: Ipv4Addr,
    /// Subnet prefix length, 1..=32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// Parses `A.B.C.D/N` with `N` in 1..=32; the address must be a usable host address
    /// (not 0.0.0.0, not 255.255.255.255, not multicast).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = s.split_once('/')?;
        let addr = Ipv4Addr::parse(addr)?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        ((1..=32).contains(&prefix) && is_host(addr)).then_some(Self { addr, prefix })
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix))
    }

    /// Whether `other` is on this subnet.
    #[must_use]
    pub fn contains(&self, other: Ipv4Addr) -> bool {
        let m = self.mask();
        u32::from_be_bytes(self.addr.0) & m == u32::from_be_bytes(other.0) & m
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Whether `a` can be a host's own or a peer's address.
#[must_use]
pub fn is_host(a: Ipv4Addr) -> bool {
    a != Ipv4Addr::UNSPECIFIED && a != Ipv4Addr::BROADCAST && !(224..=239).contains(&a.0[0])
}

/// Why a route cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The peer's address is ours.
    PeerIsUs,
    /// The peer is outside our subnet and no gateway was given.
    NoGateway,
    /// The gateway is outside our subnet (it must be reachable directly).
    GatewayOffSubnet,
    /// An address is not a usable host address.
    NotAHost(Ipv4Addr),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerIsUs => write!(f, "the peer's address is this host's own"),
            Self::NoGateway => write!(
                f,
                "the peer is outside this host's subnet and no gateway= is given"
            ),
            Self::GatewayOffSubnet => write!(f, "the gateway is outside this host's subnet"),
            Self::NotAHost(a) => write!(f, "{a} is not a host address"),
        }
    }
}

/// The path to the peer over UDP/IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Route {
    /// This host.
    pub local: Ipv4Cidr,
    /// The peer.
    pub peer: Ipv4Addr,
    /// Who gets our frames on the wire: the peer itself, or the gateway.
    pub next_hop: Ipv4Addr,
}

impl Ipv4Route {
    /// The route from `local` to `peer`, through `gateway` if the peer is off our subnet.
    ///
    /// # Errors
    /// [`RouteError`] for a peer that is us, a non-host address, an off-subnet peer without a
    /// gateway, or a gateway that is not on our subnet.
    pub fn new(
        local: Ipv4Cidr,
        peer: Ipv4Addr,
        gateway: Option<Ipv4Addr>,
    ) -> Result<Self, RouteError> {
        for a in [Some(peer), gateway].into_iter().flatten() {
            if !is_host(a) {
                return Err(RouteError::NotAHost(a));
            }
        }
        if peer == local.addr {
            return Err(RouteError::PeerIsUs);
        }
        let next_hop = if local.contains(peer) {
            peer
        } else {
            let gw = gateway.ok_or(RouteError::NoGateway)?;
            if !local.contains(gw) || gw == local.addr {
                return Err(RouteError::GatewayOffSubnet);
            }
            gw
        };
        Ok(Self {
            local,
            peer,
            next_hop,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn cidr(s: &str) -> Ipv4Cidr {
        Ipv4Cidr::parse(s).unwrap()
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            cidr("10.0.0.1/24"),
            Ipv4Cidr {
                addr: Ipv4Addr::new(10, 0, 0, 1),
                prefix: 24
            }
        );
        assert_eq!(cidr("192.168.1.7/32").to_string(), "192.168.1.7/32");
        for bad in [
            "10.0.0.1",
            "10.0.0.1/",
            "10.0.0.1/0",
            "10.0.0.1/33",
            "10.0.0.1/+8",
            "10.0.0/8",
            "0.0.0.0/8",
            "255.255.255.255/8",
            "224.0.0.1/4",
            "10.0.0.1/024",
            "/24",
        ] {
            assert_eq!(Ipv4Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn subnet_membership() {
        let c = cidr("10.1.2.3/16");
        assert!(c.contains(Ipv4Addr::new(10, 1, 255, 255)));
        assert!(!c.contains(Ipv4Addr::new(10, 2, 0, 1)));
        assert!(cidr("10.1.2.3/32").contains(Ipv4Addr::new(10, 1, 2, 3)));
        assert!(!cidr("10.1.2.3/32").contains(Ipv4Addr::new(10, 1, 2, 4)));
        assert!(cidr("10.1.2.3/1").contains(Ipv4Addr::new(127, 0, 0, 1)));
    }

    #[test]
    fn next_hop_is_the_peer_on_the_subnet_and_the_gateway_beyond_it() {
        let local = cidr("10.0.0.1/24");
        let (near, far, gw) = (
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 9, 2),
            Ipv4Addr::new(10, 0, 0, 254),
        );
        assert_eq!(Ipv4Route::new(local, near, None).unwrap().next_hop, near);
        assert_eq!(
            Ipv4Route::new(local, near, Some(gw)).unwrap().next_hop,
            near
        );
        assert_eq!(Ipv4Route::new(local, far, Some(gw)).unwrap().next_hop, gw);
        assert_eq!(Ipv4Route::new(local, far, None), Err(RouteError::NoGateway));
        let off = Some(Ipv4Addr::new(10, 0, 1, 254));
        assert_eq!(
            Ipv4Route::new(local, far, off),
            Err(RouteError::GatewayOffSubnet)
        );
        assert_eq!(
            Ipv4Route::new(local, far, Some(local.addr)),
            Err(RouteError::GatewayOffSubnet)
        );
        assert_eq!(
            Ipv4Route::new(local, local.addr, None),
            Err(RouteError::PeerIsUs)
        );
        let bcast = Ipv4Addr::BROADCAST;
        assert_eq!(
            Ipv4Route::new(local, bcast, None),
            Err(RouteError::NotAHost(bcast))
        );
    }
}
