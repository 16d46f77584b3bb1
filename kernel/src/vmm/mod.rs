// SPDX-License-Identifier: MIT OR Apache-2.0
//! The virtual-machine monitor: hardware virtualization back ends and what they share.

pub mod cpuid;
pub mod msr;
pub mod vmx;

#[cfg(target_os = "none")]
pub mod guest_mem;
pub mod vcpu;
