// SPDX-License-Identifier: MIT OR Apache-2.0
//! VT-x bring-up: every CPU is in VMX root operation when the CPU offers VMX, and a VMCS can be
//! made current, written and read; when it does not, Castor said so and left VMX off.

use core::sync::atomic::Ordering;

use super::Verdict;
use crate::arch::x86_64::instr::vmx as vmxi;
use crate::arch::x86_64::percpu;
use crate::ensure;
use crate::mm;
use crate::vmm::vmx::caps::{VmxCaps, VmxUnavailable};

/// VM-instruction error field (read-only data, SDM Vol. 3D, B.3.1).
const VM_INSTRUCTION_ERROR: u32 = 0x4400;
/// Guest RSP (natural-width guest-state field, SDM Vol. 3D, B.4.3).
const GUEST_RSP: u32 = 0x681C;

/// All CPUs in VMX root, or VMX absent and reported.
pub fn root_operation() -> Verdict {
    let on = percpu::online()
        .filter(|c| c.vmx_on.load(Ordering::Acquire))
        .count();
    let online = percpu::online().count();
    let caps = match VmxCaps::read() {
        Err(why @ (VmxUnavailable::NotSupported | VmxUnavailable::DisabledByFirmware)) => {
            ensure!(
                on == 0,
                "{on} CPUs claim VMX root operation although VMX is unavailable"
            );
            return Ok(alloc::format!(
                "VT-x unavailable ({why}); left off on all {online} CPUs"
            ));
        }
        Err(why) => return Err(alloc::format!("capabilities unreadable: {why}")),
        Ok(caps) => caps,
    };
    ensure!(
        on == online,
        "only {on} of {online} CPUs entered VMX root operation"
    );
    ensure!(caps.revision != 0, "VMCS revision id 0");
    let vmcs = mm::alloc_frames_below(1, u64::MAX).ok_or("no frame for a VMCS")?;
    // SAFETY: a fresh frame, identity mapped; the revision id goes in its first 32 bits.
    unsafe {
        core::ptr::write_bytes(vmcs as *mut u8, 0, 4096);
        (vmcs as *mut u32).write_volatile(caps.revision);
    }
    // SAFETY: this CPU is in VMX root operation and owns the VMCS frame; it is cleared again
    // (made inactive) before the frame is freed.
    let round_trip = unsafe {
        vmxi::vmclear(vmcs)
            .and_then(|()| vmxi::vmptrld(vmcs))
            .and_then(|()| vmxi::vmwrite(GUEST_RSP, 0x1234_5678_9abc_def0))
            .and_then(|()| vmxi::vmread(GUEST_RSP))
            .and_then(|v| vmxi::vmread(VM_INSTRUCTION_ERROR).map(|e| (v, e)))
            .and_then(|r| vmxi::vmclear(vmcs).map(|()| r))
    };
    mm::free_frames(vmcs, 1).map_err(|e| alloc::format!("free VMCS: {e:?}"))?;
    let (value, error) = round_trip.map_err(|f| alloc::format!("VMCS round trip failed: {f:?}"))?;
    ensure!(value == 0x1234_5678_9abc_def0, "VMREAD returned {value:#x}");
    ensure!(error == 0, "VM-instruction error {error}");
    Ok(alloc::format!(
        "{on} CPUs in VMX root operation, VMCS revision {:#x}, VMCS write/read round trip",
        caps.revision
    ))
}
