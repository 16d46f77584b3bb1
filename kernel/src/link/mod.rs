// SPDX-License-Identifier: MIT OR Apache-2.0
//! The peer link on a real NIC: `castor_ft::link` (the sans-IO protocol: pairing, AEAD,
//! reliable delivery, flow control, heartbeats) driven over one of the host's NICs, in raw
//! Ethernet frames or in UDP/IPv4 datagrams ([`udp`]).

pub mod aes_gcm;
pub mod chacha;
pub mod connect;
pub mod linktest;
pub mod peer;
pub mod random;
pub mod udp;
