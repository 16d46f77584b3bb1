//! A deterministic simulated network for two [`Link`]s: seeded PRNG, simulated time, and
//! configurable loss, duplication, reordering, corruption, delay, bandwidth with a bounded
//! queue, and a per-receiver frame-rate limit (Bochs accepts at most one frame per ms).

use alloc::collections::BinaryHeap;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Reverse;

use crate::link::{Event, Inbound, Link, LinkConfig, PreSharedKey, Role};
use crate::testutil::Rng;

pub(crate) const MS: u64 = 1_000_000;
pub(crate) const US: u64 = 1_000;

/// Impairments of one direction of the simulated wire.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NetConfig {
    pub(crate) loss: f64,
    pub(crate) dup: f64,
    pub(crate) corrupt: f64,
    /// Probability of an extra random delay of up to `jitter`.
    pub(crate) reorder: f64,
    pub(crate) delay: u64,
    pub(crate) jitter: u64,
    /// Serialization time per byte (0 = infinite bandwidth).
    pub(crate) ns_per_byte: u64,
    /// Frames wait at most this long in the sender's queue, else they are dropped (tail drop).
    pub(crate) max_queue_delay: u64,
    /// The receiver accepts at most one frame per this interval (0 = unlimited).
    pub(crate) rx_min_gap: u64,
}

impl NetConfig {
    pub(crate) const PERFECT: Self = Self {
        loss: 0.0,
        dup: 0.0,
        corrupt: 0.0,
        reorder: 0.0,
        delay: 100 * US,
        jitter: 0,
        ns_per_byte: 0,
        max_queue_delay: u64::MAX,
        rx_min_gap: 0,
    };

    pub(crate) fn lossy(loss: f64) -> Self {
        Self {
            loss,
            dup: 0.02,
            corrupt: 0.01,
            reorder: 0.1,
            jitter: 400 * US,
            ..Self::PERFECT
        }
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: u64,
    order: u64,
    to: usize,
    bytes: Vec<u8>,
}

/// Two links joined by the simulated wire. `links[0]` sends to `links[1]` through `net[0]`.
pub(crate) struct Sim {
    pub(crate) now: u64,
    pub(crate) rng: Rng,
    pub(crate) net: [NetConfig; 2],
    pub(crate) links: [Link; 2],
    wire: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    link_free_at: [u64; 2],
    last_rx: [Option<u64>; 2],
    /// Every frame put on the wire by link i (before impairment), if `capture` is set.
    pub(crate) captured: [Vec<Vec<u8>>; 2],
    pub(crate) capture: bool,
    /// Events seen so far per link (the application callback consumes them first).
    pub(crate) dropped_by_net: u64,
    buf: Vec<u8>,
    /// Largest step the loop takes without an event (the application tick).
    pub(crate) tick: u64,
}

pub(crate) fn key(b: u8) -> PreSharedKey {
    PreSharedKey::from_bytes([b; 32])
}

impl Sim {
    pub(crate) fn new(
        cfgs: [LinkConfig; 2],
        roles: [Role; 2],
        keys: [&PreSharedKey; 2],
        net: NetConfig,
        seed: u64,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let a = Link::new(cfgs[0], roles[0], keys[0], &mut rng).unwrap();
        let b = Link::new(cfgs[1], roles[1], keys[1], &mut rng).unwrap();
        Self::with_links([a, b], net, seed)
    }

    pub(crate) fn with_links(links: [Link; 2], net: NetConfig, seed: u64) -> Self {
        Self {
            now: 0,
            rng: Rng::new(seed ^ 0xD1B5_4A32_D192_ED03),
            net: [net; 2],
            links,
            wire: BinaryHeap::new(),
            order: 0,
            link_free_at: [0; 2],
            last_rx: [None; 2],
            captured: [Vec::new(), Vec::new()],
            capture: false,
            dropped_by_net: 0,
            buf: vec![0; 65_536],
            tick: MS,
        }
    }

    pub(crate) fn pair(cfg: LinkConfig, net: NetConfig, seed: u64) -> Self {
        let k = key(0x42);
        Self::new(
            [cfg, cfg],
            [Role::Primary, Role::Backup],
            [&k, &k],
            net,
            seed,
        )
    }

    /// Puts a frame from link `from` onto the wire, applying the impairments.
    pub(crate) fn inject(&mut self, from: usize, frame: Vec<u8>) {
        let to = 1 - from;
        let net = self.net[from];
        let mut departs = self.now;
        if net.ns_per_byte > 0 {
            let start = self.link_free_at[from].max(self.now);
            if start - self.now > net.max_queue_delay {
                self.dropped_by_net += 1;
                return;
            }
            departs = start + frame.len() as u64 * net.ns_per_byte;
            self.link_free_at[from] = departs;
        }
        if self.rng.chance(net.loss) {
            self.dropped_by_net += 1;
            return;
        }
        let copies = if self.rng.chance(net.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let mut bytes = frame.clone();
            if self.rng.chance(net.corrupt) && !bytes.is_empty() {
                for _ in 0..=self.rng.below(3) {
                    let i = self.rng.below(bytes.len());
                    bytes[i] ^= 1 << self.rng.below(8);
                }
            }
            let mut at = departs + net.delay;
            if self.rng.chance(net.reorder) {
                at += self.rng.below_u64(net.jitter + 1);
            }
            self.order += 1;
            self.wire.push(Reverse(InFlight {
                at,
                order: self.order,
                to,
                bytes,
            }));
        }
    }

    /// Lets both links transmit everything they have now.
    pub(crate) fn pump(&mut self) {
        for i in 0..2 {
            let mut buf = core::mem::take(&mut self.buf);
            while let Some(n) = self.links[i].poll_transmit(self.now, &mut buf) {
                let frame = buf[..n].to_vec();
                if self.capture {
                    self.captured[i].push(frame.clone());
                }
                self.inject(i, frame);
            }
            self.buf = buf;
        }
    }

    /// Delivers one frame directly to link `to` (bypassing the wire).
    pub(crate) fn deliver(&mut self, to: usize, frame: &[u8]) -> Inbound {
        self.links[to].on_frame(self.now, frame)
    }

    /// Advances time to the next event (frame arrival, link timer or application tick) and
    /// delivers the frames due then.
    pub(crate) fn step(&mut self) {
        let mut next = self.now + self.tick;
        if let Some(Reverse(f)) = self.wire.peek() {
            next = next.min(f.at);
        }
        for l in &self.links {
            if let Some(t) = l.next_timeout() {
                next = next.min(t);
            }
        }
        self.now = next.max(self.now + 1);
        while self.wire.peek().is_some_and(|Reverse(f)| f.at <= self.now) {
            let Some(Reverse(f)) = self.wire.pop() else {
                break;
            };
            let gap = self.net[1 - f.to].rx_min_gap;
            if gap > 0 {
                if self.last_rx[f.to].is_some_and(|t| self.now < t + gap) {
                    self.dropped_by_net += 1;
                    continue;
                }
                self.last_rx[f.to] = Some(self.now);
            }
            self.links[f.to].on_frame(self.now, &f.bytes);
        }
    }

    /// Runs until `done` returns true (checked after every step) or `limit` of simulated time
    /// elapses; returns whether `done` was reached. `app` runs after every step.
    pub(crate) fn run(&mut self, limit: u64, mut app: impl FnMut(&mut Sim) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.pump();
            if app(self) {
                return true;
            }
            self.pump();
            if self.now >= end {
                return false;
            }
            self.step();
        }
    }

    /// Runs until both links are paired; returns the events seen.
    pub(crate) fn run_pairing(&mut self, limit: u64) -> [Vec<Event>; 2] {
        let mut seen: [Vec<Event>; 2] = [Vec::new(), Vec::new()];
        let ok = self.run(limit, |s| {
            for (i, l) in s.links.iter_mut().enumerate() {
                while let Some(e) = l.poll_event() {
                    seen[i].push(e);
                }
            }
            seen.iter()
                .all(|v| v.iter().any(|e| matches!(e, Event::Paired { .. })))
        });
        assert!(ok, "pairing did not complete: {seen:?}");
        seen
    }
}
