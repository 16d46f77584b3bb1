//! ARP for IPv4 over Ethernet (RFC 826): packet parsing and building, and a small bounded
//! cache with a resolution state machine (absent -> pending -> resolved, retried on a timer,
//! failed after too many unanswered requests, refreshed when an entry ages out).

use alloc::vec::Vec;

use super::bounds::{ensure_room, header_mut, split_header};
use super::error::{BuildError, ParseError};
use super::ether::{ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetHeader, MacAddr};
use super::ipv4::Ipv4Addr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// ARP opcode "request".
pub const OP_REQUEST: u16 = 1;
/// ARP opcode "reply".
pub const OP_REPLY: u16 = 2;
const HTYPE_ETHERNET: u16 = 1;

/// ARP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOp {
    /// Who has `tpa`? Tell `spa`.
    Request,
    /// `spa` is at `sha`.
    Reply,
}

/// An ARP packet for IPv4 over Ethernet (htype 1, ptype 0x0800, hlen 6, plen 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpPacket {
    /// Operation.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address (zero in requests).
    pub tha: MacAddr,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

impl ArpPacket {
    /// A request "who has `target`? tell `our_ip`".
    #[must_use]
    pub fn request(our_mac: MacAddr, our_ip: Ipv4Addr, target: Ipv4Addr) -> Self {
        Self {
            op: ArpOp::Request,
            sha: our_mac,
            spa: our_ip,
            tha: MacAddr::ZERO,
            tpa: target,
        }
    }

    /// The reply to `request` announcing `our_mac` for `our_ip` (which should equal
    /// `request.tpa`).
    #[must_use]
    pub fn reply_to(request: &Self, our_mac: MacAddr, our_ip: Ipv4Addr) -> Self {
        Self {
            op: ArpOp::Reply,
            sha: our_mac,
            spa: our_ip,
            tha: request.sha,
            tpa: request.spa,
        }
    }

    /// Parses an ARP packet (trailing Ethernet padding is ignored).
    ///
    /// # Errors
    /// [`ParseError::Truncated`], [`ParseError::ArpUnsupported`] for other hardware/protocol
    /// types or sizes, [`ParseError::ArpBadOpcode`] for opcodes other than 1 and 2.
    pub fn parse(data: &[u8]) -> Result<Self, ParseError> {
        let (p, _) = split_header::<PACKET_LEN>(data)?;
        let htype = u16::from_be_bytes([p[0], p[1]]);
        let ptype = u16::from_be_bytes([p[2], p[3]]);
        if htype != HTYPE_ETHERNET || ptype != ETHERTYPE_IPV4 || p[4] != 6 || p[5] != 4 {
            return Err(ParseError::ArpUnsupported);
        }
        let op = match u16::from_be_bytes([p[6], p[7]]) {
            OP_REQUEST => ArpOp::Request,
            OP_REPLY => ArpOp::Reply,
            other => return Err(ParseError::ArpBadOpcode(other)),
        };
        let mac = |o: usize| MacAddr([p[o], p[o + 1], p[o + 2], p[o + 3], p[o + 4], p[o + 5]]);
        let ip = |o: usize| Ipv4Addr([p[o], p[o + 1], p[o + 2], p[o + 3]]);
        Ok(Self {
            op,
            sha: mac(8),
            spa: ip(14),
            tha: mac(18),
            tpa: ip(24),
        })
    }

    /// Writes the 28-byte packet into `buf` and returns 28.
    ///
    /// # Errors
    /// [`BuildError::BufferTooSmall`] if `buf` is shorter than 28 bytes.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, BuildError> {
        let p = header_mut::<PACKET_LEN>(buf)?;
        p[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        p[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        p[4] = 6;
        p[5] = 4;
        let op = match self.op {
            ArpOp::Request => OP_REQUEST,
            ArpOp::Reply => OP_REPLY,
        };
        p[6..8].copy_from_slice(&op.to_be_bytes());
        p[8..14].copy_from_slice(&self.sha.0);
        p[14..18].copy_from_slice(&self.spa.0);
        p[18..24].copy_from_slice(&self.tha.0);
        p[24..28].copy_from_slice(&self.tpa.0);
        Ok(PACKET_LEN)
    }

    /// Writes a complete Ethernet frame carrying this packet (requests go to broadcast,
    /// replies to `tha`), zero-padded to the 60-byte Ethernet minimum; returns its length.
    ///
    /// # Errors
    /// [`BuildError::BufferTooSmall`] if `buf` is shorter than 60 bytes.
    pub fn write_frame(&self, buf: &mut [u8]) -> Result<usize, BuildError> {
        const FRAME: usize = 60;
        ensure_room(buf, FRAME)?;
        let dst = match self.op {
            ArpOp::Request => MacAddr::BROADCAST,
            ArpOp::Reply => self.tha,
        };
        let n = EthernetHeader {
            dst,
            src: self.sha,
            ethertype: ETHERTYPE_ARP,
        }
        .write(buf)?;
        let m = self.write(&mut buf[n..])?;
        buf[n + m..FRAME].fill(0);
        Ok(FRAME)
    }
}

/// Timing of the ARP cache (all in nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpConfig {
    /// Interval between requests for an unresolved address.
    pub retry_interval: u64,
    /// Requests sent before the address is declared unreachable.
    pub max_attempts: u32,
    /// Lifetime of a resolved entry before it is refreshed.
    pub entry_ttl: u64,
    /// How long a failed address answers `Failed` before resolution is tried again.
    pub failed_hold: u64,
}

impl Default for ArpConfig {
    fn default() -> Self {
        Self {
            retry_interval: 250_000_000,
            max_attempts: 8,
            entry_ttl: 60_000_000_000,
            failed_hold: 5_000_000_000,
        }
    }
}

/// Result of [`ArpCache::lookup`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpLookup {
    /// The address is known (possibly being refreshed in the background).
    Resolved(MacAddr),
    /// Resolution is under way: send the requests from [`ArpCache::poll_request`].
    Pending,
    /// No reply after `max_attempts` requests; retried after `failed_hold`.
    Failed,
}

#[derive(Clone, Copy, Debug)]
enum EntryState {
    /// Requests outstanding; `stale` is an expired mapping still usable meanwhile.
    Pending {
        attempts: u32,
        next_request: u64,
        stale: Option<MacAddr>,
    },
    Resolved {
        mac: MacAddr,
        expires: u64,
    },
    Failed {
        until: u64,
    },
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    ip: Ipv4Addr,
    state: EntryState,
    last_used: u64,
}

/// A bounded IPv4 -> MAC cache (RFC 826 with request retries). Sans-IO: the caller passes
/// `now` (nanoseconds), feeds received ARP packets to [`ArpCache::process`] and sends the
/// requests returned by [`ArpCache::poll_request`].
#[derive(Clone, Debug)]
pub struct ArpCache {
    entries: Vec<Entry>,
    capacity: usize,
    cfg: ArpConfig,
    our_mac: MacAddr,
    our_ip: Ipv4Addr,
}

impl ArpCache {
    /// An empty cache for the interface `our_mac`/`our_ip` holding at most `capacity` (>= 1)
    /// entries.
    #[must_use]
    pub fn new(our_mac: MacAddr, our_ip: Ipv4Addr, capacity: usize, cfg: ArpConfig) -> Self {
        let capacity = capacity.max(1);
        Self {
            entries: Vec::with_capacity(capacity),
            capacity,
            cfg,
            our_mac,
            our_ip,
        }
    }

    fn find(&self, ip: Ipv4Addr) -> Option<usize> {
        self.entries.iter().position(|e| e.ip == ip)
    }

    /// Makes room for one entry (evicting failed entries first, then the least recently used)
    /// and inserts it.
    fn insert_entry(&mut self, e: Entry) {
        if self.entries.len() >= self.capacity {
            let victim = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, x)| (!matches!(x.state, EntryState::Failed { .. }), x.last_used))
                .map(|(i, _)| i);
            if let Some(i) = victim {
                self.entries.swap_remove(i);
            }
        }
        self.entries.push(e);
    }

    /// Looks `ip` up, starting resolution (a request becomes due immediately) if it is unknown,
    /// and refreshing it if it has expired.
    pub fn lookup(&mut self, now: u64, ip: Ipv4Addr) -> ArpLookup {
        let Some(i) = self.find(ip) else {
            self.insert_entry(Entry {
                ip,
                state: EntryState::Pending {
                    attempts: 0,
                    next_request: now,
                    stale: None,
                },
                last_used: now,
            });
            return ArpLookup::Pending;
        };
        let e = &mut self.entries[i];
        e.last_used = now;
        match e.state {
            EntryState::Resolved { mac, expires } => {
                if now >= expires {
                    e.state = EntryState::Pending {
                        attempts: 0,
                        next_request: now,
                        stale: Some(mac),
                    };
                }
                ArpLookup::Resolved(mac)
            }
            EntryState::Pending {
                stale: Some(mac), ..
            } => ArpLookup::Resolved(mac),
            EntryState::Pending { stale: None, .. } => ArpLookup::Pending,
            EntryState::Failed { until } if now >= until => {
                e.state = EntryState::Pending {
                    attempts: 0,
                    next_request: now,
                    stale: None,
                };
                ArpLookup::Pending
            }
            EntryState::Failed { .. } => ArpLookup::Failed,
        }
    }

    /// Adds or overwrites a static mapping (e.g. from the kernel command line).
    pub fn insert(&mut self, now: u64, ip: Ipv4Addr, mac: MacAddr) {
        let state = EntryState::Resolved {
            mac,
            expires: now.saturating_add(self.cfg.entry_ttl),
        };
        match self.find(ip) {
            Some(i) => self.entries[i].state = state,
            None => self.insert_entry(Entry {
                ip,
                state,
                last_used: now,
            }),
        }
    }

    /// Processes a received ARP packet following RFC 826's merge algorithm: refreshes an
    /// existing entry for the sender, adds one if the packet targets us, and returns the reply
    /// to send if it is a request for our address. Packets with a multicast/zero sender MAC are
    /// ignored; probes with sender IP 0.0.0.0 are answered but not cached.
    pub fn process(&mut self, now: u64, pkt: &ArpPacket) -> Option<ArpPacket> {
        if !pkt.sha.is_valid_unicast() || pkt.sha == self.our_mac {
            return None;
        }
        let for_us = pkt.tpa == self.our_ip;
        if pkt.spa != Ipv4Addr::UNSPECIFIED && pkt.spa != self.our_ip {
            let state = EntryState::Resolved {
                mac: pkt.sha,
                expires: now.saturating_add(self.cfg.entry_ttl),
            };
            match self.find(pkt.spa) {
                Some(i) => self.entries[i].state = state,
                None if for_us => self.insert_entry(Entry {
                    ip: pkt.spa,
                    state,
                    last_used: now,
                }),
                None => {}
            }
        }
        (for_us && pkt.op == ArpOp::Request)
            .then(|| ArpPacket::reply_to(pkt, self.our_mac, self.our_ip))
    }

    /// Returns the next request to send now, if any, advancing that entry's retry timer; an
    /// entry whose requests are exhausted becomes `Failed`.
    pub fn poll_request(&mut self, now: u64) -> Option<ArpPacket> {
        let (retry, max, hold) = (
            self.cfg.retry_interval,
            self.cfg.max_attempts,
            self.cfg.failed_hold,
        );
        for e in &mut self.entries {
            if let EntryState::Pending {
                attempts,
                next_request,
                stale,
            } = e.state
            {
                if now < next_request {
                    continue;
                }
                if attempts >= max {
                    e.state = EntryState::Failed {
                        until: now.saturating_add(hold),
                    };
                    continue;
                }
                e.state = EntryState::Pending {
                    attempts: attempts + 1,
                    next_request: now.saturating_add(retry),
                    stale,
                };
                return Some(ArpPacket::request(self.our_mac, self.our_ip, e.ip));
            }
        }
        None
    }

    /// Earliest time at which [`ArpCache::poll_request`] has something to do.
    #[must_use]
    pub fn next_timeout(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter_map(|e| match e.state {
                EntryState::Pending { next_request, .. } => Some(next_request),
                _ => None,
            })
            .min()
    }

    /// Number of entries held (never above the capacity).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 1]);
    const PEER: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 2]);
    const US_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn known_answer_request() {
        let req = ArpPacket::request(US, US_IP, PEER_IP);
        let mut buf = [0u8; 60];
        assert_eq!(req.write_frame(&mut buf), Ok(60));
        let expect: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x06, // ether
            0, 1, 0x08, 0, 6, 4, 0, 1, // htype ptype hlen plen op
            0x52, 0x54, 0, 0, 0, 1, 10, 0, 0, 1, // sha spa
            0, 0, 0, 0, 0, 0, 10, 0, 0, 2, // tha tpa
        ];
        assert_eq!(&buf[..42], &expect);
        assert!(buf[42..].iter().all(|&b| b == 0));
        let (eth, payload) = EthernetHeader::parse(&buf).unwrap();
        assert_eq!(eth.ethertype, ETHERTYPE_ARP);
        assert_eq!(ArpPacket::parse(payload), Ok(req));
    }

    #[test]
    fn parse_rejects() {
        let mut buf = [0u8; 28];
        ArpPacket::request(US, US_IP, PEER_IP)
            .write(&mut buf)
            .unwrap();
        assert!(ArpPacket::parse(&buf[..27]).is_err());
        let mut b = buf;
        b[7] = 3;
        assert_eq!(ArpPacket::parse(&b), Err(ParseError::ArpBadOpcode(3)));
        let mut b = buf;
        b[4] = 8;
        assert_eq!(ArpPacket::parse(&b), Err(ParseError::ArpUnsupported));
        let mut b = buf;
        b[3] = 0xdd;
        assert_eq!(ArpPacket::parse(&b), Err(ParseError::ArpUnsupported));
    }

    #[test]
    fn resolution_state_machine() {
        let cfg = ArpConfig {
            retry_interval: 100,
            max_attempts: 3,
            entry_ttl: 1000,
            failed_hold: 500,
        };
        let mut us = ArpCache::new(US, US_IP, 4, cfg);
        let mut peer = ArpCache::new(PEER, PEER_IP, 4, cfg);
        assert_eq!(us.lookup(0, PEER_IP), ArpLookup::Pending);
        let req = us.poll_request(0).unwrap();
        assert_eq!(req.op, ArpOp::Request);
        assert_eq!(us.poll_request(50), None);
        assert_eq!(us.next_timeout(), Some(100));
        // The peer answers and learns us (we targeted it).
        let reply = peer.process(10, &req).unwrap();
        assert_eq!(peer.lookup(11, US_IP), ArpLookup::Resolved(US));
        assert_eq!(us.process(20, &reply), None);
        assert_eq!(us.lookup(30, PEER_IP), ArpLookup::Resolved(PEER));
        assert_eq!(us.next_timeout(), None);
        // Expiry: the stale address stays usable while a refresh request goes out.
        assert_eq!(us.lookup(1020, PEER_IP), ArpLookup::Resolved(PEER));
        assert!(us.poll_request(1020).is_some());
        // Unanswered: three attempts, then failure, then retry after the hold time.
        let other = Ipv4Addr::new(10, 0, 0, 9);
        assert_eq!(us.lookup(2000, other), ArpLookup::Pending);
        let mut sent = 0;
        for t in (2000..2500).step_by(10) {
            while let Some(r) = us.poll_request(t) {
                if r.tpa == other {
                    sent += 1;
                }
            }
        }
        assert_eq!(sent, 3);
        assert_eq!(us.lookup(2500, other), ArpLookup::Failed);
        assert_eq!(us.lookup(3000, other), ArpLookup::Pending);
    }

    #[test]
    fn bounded_and_ignores_garbage_senders() {
        let mut c = ArpCache::new(US, US_IP, 2, ArpConfig::default());
        for i in 0..10 {
            let _ = c.lookup(i, Ipv4Addr::new(10, 0, 1, i as u8));
        }
        assert_eq!(c.len(), 2);
        let mut bogus = ArpPacket::request(MacAddr::BROADCAST, PEER_IP, US_IP);
        assert_eq!(c.process(0, &bogus), None);
        bogus.sha = PEER;
        bogus.spa = Ipv4Addr::UNSPECIFIED;
        // A probe is answered but not cached.
        assert!(c.process(0, &bogus).is_some());
        assert!(c.entries.iter().all(|e| e.ip != Ipv4Addr::UNSPECIFIED));
    }
}
