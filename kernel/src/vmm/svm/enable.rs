// SPDX-License-Identifier: MIT OR Apache-2.0
//! Turning SVM on for a CPU (AMD64 APM Vol. 2, 15.4 "Enabling SVM"): EFER.SVME and a host
//! save area in VM_HSAVE_PA, where VMRUN keeps the host state it restores on #VMEXIT.

use core::fmt;

use super::caps::{SvmCaps, SvmUnavailable};
use crate::arch::x86_64::{instr, msr};
use crate::mm;

/// Why SVM could not be enabled.
#[derive(Debug, Clone, Copy)]
pub enum SvmError {
    /// SVM is absent or disabled.
    Unavailable(SvmUnavailable),
    /// No frame for the host save area.
    OutOfMemory,
}

impl fmt::Display for SvmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SvmError::Unavailable(why) => write!(f, "{why}"),
            SvmError::OutOfMemory => write!(f, "no memory for the host save area"),
        }
    }
}

/// Sets EFER.SVME and the host save area on the calling CPU. Returns the capabilities and the
/// host save area's physical address.
pub fn enable_on_this_cpu() -> Result<(SvmCaps, u64), SvmError> {
    let caps = SvmCaps::read().map_err(SvmError::Unavailable)?;
    let save_area = mm::alloc_frames_below(1, u64::MAX).ok_or(SvmError::OutOfMemory)?;
    // SAFETY: the frame is new and identity mapped; the host save area must start zeroed.
    unsafe { core::ptr::write_bytes(save_area as *mut u8, 0, 4096) };
    // SAFETY: SVM is supported and not disabled (checked above), so EFER.SVME may be set and
    // VM_HSAVE_PA exists; the save area frame stays allocated to this CPU from now on.
    unsafe {
        let efer = instr::rdmsr(msr::IA32_EFER);
        instr::wrmsr(msr::IA32_EFER, efer | msr::EFER_SVME);
        instr::wrmsr(msr::VM_HSAVE_PA, save_area);
    }
    Ok((caps, save_area))
}
