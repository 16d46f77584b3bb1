// SPDX-License-Identifier: MIT OR Apache-2.0
//! The peer link's UDP/IPv4 path: this host's address, the peer's, the next hop (the peer or
//! a router) resolved by ARP, and answers to ARP requests for our address (RFC 826). Frames
//! travel in UDP datagrams between port [`LINK_UDP_PORT`] on both hosts. With a witness
//! (`witness_ip=`), its messages travel between port [`WITNESS_UDP_PORT`] here and there, along
//! their own route.

use castor_ft::link::arp::{ArpCache, ArpConfig, ArpLookup, ArpPacket};
use castor_ft::link::encap::Encapsulation;
use castor_ft::link::ether::MacAddr;
use castor_ft::link::ipv4::Ipv4Addr;
use castor_ft::link::route::{Ipv4Route, LINK_UDP_PORT};
use castor_ft::link::udp::UdpEndpoints;
use castor_ft::witness::WITNESS_UDP_PORT;

/// ARP entries kept: the next hops (the peer's, the witness's) and whoever asks about us.
const ARP_ENTRIES: usize = 8;

/// The UDP/IPv4 path to the peer.
pub struct UdpPath {
    route: Ipv4Route,
    /// The route to the witness, if the pair has one.
    witness: Option<Ipv4Route>,
    mac: MacAddr,
    arp: ArpCache,
    /// The next hop's MAC as last reported (to log changes once).
    next_hop_mac: Option<MacAddr>,
    /// IPv4 identification of the last datagram.
    ident: u16,
}

impl UdpPath {
    /// The path along `route` from the NIC with MAC `mac`.
    pub fn new(route: Ipv4Route, mac: MacAddr) -> Self {
        Self {
            route,
            witness: None,
            mac,
            arp: ArpCache::new(mac, route.local.addr, ARP_ENTRIES, ArpConfig::default()),
            next_hop_mac: None,
            ident: 0,
        }
    }

    /// Sends witness messages along `route` (to its `peer`, the witness).
    pub fn set_witness(&mut self, route: Ipv4Route) {
        self.witness = Some(route);
    }

    /// Our address, for sorting received frames.
    pub fn local_ip(&self) -> Ipv4Addr {
        self.route.local.addr
    }

    /// Whether a datagram from `ip`:`port` to our port `to` is the peer's link frame.
    pub fn from_peer(&self, ip: Ipv4Addr, port: u16, to: u16) -> bool {
        ip == self.route.peer && port == LINK_UDP_PORT && to == LINK_UDP_PORT
    }

    /// Whether a datagram from `ip`:`port` to our port `to` is the witness's (its contents are
    /// authenticated by the witness client).
    pub fn from_witness(&self, ip: Ipv4Addr, port: u16, to: u16) -> bool {
        self.witness.is_some_and(|w| w.peer == ip)
            && port == WITNESS_UDP_PORT
            && to == WITNESS_UDP_PORT
    }

    /// Takes in a received ARP packet; returns the reply to send, if it asked for us.
    pub fn on_arp(&mut self, now: u64, packet: &ArpPacket) -> Option<ArpPacket> {
        self.arp.process(now, packet)
    }

    /// How to wrap frames for the peer now, or `None` while the next hop is unresolved (then
    /// [`UdpPath::poll_arp`] has requests to send).
    pub fn encapsulation(&mut self, now: u64) -> Option<Encapsulation> {
        let encap = self.along(now, self.route, LINK_UDP_PORT)?;
        if let Encapsulation::Udp { next_hop, .. } = encap
            && self.next_hop_mac != Some(next_hop)
        {
            self.next_hop_mac = Some(next_hop);
            log::info!("link: next hop {} is at {next_hop}", self.route.next_hop);
        }
        Some(encap)
    }

    /// How to wrap a witness message now: `None` without a witness route, or while its next
    /// hop is unresolved (then [`UdpPath::poll_arp`] has requests to send).
    pub fn witness_encapsulation(&mut self, now: u64) -> Option<Encapsulation> {
        let route = self.witness?;
        self.along(now, route, WITNESS_UDP_PORT)
    }

    /// Datagrams along `route` between `port` here and there, once its next hop is resolved.
    fn along(&mut self, now: u64, route: Ipv4Route, port: u16) -> Option<Encapsulation> {
        let ArpLookup::Resolved(next_hop) = self.arp.lookup(now, route.next_hop) else {
            return None;
        };
        Some(Encapsulation::Udp {
            src: self.mac,
            next_hop,
            endpoints: UdpEndpoints {
                src_ip: route.local.addr,
                dst_ip: route.peer,
                src_port: port,
                dst_port: port,
            },
        })
    }

    /// The IPv4 identification for the next datagram (a new one per datagram, RFC 791).
    pub fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// The next ARP request due, if any.
    pub fn poll_arp(&mut self, now: u64) -> Option<ArpPacket> {
        self.arp.poll_request(now)
    }

    /// The next hop's MAC once resolved.
    pub fn next_hop_mac(&self) -> Option<MacAddr> {
        self.next_hop_mac
    }
}
