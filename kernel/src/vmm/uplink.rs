// SPDX-License-Identifier: MIT OR Apache-2.0
//! The guest's network card bridged to a host NIC (`guest_net=nic`): frames for the guest's
//! MAC, broadcast and multicast go from the NIC to the card; the card's frames go out on the
//! NIC. The NIC is told to receive the guest's MAC too (`Nic::accept_unicast`: the e1000's
//! second receive address; QEMU's virtio-net filters nothing), and [`announce::is_for`] picks
//! the guest's frames among what arrives.
//!
//! Frames the NIC's transmit ring has no room for wait here, in order, up to [`QUEUE_FRAMES`]
//! (a primary releases a whole epoch's frames at once); [`Uplink::room`] tells the card how
//! many more it may hand over, so the guest is held back rather than a frame dropped.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use castor_ft::link::announce;
use castor_ft::link::ether::MacAddr;

use super::guest_mem::GuestMemory;
use super::nic_io::{FRAME_OVERHEAD, NetHost};
use crate::drivers::net::{MAX_FRAME, Nic, NicError};
use crate::mm::pagetable::Format;

/// Most frames waiting for the NIC's transmit ring.
pub const QUEUE_FRAMES: usize = 256;

/// Counters of an uplink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UplinkStats {
    /// Frames of the guest handed to the NIC.
    pub sent: u64,
    /// Frames for the guest taken from the NIC.
    pub received: u64,
    /// Frames on the wire that were not the guest's.
    pub ignored: u64,
    /// Frames the NIC refused outright (bad length, device down).
    pub refused: u64,
}

/// A host NIC carrying the guest's traffic.
pub struct Uplink {
    nic: Box<dyn Nic>,
    guest: MacAddr,
    queue: VecDeque<Vec<u8>>,
    /// Counters.
    pub stats: UplinkStats,
}

impl Uplink {
    /// The guest with MAC address `guest` on `nic`, which is told to receive frames for it.
    pub fn new(mut nic: Box<dyn Nic>, guest: [u8; 6]) -> Self {
        if !nic.accept_unicast(guest) {
            log::warn!("net: {} cannot receive for the guest's MAC", nic.name());
        }
        Self {
            nic,
            guest: MacAddr(guest),
            queue: VecDeque::new(),
            stats: UplinkStats::default(),
        }
    }

    /// The guest card's MAC address.
    pub fn guest_mac(&self) -> [u8; 6] {
        self.guest.0
    }

    /// The host NIC's driver name.
    pub fn nic_name(&self) -> &'static str {
        self.nic.name()
    }

    /// Sends `frame` after those already waiting.
    pub fn transmit(&mut self, frame: &[u8]) {
        self.queue.push_back(frame.to_vec());
        self.flush();
    }

    /// Hands waiting frames to the NIC while its ring takes them.
    pub fn flush(&mut self) {
        self.nic.poll();
        while let Some(frame) = self.queue.front() {
            match self.nic.transmit(frame) {
                Ok(()) => self.stats.sent += 1,
                Err(NicError::Full) => return,
                Err(NicError::BadLength(_) | NicError::Down) => self.stats.refused += 1,
            }
            self.queue.pop_front();
        }
    }

    /// Frames waiting for the NIC.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Tells the network that the guest's MAC lives behind this NIC now (a RARP
    /// announcement, see `castor_ft::link::announce`).
    pub fn announce(&mut self) {
        self.transmit(&announce::announcement(self.guest));
    }

    /// The next frame for the guest, if one arrived (others are counted and dropped).
    pub fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.nic.poll();
        while let Some(len) = self.nic.receive(buf) {
            if announce::is_for(&buf[..len], self.guest) {
                self.stats.received += 1;
                return Some(len);
            }
            self.stats.ignored += 1;
        }
        None
    }
}

/// An unprotected guest's card: its frames go straight out.
impl<F: Format> NetHost<F> for Uplink {
    fn room(&self) -> usize {
        (QUEUE_FRAMES - self.queue.len().min(QUEUE_FRAMES)) * (MAX_FRAME + FRAME_OVERHEAD)
    }

    fn send(&mut self, frame: &[u8]) {
        self.transmit(frame);
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        Uplink::receive(self, buf)
    }

    fn before_write(&mut self, _mem: &mut GuestMemory<F>, _gfn: u64) {}
}
