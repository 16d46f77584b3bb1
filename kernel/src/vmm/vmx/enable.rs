// SPDX-License-Identifier: MIT OR Apache-2.0
//! Entering VMX root operation (Intel SDM Vol. 3C, 25.7 "Enabling and Entering VMX Operation").

use core::fmt;

use super::caps::{VmxCaps, VmxUnavailable};
use super::controls::apply_fixed;
use crate::arch::x86_64::instr::{self, vmx::VmFail};
use crate::arch::x86_64::msr;
use crate::mm;

/// CR4.VMXE (SDM Vol. 3A, 2.5).
const CR4_VMXE: u64 = 1 << 13;

/// Why VMX root operation could not be entered.
#[derive(Debug, Clone, Copy)]
pub enum VmxError {
    /// VMX is absent or disabled.
    Unavailable(VmxUnavailable),
    /// No frame for the VMXON region.
    OutOfMemory,
    /// VMXON failed (e.g. already in VMX operation, or a fixed bit could not be met).
    VmxonFailed(VmFail),
}

impl fmt::Display for VmxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmxError::Unavailable(why) => write!(f, "{why}"),
            VmxError::OutOfMemory => write!(f, "no memory for the VMXON region"),
            VmxError::VmxonFailed(fail) => write!(f, "VMXON failed ({fail:?})"),
        }
    }
}

/// Turns VMX on for the calling CPU: IA32_FEATURE_CONTROL (if firmware left it unlocked),
/// CR0/CR4 fixed bits with CR4.VMXE, a VMXON region stamped with the revision id, VMXON.
/// Returns the capabilities and the VMXON region's physical address.
pub fn enable_on_this_cpu() -> Result<(VmxCaps, u64), VmxError> {
    let caps = VmxCaps::read().map_err(VmxError::Unavailable)?;
    if VmxCaps::feature_control_unlocked() {
        // SAFETY: the MSR exists (VMX is supported) and is unlocked; setting lock + VMX outside
        // SMX is the documented enabling sequence (SDM Vol. 3C, 25.7).
        unsafe { instr::wrmsr(msr::IA32_FEATURE_CONTROL, (1 << 2) | 1) };
    }
    let cr0 = apply_fixed(instr::read_cr0(), caps.cr0_fixed.0, caps.cr0_fixed.1);
    let cr4 = apply_fixed(
        instr::read_cr4() | CR4_VMXE,
        caps.cr4_fixed.0,
        caps.cr4_fixed.1,
    );
    // SAFETY: the fixed-0 bits VMX demands (PE, NE, PG in CR0; VMXE in CR4) are compatible with
    // the kernel's protected, paged long mode; fixed-1 clearing only drops bits the CPU cannot
    // have set anyway.
    unsafe {
        instr::write_cr0(cr0);
        instr::write_cr4(cr4);
    }
    let region = mm::alloc_frames_below(1, u64::MAX).ok_or(VmxError::OutOfMemory)?;
    // SAFETY: the frame was just allocated for this CPU's VMXON region and is identity mapped;
    // the first 32 bits take the VMCS revision id, the rest must be zero (SDM Vol. 3C, 25.11.5).
    unsafe {
        core::ptr::write_bytes(region as *mut u8, 0, 4096);
        (region as *mut u32).write_volatile(caps.revision);
    }
    // SAFETY: CR4.VMXE and the fixed bits are set, feature control allows VMX, and the region
    // stays allocated to this CPU for as long as it is in VMX operation.
    unsafe { instr::vmx::vmxon(region) }.map_err(VmxError::VmxonFailed)?;
    super::vmcs::forget_current();
    Ok((caps, region))
}
