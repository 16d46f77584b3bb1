// SPDX-License-Identifier: MIT OR Apache-2.0
//! Page-modification logging (Intel SDM Vol. 3C, 29.3.6 "Page-Modification Logging").
//!
//! With the "enable PML" secondary control (bit 17) set and EPT accessed/dirty flags enabled
//! in the EPTP, each time the processor sets an EPT dirty flag from 0 to 1 it first checks the
//! 16-bit PML index (a guest-state field): if it is in 0..=511 the guest-physical address of
//! the page (bits 11:0 clear) is written to entry `index` of the 4 KiB log at the PML address
//! and the index is decremented; otherwise a "page-modification log full" VM exit (basic reason
//! 62) happens *before* the access, which is performed again once the guest is resumed. So the
//! log fills from entry 511 down, holds entries `index + 1 ..= 511` (the index wraps to 0xFFFF
//! when entry 0 was used), and a page appears once per 0→1 transition of its dirty flag: the
//! monitor must clear those flags (and invalidate, rule 3 in `invalidate`) for later writes to
//! be logged again. Accesses to guest paging structures count as writes for EPT dirty flags
//! (29.3.5), so the guest's page-table pages are logged too.
//!
//! VM-entry checks (28.2.1.1): "enable PML" requires "enable EPT", and the PML address must be
//! 4 KiB aligned and within the physical-address width.

use alloc::vec::Vec;

use super::fields::{Control64, Guest16};
use super::vmcs::LoadedVmcs;
use crate::arch::x86_64::instr::vmx::VmFail;
use crate::mm::OwnedFrames;
use crate::vmm::guest_mem::PAGE_SIZE;

/// Entries in the log page.
const ENTRIES: u16 = 512;
/// The index of an empty log: the processor writes entry 511 first.
const EMPTY: u16 = ENTRIES - 1;

/// One vCPU's page-modification log: the log page the processor writes, and the frame numbers
/// taken out of it when it filled up, kept until [`PmlLog::drain`].
pub struct PmlLog {
    page: OwnedFrames,
    spilled: Vec<u64>,
}

impl PmlLog {
    /// A zeroed log page, or `None` without memory.
    pub fn new() -> Option<Self> {
        Some(Self {
            page: OwnedFrames::zeroed(1)?,
            spilled: Vec::new(),
        })
    }

    /// Points the loaded VMCS at this log, empty. The caller sets the "enable PML" control.
    pub fn install(&self, v: &mut LoadedVmcs<'_>) -> Result<(), VmFail> {
        v.write(Control64::PmlAddress, self.page.phys())?;
        v.write(Guest16::PmlIndex, EMPTY)
    }

    /// Moves the logged frame numbers, oldest first, to `out` and empties the log.
    fn take_logged(&self, v: &mut LoadedVmcs<'_>, out: &mut Vec<u64>) -> Result<(), VmFail> {
        let index = v.read(Guest16::PmlIndex)?;
        // Entries index+1..=511 are filled; after entry 0 the index wrapped to 0xFFFF (or is
        // otherwise out of range): all 512 are.
        let first = if index >= ENTRIES { 0 } else { index + 1 };
        for i in (first..ENTRIES).rev() {
            let slot = self.page.ptr(usize::from(i) * 8).cast::<u64>();
            // SAFETY: `slot` lies inside this log's frame, owned by this vCPU; the processor
            // writes the log only while the guest runs, not now.
            let gpa = unsafe { slot.read_volatile() };
            out.push(gpa / PAGE_SIZE);
        }
        v.write(Guest16::PmlIndex, EMPTY)
    }

    /// The "page-modification log full" exit: keeps the logged frames aside and empties the log
    /// so the guest can resume (its access is then performed and logged).
    pub fn on_full(&mut self, v: &mut LoadedVmcs<'_>) -> Result<(), VmFail> {
        let mut spilled = core::mem::take(&mut self.spilled);
        let result = self.take_logged(v, &mut spilled);
        self.spilled = spilled;
        result
    }

    /// Appends every frame logged since the last drain, oldest first, to `out`, and empties the
    /// log.
    pub fn drain(&mut self, v: &mut LoadedVmcs<'_>, out: &mut Vec<u64>) -> Result<(), VmFail> {
        out.append(&mut self.spilled);
        self.take_logged(v, out)
    }
}
