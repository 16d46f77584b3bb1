// SPDX-License-Identifier: MIT OR Apache-2.0
//! The peer link's UDP/IPv4 path: this host's address, the peer's, the next hop (the peer or
//! a router) resolved by ARP, and answers to ARP requests for our address (RFC 826). Frames
//! travel in UDP datagrams between port [`LINK_UDP_PORT`] on both hosts.

use castor_ft::link::arp::{ArpCache, ArpConfig, ArpLookup, ArpPacket};
use castor_ft::link::encap::Encapsulation;
use castor_ft::link::ether::MacAddr;
use castor_ft::link::ipv4::Ipv4Addr;
use castor_ft::link::route::{Ipv4Route, LINK_UDP_PORT};
use castor_ft::link::udp::UdpEndpoints;

/// ARP entries kept: the next hop and whoever asks about us.
const ARP_ENTRIES: usize = 8;

/// The UDP/IPv4 path to the peer.
pub struct UdpPath {
    route: Ipv4Route,
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
            mac,
            arp: ArpCache::new(mac, route.local.addr, ARP_ENTRIES, ArpConfig::default()),
            next_hop_mac: None,
            ident: 0,
        }
    }

    /// Our address and port, for sorting received frames.
    pub fn local_endpoint(&self) -> (Ipv4Addr, u16) {
        (self.route.local.addr, LINK_UDP_PORT)
    }

    /// Whether a datagram from `ip`:`port` is the peer's (anything else is dropped).
    pub fn from_peer(&self, ip: Ipv4Addr, port: u16) -> bool {
        ip == self.route.peer && port == LINK_UDP_PORT
    }

    /// Takes in a received ARP packet; returns the reply to send, if it asked for us.
    pub fn on_arp(&mut self, now: u64, packet: &ArpPacket) -> Option<ArpPacket> {
        self.arp.process(now, packet)
    }

    /// How to wrap frames for the peer now, or `None` while the next hop is unresolved (then
    /// [`UdpPath::poll_arp`] has requests to send).
    pub fn encapsulation(&mut self, now: u64) -> Option<Encapsulation> {
        let ArpLookup::Resolved(next_hop) = self.arp.lookup(now, self.route.next_hop) else {
            return None;
        };
        if self.next_hop_mac != Some(next_hop) {
            self.next_hop_mac = Some(next_hop);
            log::info!("link: next hop {} is at {next_hop}", self.route.next_hop);
        }
        Some(Encapsulation::Udp {
            src: self.mac,
            next_hop,
            endpoints: UdpEndpoints {
                src_ip: self.route.local.addr,
                dst_ip: self.route.peer,
                src_port: LINK_UDP_PORT,
                dst_port: LINK_UDP_PORT,
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
