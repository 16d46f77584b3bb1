// SPDX-License-Identifier: MIT OR Apache-2.0
//! The primary/backup pair: what travels on the peer link after pairing, and the two epoch
//! state machines (no hardware, host tested with simulated guest memory).
//!
//! - [`message`]: the pair's messages: `HELLO` (each side's guest configuration, checked
//!   before anything else), checkpoint stream bytes, acknowledgements, release notices.
//! - [`primary`]: the primary's epoch cycle. At each stun the caller hands over the harvested
//!   dirty set and the captured vCPU and device state; the primary copies hot pages into stun
//!   buffers, write-protects cold ones, and a lazy sender streams them while the guest runs
//!   (US20170177441, US9489265). Guest output is held until the backup acknowledges the epoch
//!   that produced it (US20170262299).
//! - [`backup`]: stages each epoch, applies it only when complete and verified, acknowledges
//!   it, and on takeover hands back the state to resume from and the output the primary may
//!   not have released.
//! - [`cpu_model`]: the CPU a guest is offered, and the baseline two hosts agree on.
//! - [`digest`]: a whole-memory digest both sides compute, so a takeover can be checked
//!   against the primary's last completed epoch.
//!
//! Hardware (EPT/NPT write protection, page contents) reaches the primary through
//! [`primary::GuestRam`], and the backup's memory through [`crate::stream::PageStore`].

pub mod backup;
pub mod cpu_model;
pub mod digest;
pub mod message;
pub mod primary;

#[cfg(test)]
mod tests;

/// Device id under which an epoch carries the guest output it produced (as device state: the
/// output-commit buffer's contents for that epoch).
pub const OUTPUT_DEVICE: u32 = 0xFFFF_0000;
/// Device id of the guest's devices (chipset, UART, ...) as one opaque blob.
pub const DEVICES: u32 = 0;
