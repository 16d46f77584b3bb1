// SPDX-License-Identifier: MIT OR Apache-2.0
//! VT-x bring-up: every CPU is in VMX root operation when the CPU offers VMX, and a VMCS can be
//! made current, written and read; when it does not, Castor said so and left VMX off.

use core::sync::atomic::Ordering;

use super::Verdict;
use crate::arch::x86_64::percpu;
use crate::ensure;
use crate::vmm::vmx::caps::{VmxCaps, VmxUnavailable};
use crate::vmm::vmx::fields::{GuestN, ReadOnly32};
use crate::vmm::vmx::vmcs::Vmcs;

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
    let mut vmcs = Vmcs::new(&caps).ok_or("could not create and VMCLEAR a VMCS")?;
    let round_trip = vmcs.load().and_then(|mut loaded| {
        loaded.write(GuestN::Rsp, 0x1234_5678_9abc_def0)?;
        Ok((
            loaded.read(GuestN::Rsp)?,
            loaded.read(ReadOnly32::VmInstructionError)?,
        ))
    });
    drop(vmcs);
    let (value, error) = round_trip.map_err(|f| alloc::format!("VMCS round trip failed: {f:?}"))?;
    ensure!(value == 0x1234_5678_9abc_def0, "VMREAD returned {value:#x}");
    ensure!(error == 0, "VM-instruction error {error}");
    Ok(alloc::format!(
        "{on} CPUs in VMX root operation, VMCS revision {:#x}, VMCS write/read round trip",
        caps.revision
    ))
}
