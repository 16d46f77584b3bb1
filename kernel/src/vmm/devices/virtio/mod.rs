// SPDX-License-Identifier: MIT OR Apache-2.0
//! Virtio devices (OASIS virtio 1.2) as the guest sees them, over the virtio-mmio transport.
//!
//! - [`queue`]: split virtqueues (§2.7), walked without trusting the guest.
//! - [`mmio`]: the virtio-mmio version 2 register file (§4.2): status, feature negotiation,
//!   queue configuration, interrupt status.
//! - [`net`]: a virtio-net device (§5.1) with one receive and one transmit queue.
//!
//! Like the other device models these are plain state machines: they reach guest RAM only
//! through [`GuestDma`], and the monitor routes MMIO exits, drives the interrupt line and
//! moves frames to and from the host's network.

pub mod mmio;
pub mod net;
pub mod queue;
#[cfg(test)]
mod tests;

pub use self::net::{RxOutcome, TxReport, VirtioNet, VirtioNetStats};
pub use self::queue::QueueError;

/// Guest RAM as a device's DMA sees it. Both return false (and do nothing) if any byte is
/// outside guest RAM.
pub trait GuestDma {
    /// Reads `buf.len()` bytes at guest-physical address `gpa`.
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool;
    /// Writes `data` at guest-physical address `gpa`.
    fn write(&mut self, gpa: u64, data: &[u8]) -> bool;
}
