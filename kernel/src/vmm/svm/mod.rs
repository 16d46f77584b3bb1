// SPDX-License-Identifier: MIT OR Apache-2.0
//! AMD-V (SVM): capabilities and enabling, the VMCB layout, the nested page table format, TLB
//! control, external interrupts through virtual interrupts (`virq`), and the vCPU back end
//! (AMD64 APM Vol. 2, chapter 15 "Secure Virtual Machine" and appendix B "Layout of VMCB").

pub mod npt;
pub mod virq;
pub mod vmcb;

#[cfg(target_os = "none")]
pub mod caps;
#[cfg(target_os = "none")]
mod enable;
#[cfg(target_os = "none")]
pub mod invalidate;
#[cfg(target_os = "none")]
pub mod vcpu;

#[cfg(target_os = "none")]
pub use enable::{SvmError, enable_on_this_cpu};
