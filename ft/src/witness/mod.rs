// SPDX-License-Identifier: MIT OR Apache-2.0
//! The witness: the third member of a pair's majority, so that a pair whose hosts cannot hear
//! each other never runs its guest on both.
//!
//! A side may run the guest, or release its output, only while it holds a majority of
//! {primary, backup, witness}. A primary paired with its backup has one; alone, it needs the
//! witness's **lease**. The witness grants one lease per pair (named by the guest's digest):
//! to the host that asks while the lease is free, has expired, or is that host's already
//! ([`Witness`]). So:
//! - the primary asks for the lease as soon as it runs and renews it every quarter lease
//!   ([`LeaseClient`]); if it loses its backup it runs on unprotected only while its lease
//!   holds, and stops its guest (releasing nothing more) once the lease lapses;
//! - a backup that lost its primary takes over only once the witness has granted *it* the
//!   lease, which the witness does only after the primary's lease expired;
//! - without an answer from the witness, a primary with its backup stays protected (it says
//!   a failover now needs the witness back); a backup whose primary is gone does not run.
//!
//! # Timing rules
//! The lease is `L` ms of the witness's clock from when the witness *received* the request
//! (`castor-witness --lease-ms`, [`DEFAULT_LEASE_MS`]; every reply says `L`). The holder counts
//! its lease from when it *sent* that request, and only for `L·(1 − ρ)` of its own clock, with
//! `ρ` = [`DRIFT_PERCENT`]. The request was sent before it was received, so the holder's lease
//! ends first as long as the holder's clock runs at least `(1 − ρ)` times as fast as the
//! witness's: for clocks each within `δ` of real time, `ρ ≥ 2δ/(1+δ)`; 10 % covers 5 % each,
//! far more than any crystal. (Emulated clocks driven by an instruction count, such as QEMU's
//! `-icount`, are not bounded this way: run hosts with a witness on real-time clocks.)
//! Renewing every `L/4` leaves three renewals to lose before the lease lapses. A witness that
//! restarts has forgotten its leases: it grants nothing for its first `L` ms, by which time
//! every lease it granted before has expired.
//!
//! # Messages
//! Raw Ethernet frames of EtherType [`WITNESS_ETHERTYPE`] on the peer link's segment, or UDP
//! datagrams to port [`WITNESS_UDP_PORT`]; either way the payload is one sealed message
//! ([`wire`]): a clear header (magic, kind, sender id, counter) authenticated as associated
//! data, and a body sealed with ChaCha20-Poly1305 under a key derived from the pair's
//! pre-shared key and the sender's id. Replies echo the request's random nonce, so a host
//! believes only the answer to its latest request; the witness takes each sender's counter
//! only upward, so a replayed request is dropped. A replay can at worst delay a failover
//! (by renewing a lease for a host that is gone), never let two sides run.

mod client;
mod server;
pub mod wire;

#[cfg(test)]
mod tests;

pub use client::{LeaseClient, LeaseState};
pub use server::Witness;
pub use wire::{Reply, Request, Want};

/// EtherType of witness messages on raw Ethernet (IEEE 802 local experimental 1 is the
/// peer link's 0x88B5; 0x88B6 is its raw benchmark frames).
pub const WITNESS_ETHERTYPE: [u8; 2] = [0x88, 0xB7];
/// UDP port of the witness.
pub const WITNESS_UDP_PORT: u16 = 0x88B7;
/// Lease length when the witness is not told otherwise (ms).
pub const DEFAULT_LEASE_MS: u32 = 3000;
/// The holder's clock-drift margin `ρ`, in percent (see the timing rules).
pub const DRIFT_PERCENT: u64 = 10;
