// SPDX-License-Identifier: MIT OR Apache-2.0
//! A peer link over one NIC, in raw Ethernet (EtherType 0x88B5) or, with a [`UdpPath`], in
//! UDP/IPv4 datagrams (ARP resolves the next hop). Raw Ethernet frames go to the broadcast
//! address until the first authenticated frame from the peer teaches its MAC (bridges and
//! Bochs' bxhub learn from broadcasts; Bochs only accepts its own MAC and broadcast). If
//! unicast then proves not to reach the peer, frames are flooded to broadcast instead.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use castor_ft::link::arp::ArpPacket;
use castor_ft::link::encap::{Encapsulation, Received, classify};
use castor_ft::link::ether::MacAddr;
use castor_ft::link::route::Ipv4Route;
use castor_ft::link::{ConfigError, Event, Inbound, Link, LinkConfig, PreSharedKey, Role};
use castor_ft::witness::WITNESS_ETHERTYPE;

use super::random::HardwareRandom;
use super::udp::UdpPath;
use crate::arch::x86_64::{instr, time};
use crate::drivers::net::{MAX_FRAME, Nic};

/// One end of the peer link, on a NIC.
pub struct PeerLink {
    nic: Box<dyn Nic>,
    link: Link,
    role: Role,
    key: PreSharedKey,
    config: LinkConfig,
    mac: MacAddr,
    peer_mac: Option<MacAddr>,
    /// The UDP/IPv4 path, if the link runs over UDP rather than raw Ethernet.
    udp: Option<UdpPath>,
    /// Frames go to broadcast although the peer's MAC is known: unicast did not get through.
    flood: bool,
    /// Authenticated frames the peer sent to broadcast after we knew its MAC (it floods).
    peer_broadcasts: u32,
    tx: Vec<u8>,
    rx: Vec<u8>,
    /// Received frames dropped on purpose, per 100 (testing only).
    loss_percent: u8,
    loss_state: u64,
    /// Frames dropped on purpose so far.
    pub injected_drops: u64,
    /// Raw benchmark frames received (EtherType [`RAW_ETHERTYPE`]), and when the first and
    /// the last arrived.
    pub raw: RawCount,
    /// Witness messages received (EtherType [`WITNESS_ETHERTYPE`]), not yet taken.
    witness_rx: VecDeque<Vec<u8>>,
    /// Where this link's time went.
    pub cycles: LinkCycles,
}

/// TSC cycles spent in each part of the link's I/O: where a link's time goes (the link bench
/// reports it per frame).
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkCycles {
    /// Taking frames from the NIC.
    pub nic_receive: u64,
    /// The link protocol on received frames (opening them included).
    pub link_receive: u64,
    /// The link protocol making frames to send (sealing them included).
    pub link_transmit: u64,
    /// Handing frames to the NIC.
    pub nic_transmit: u64,
}

/// Witness messages kept for [`PeerLink::take_witness`] (the oldest go first): a few seconds'
/// worth of replies, which come a few per second.
const WITNESS_QUEUE: usize = 16;

/// Broadcast frames from a peer whose MAC we know after which it counts as flooding (a peer
/// that has not yet heard from us sends a few, before it learns our MAC).
const PEER_FLOODS_AFTER: u32 = 64;

/// EtherType of raw benchmark frames (IEEE 802 local experimental 2): outside the protocol.
pub const RAW_ETHERTYPE: [u8; 2] = [0x88, 0xB6];

/// Counts of raw benchmark frames received.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCount {
    /// Frames.
    pub frames: u64,
    /// Arrival of the first (ns).
    pub first_ns: u64,
    /// Arrival of the last (ns).
    pub last_ns: u64,
}

impl PeerLink {
    /// A link on `nic` for `role`, authenticated with `key`.
    pub fn new(
        nic: Box<dyn Nic>,
        role: Role,
        key: &PreSharedKey,
        config: LinkConfig,
    ) -> Result<Self, ConfigError> {
        let mut random = HardwareRandom::new();
        let link = Link::new(config, role, key, &mut random)?;
        let mac = MacAddr(nic.mac());
        Ok(Self {
            nic,
            link,
            role,
            key: key.clone(),
            config,
            mac,
            peer_mac: None,
            udp: None,
            flood: false,
            peer_broadcasts: 0,
            tx: vec![0; MAX_FRAME],
            rx: vec![0; MAX_FRAME],
            loss_percent: 0,
            loss_state: 0x9E37_79B9_7F4A_7C15,
            injected_drops: 0,
            raw: RawCount::default(),
            cycles: LinkCycles::default(),
            witness_rx: VecDeque::new(),
        })
    }

    /// Carries the link in UDP/IPv4 along `route` instead of raw Ethernet. The link must have
    /// been made with [`LinkConfig::for_udp`]'s frame size.
    /// With `witness`, witness messages go along that route in UDP too.
    pub fn use_udp(&mut self, route: Ipv4Route, witness: Option<Ipv4Route>) {
        let mut path = UdpPath::new(route, self.mac);
        if let Some(w) = witness {
            path.set_witness(w);
        }
        self.udp = Some(path);
    }

    /// Drops `percent` of received frames before the protocol sees them (a lossy wire, for
    /// tests); decided by a fixed-seed generator, so runs are repeatable.
    pub fn inject_loss(&mut self, percent: u8) {
        self.loss_percent = percent.min(90);
    }

    fn lose_this_one(&mut self) -> bool {
        if self.loss_percent == 0 {
            return false;
        }
        self.loss_state ^= self.loss_state << 13;
        self.loss_state ^= self.loss_state >> 7;
        self.loss_state ^= self.loss_state << 17;
        self.loss_state % 100 < u64::from(self.loss_percent)
    }

    /// The protocol state machine (send, events, statistics).
    pub fn link(&mut self) -> &mut Link {
        &mut self.link
    }

    /// The NIC's name.
    pub fn nic_name(&self) -> &'static str {
        self.nic.name()
    }

    /// The peer's MAC once learned.
    pub fn peer_mac(&self) -> Option<MacAddr> {
        self.peer_mac
    }

    /// One round of I/O: every received frame into the link, timers, every frame the link wants
    /// to send onto the wire (until the NIC's ring is full). Returns whether anything moved.
    pub fn pump(&mut self) -> bool {
        let received = self.receive();
        self.transmit() || received
    }

    /// Every received frame into the link, nothing sent. A caller that must act on what
    /// arrived before the peer learns it arrived (the primary releases output on an
    /// acknowledgement before its link acknowledges that message) handles the events between
    /// [`receive`](Self::receive) and [`transmit`](Self::transmit).
    pub fn receive(&mut self) -> bool {
        let mut moved = false;
        let mut t = instr::rdtsc();
        self.nic.poll();
        while let Some(len) = self.nic.receive(&mut self.rx) {
            let received = instr::rdtsc();
            self.cycles.nic_receive += received.wrapping_sub(t);
            t = received;
            moved = true;
            if self.lose_this_one() {
                self.injected_drops += 1;
                continue;
            }
            let now = time::now_ns();
            if len >= 14 && self.rx[12..14] == RAW_ETHERTYPE {
                if self.raw.frames == 0 {
                    self.raw.first_ns = now;
                }
                self.raw.frames += 1;
                self.raw.last_ns = now;
                continue;
            }
            if len >= 14 && self.rx[12..14] == WITNESS_ETHERTYPE {
                keep_witness(&mut self.witness_rx, &self.rx[14..len]);
                continue;
            }
            let udp = self.udp.as_ref().map(UdpPath::local_ip);
            let to_broadcast = self.rx[..6] == MacAddr::BROADCAST.0;
            match classify(&self.rx[..len], self.mac, udp) {
                Ok(Received::Link { src, frame }) if self.udp.is_none() => {
                    let accepted = self.link.on_frame(now, frame) == Inbound::Accepted;
                    let handled = instr::rdtsc();
                    self.cycles.link_receive += handled.wrapping_sub(t);
                    t = handled;
                    if accepted && to_broadcast && self.peer_mac.is_some() {
                        self.peer_broadcasts = self.peer_broadcasts.saturating_add(1);
                    }
                    // Only an authenticated frame teaches the peer's MAC.
                    self.peer_mac = accepted.then_some(src).or(self.peer_mac);
                }
                Ok(Received::Udp {
                    src_ip,
                    src_port,
                    dst_port,
                    data,
                    ..
                }) => match &self.udp {
                    Some(path) if path.from_peer(src_ip, src_port, dst_port) => {
                        self.link.on_frame(now, data);
                    }
                    Some(path) if path.from_witness(src_ip, src_port, dst_port) => {
                        keep_witness(&mut self.witness_rx, data);
                    }
                    _ => {}
                },
                Ok(Received::Arp(packet)) => {
                    let reply = self.udp.as_mut().and_then(|p| p.on_arp(now, &packet));
                    if let Some(reply) = reply {
                        self.send_arp(&reply);
                    }
                }
                _ => {}
            }
        }
        moved
    }

    /// Timers, then every frame the link wants to send onto the wire (until the NIC's ring is
    /// full). Returns whether anything was sent.
    pub fn transmit(&mut self) -> bool {
        let mut moved = false;
        let now = time::now_ns();
        self.link.handle_timeout(now);
        let Some(encap) = self.encapsulation(now) else {
            return moved;
        };
        let offset = encap.payload_offset();
        let mut t = instr::rdtsc();
        while let Some(n) = self.link.poll_transmit(now, &mut self.tx[offset..]) {
            let made = instr::rdtsc();
            self.cycles.link_transmit += made.wrapping_sub(t);
            let ident = self.udp.as_mut().map_or(0, UdpPath::next_ident);
            let Ok(len) = encap.wrap(&mut self.tx, n, ident) else {
                break;
            };
            let sent = self.nic.transmit(&self.tx[..len]);
            t = instr::rdtsc();
            self.cycles.nic_transmit += t.wrapping_sub(made);
            if sent.is_err() {
                // The ring is full: the link retransmits what the wire never carried.
                break;
            }
            moved = true;
        }
        if moved {
            // A driver may hold back the device's notification for a batch (virtio-net): the
            // frames must leave now, not at the next poll, which may come only at the guest's
            // next exit. So the backup works on a checkpoint's first batches while the primary
            // encodes the rest.
            self.nic.poll();
        }
        moved
    }

    /// How frames go now: over UDP once the next hop is resolved (until then ARP requests go
    /// out and `None` is returned), or in raw Ethernet frames.
    fn encapsulation(&mut self, now: u64) -> Option<Encapsulation> {
        let Some(path) = &mut self.udp else {
            self.check_unicast();
            let dst = self.destination();
            return Some(Encapsulation::Ethernet { src: self.mac, dst });
        };
        let encap = path.encapsulation(now);
        // Resolution, or the refresh of an expired entry while its old MAC stays in use.
        if let Some(request) = path.poll_arp(now) {
            self.send_arp(&request);
        }
        encap
    }

    /// Sends the NIC's receive interrupt to the CPU with `apic_id` (the one that services the
    /// link); false if the NIC's cannot be moved.
    pub fn route_interrupts(&mut self, apic_id: u32) -> bool {
        self.nic.route_interrupts(apic_id)
    }

    /// The next witness message received, oldest first (authenticated by its reader).
    pub fn take_witness(&mut self) -> Option<Vec<u8>> {
        self.witness_rx.pop_front()
    }

    /// Sends a witness message (best effort: the witness client asks again). On raw Ethernet
    /// it goes to broadcast on the link's segment: witness messages are few and small, and the
    /// witness's MAC is never trusted from a frame. Over UDP it goes to the witness's address
    /// once its next hop is resolved (until then an ARP request goes instead).
    pub fn send_witness(&mut self, payload: &[u8]) {
        let encap = match &mut self.udp {
            None => Encapsulation::Ethernet {
                src: self.mac,
                dst: MacAddr::BROADCAST,
            },
            Some(path) => {
                let now = time::now_ns();
                match path.witness_encapsulation(now) {
                    Some(encap) => encap,
                    None => {
                        if let Some(request) = path.poll_arp(now) {
                            self.send_arp(&request);
                        }
                        return;
                    }
                }
            }
        };
        let offset = encap.payload_offset();
        let mut frame = vec![0; offset + payload.len()];
        frame[offset..].copy_from_slice(payload);
        let ident = self.udp.as_mut().map_or(0, UdpPath::next_ident);
        match encap.wrap_as(
            &mut frame,
            payload.len(),
            ident,
            u16::from_be_bytes(WITNESS_ETHERTYPE),
        ) {
            Ok(len) => {
                let _ = self.nic.transmit(&frame[..len]);
            }
            Err(e) => log::warn!("link: a witness message could not be framed: {e:?}"),
        }
    }

    /// Sends one ARP packet (best effort: ARP retries on its own).
    fn send_arp(&mut self, packet: &ArpPacket) {
        let mut frame = [0u8; 64];
        if let Ok(len) = packet.write_frame(&mut frame) {
            let _ = self.nic.transmit(&frame[..len]);
        }
    }

    /// Where raw frames go: the peer's MAC (or, over UDP, the next hop's) once known, unless
    /// unicast has proven not to reach it.
    ///
    /// On raw Ethernet, frames also go to broadcast until the peer has shown it is in the
    /// session (it delivered us a message or acknowledged one of ours): until then our HELLO
    /// replies must reach it by the way its HELLOs reached us, and a hub that has not learned
    /// its port would drop them as unicast, leaving us paired and the peer still waiting.
    fn destination(&mut self) -> MacAddr {
        let known = match &self.udp {
            Some(path) => path.next_hop_mac(),
            None => {
                let stats = self.link.stats();
                let in_session = stats.messages_delivered > 0 || stats.messages_acked > 0;
                self.peer_mac.filter(|_| in_session)
            }
        };
        match known {
            Some(mac) if !self.flood => mac,
            _ => MacAddr::BROADCAST,
        }
    }

    /// Two retransmission timeouts while the peer has never acknowledged anything mean our
    /// unicast frames are not reaching it although its frames reach us: a hub or switch that
    /// has not learned the peer's port and does not flood (Bochs' `bxhub`). From then on frames
    /// are flooded to broadcast, as a learning bridge does with unknown unicast. (Once anything
    /// was acknowledged, unicast demonstrably works and later timeouts are ordinary loss.)
    /// A peer that floods (many of its frames still come to broadcast once it has heard from
    /// us) found the same, and its acknowledgements and heartbeats are as lost as our data:
    /// this host floods too, so a side that sends no data still gets through.
    fn check_unicast(&mut self) {
        if self.flood || self.peer_mac.is_none() {
            return;
        }
        let stats = self.link.stats();
        let unacked_timeouts = stats.timeouts >= 2 && stats.messages_acked == 0;
        let why = if unacked_timeouts {
            "the peer acknowledged nothing across two retransmission timeouts"
        } else if self.peer_broadcasts > PEER_FLOODS_AFTER {
            "the peer sends to broadcast"
        } else {
            return;
        };
        self.flood = true;
        log::warn!("link: {why}; sending to broadcast instead of the peer's MAC");
    }

    /// A fresh link on the same NIC, role, key and transport, waiting for a peer to pair (a new
    /// session: nothing of the old one carries over, the peer's MAC is learned anew).
    pub fn restart(&mut self) {
        self.restart_as(self.role);
    }

    /// [`restart`](Self::restart) as `role` (a backup that took its guest over waits for a new
    /// backup as a primary).
    pub fn restart_as(&mut self, role: Role) {
        self.role = role;
        let mut random = HardwareRandom::new();
        if let Ok(link) = Link::new(self.config, self.role, &self.key, &mut random) {
            self.link = link;
        }
        self.peer_mac = None;
        self.flood = false;
        self.peer_broadcasts = 0;
    }

    /// After a failed pairing: keeps announcing this host (fresh HELLOs, results ignored) for
    /// `duration_ns`, so the peer too sees enough of them to reach the same verdict rather than
    /// waiting for a host that already gave up.
    pub fn linger(&mut self, duration_ns: u64) {
        self.restart();
        let deadline = time::now_ns() + duration_ns;
        while time::now_ns() < deadline {
            self.pump();
            while self.link.poll_event().is_some() {}
        }
    }

    /// Benchmark: sends full-size raw frames (outside the protocol, no acknowledgements, no
    /// retransmission) to the peer as fast as the NIC takes them for `duration_ns`, keeping
    /// the link pumped meanwhile. Returns the frames sent.
    pub fn blast_raw(&mut self, duration_ns: u64) -> u64 {
        let dst = self.destination();
        let mut frame = vec![0u8; MAX_FRAME];
        frame[..6].copy_from_slice(&dst.0);
        frame[6..12].copy_from_slice(&self.mac.0);
        frame[12..14].copy_from_slice(&RAW_ETHERTYPE);
        let deadline = time::now_ns() + duration_ns;
        let mut sent = 0u64;
        while time::now_ns() < deadline {
            if self.nic.transmit(&frame).is_ok() {
                sent += 1;
            } else {
                self.nic.poll();
            }
            if sent.is_multiple_of(64) {
                self.pump();
            }
        }
        sent
    }

    /// Pumps until an event arrives or `deadline_ns` passes.
    pub fn next_event(&mut self, deadline_ns: u64) -> Option<Event> {
        loop {
            if let Some(e) = self.link.poll_event() {
                return Some(e);
            }
            if time::now_ns() >= deadline_ns {
                return None;
            }
            if !self.pump() {
                core::hint::spin_loop();
            }
        }
    }
}

/// Keeps a received witness message for [`PeerLink::take_witness`] (the oldest goes when the
/// queue is full).
fn keep_witness(queue: &mut VecDeque<Vec<u8>>, msg: &[u8]) {
    if queue.len() >= WITNESS_QUEUE {
        queue.pop_front();
    }
    queue.push_back(msg.to_vec());
}
