// SPDX-License-Identifier: MIT OR Apache-2.0
//! Castor's fault-tolerance library: everything about checkpointing and the peer link that does
//! not touch hardware, so it can be tested on the host with simulated guest memory and networks.
//!
//! - [`stream`]: the versioned checkpoint stream format (records, encoder, strict decoder).
//! - [`link`]: the authenticated, reliable peer-link protocol between primary and backup.
//! - [`epoch`]: the epoch-length policy, the lazy sender's plan and the output-commit buffer.
//! - [`pair`]: the pair's messages and the primary's and backup's epoch state machines.
//! - [`witness`]: the witness that decides, by leases, which side of a pair may run the guest.
//!
//! Nothing here needs `unsafe`: the hardware side (page tables, NICs) lives in the kernel.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod epoch;
pub mod link;
pub mod pair;
pub mod stream;
pub mod witness;

#[cfg(test)]
mod testutil;
