// SPDX-License-Identifier: MIT OR Apache-2.0
//! Intel VT-x: capabilities, VMX root operation on every CPU.

#[cfg(target_os = "none")]
pub mod bitmaps;
#[cfg(target_os = "none")]
pub mod caps;
pub mod controls;
pub mod ept;
pub mod exit_info;

#[cfg(target_os = "none")]
mod enable;
#[cfg(target_os = "none")]
pub use enable::{VmxError, enable_on_this_cpu};
pub mod fields;
#[cfg(target_os = "none")]
pub mod invalidate;
pub mod invept;
#[cfg(target_os = "none")]
pub mod msr_switch;
#[cfg(target_os = "none")]
pub mod pml;
#[cfg(target_os = "none")]
pub mod setup;
#[cfg(target_os = "none")]
pub mod vcpu;
#[cfg(target_os = "none")]
pub mod vmcs;
