// SPDX-License-Identifier: MIT OR Apache-2.0
//! One NIC shared by the peer link and a guest's network card (`guest_net=shared`): [`split`]
//! makes two [`Nic`]s of it. Both transmit on the wire; what arrives is sorted by destination:
//! frames for the guest's MAC go to the guest's half, broadcast and multicast to both, the rest
//! to the link's half. Frames one half has not taken yet wait for it, up to [`QUEUED`] (then
//! the oldest is dropped and counted, as a NIC drops when its ring is full), so a half that is
//! not polled (the peer link after a takeover) never holds up the other.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use castor_ft::link::announce;
use castor_ft::link::ether::MacAddr;

use super::{MAX_FRAME, Nic, NicError, NicStats};

/// Most received frames waiting for one half.
pub const QUEUED: usize = 256;

/// Which half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Link,
    Guest,
}

/// The NIC and the frames waiting for each half.
struct Shared {
    nic: Box<dyn Nic>,
    guest: MacAddr,
    waiting: [VecDeque<Vec<u8>>; 2],
    /// Frames dropped because a half's queue was full, per half.
    dropped: [u64; 2],
}

impl Shared {
    fn queue(&mut self, side: Side, frame: &[u8]) {
        let q = &mut self.waiting[side as usize];
        if q.len() >= QUEUED {
            q.pop_front();
            self.dropped[side as usize] += 1;
        }
        q.push_back(frame.to_vec());
    }

    /// Sorts what the NIC received until a frame for `side` waits (or nothing more came).
    fn fill(&mut self, side: Side) {
        let mut buf = [0u8; MAX_FRAME];
        while self.waiting[side as usize].is_empty() {
            let Some(len) = self.nic.receive(&mut buf) else {
                return;
            };
            let frame = &buf[..len];
            let group = frame.first().is_some_and(|b| b & 1 != 0);
            let for_guest = announce::is_for(frame, self.guest);
            if for_guest {
                self.queue(Side::Guest, frame);
            }
            if group || !for_guest {
                self.queue(Side::Link, frame);
            }
        }
    }
}

/// One half of a shared NIC.
struct Half {
    shared: Arc<spin::Mutex<Shared>>,
    side: Side,
    name: &'static str,
    mac: [u8; 6],
}

/// Splits `nic` into the peer link's half and the half of the guest whose card has MAC
/// `guest` (whose uplink tells the NIC to receive that MAC, `Nic::accept_unicast`).
pub fn split(nic: Box<dyn Nic>, guest: [u8; 6]) -> (Box<dyn Nic>, Box<dyn Nic>) {
    let (name, mac) = (nic.name(), nic.mac());
    let shared = Arc::new(spin::Mutex::new(Shared {
        nic,
        guest: MacAddr(guest),
        waiting: [VecDeque::new(), VecDeque::new()],
        dropped: [0; 2],
    }));
    let half = |side| -> Box<dyn Nic> {
        Box::new(Half {
            shared: Arc::clone(&shared),
            side,
            name,
            mac,
        })
    };
    (half(Side::Link), half(Side::Guest))
}

impl Nic for Half {
    fn name(&self) -> &'static str {
        self.name
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError> {
        self.shared.lock().nic.transmit(frame)
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        let mut s = self.shared.lock();
        s.fill(self.side);
        let frame = s.waiting[self.side as usize].pop_front()?;
        if frame.len() > buf.len() {
            s.dropped[self.side as usize] += 1;
            return None;
        }
        buf[..frame.len()].copy_from_slice(&frame);
        Some(frame.len())
    }

    fn poll(&mut self) {
        self.shared.lock().nic.poll();
    }

    fn stats(&self) -> NicStats {
        let s = self.shared.lock();
        let mut stats = s.nic.stats();
        stats.rx_dropped += s.dropped[self.side as usize];
        stats
    }

    fn accept_unicast(&mut self, mac: [u8; 6]) -> bool {
        self.shared.lock().nic.accept_unicast(mac)
    }

    fn interrupts(&self) -> Option<(&'static str, u64)> {
        self.shared.lock().nic.interrupts()
    }

    fn route_interrupts(&mut self, apic_id: u32) -> bool {
        self.shared.lock().nic.route_interrupts(apic_id)
    }
}
