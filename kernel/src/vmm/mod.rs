// SPDX-License-Identifier: MIT OR Apache-2.0
//! The virtual-machine monitor: hardware virtualization back ends and what they share.

pub mod acpi;
#[cfg(target_os = "none")]
pub mod backend;
pub mod chipset;
pub mod cpu_model;
pub mod cpu_state;
pub mod cpuid;
pub mod cpuid_clocks;
pub mod decode;
pub mod devices;
pub mod emulate;
pub mod guest_nic;
pub mod hypercall;
pub mod loader;
pub mod msr;
pub mod ram_layout;
pub mod svm;
pub mod vmx;

#[cfg(target_os = "none")]
pub mod guest_mem;
#[cfg(target_os = "none")]
pub mod guests;
#[cfg(target_os = "none")]
pub mod launch;
#[cfg(target_os = "none")]
pub mod nic_io;
#[cfg(target_os = "none")]
pub mod run;
#[cfg(target_os = "none")]
pub mod uplink;
pub mod vcpu;
