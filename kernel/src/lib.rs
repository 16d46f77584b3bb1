// SPDX-License-Identifier: MIT OR Apache-2.0
//! Castor: a type-1 microhypervisor with fault tolerance built in.
//!
//! This library holds the whole kernel; `main.rs` only adds the boot code (boot/) and the entry
//! symbol. Hardware-independent parts (command line, memory-map arithmetic, frame allocator,
//! page-table logic, boot-information parsing) build on the host too and are unit tested there
//! with `cargo test -p castor-kernel --lib`; everything that touches the machine is compiled
//! for `x86_64-unknown-none` only.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bootinfo;
pub mod calendar;
pub mod calibration;
pub mod cipher;
pub mod config;
pub mod drivers;
pub mod mm;
pub mod vmm;

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod bench;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod kmain;
#[cfg(target_os = "none")]
pub mod link;
#[cfg(target_os = "none")]
pub mod pair;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
pub mod platform;
#[cfg(target_os = "none")]
pub mod selftest;
