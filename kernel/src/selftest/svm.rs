// SPDX-License-Identifier: MIT OR Apache-2.0
//! AMD-V bring-up: when the CPU offers SVM (and VT-x is absent: Castor uses one back end),
//! every CPU has EFER.SVME set and a host save area in VM_HSAVE_PA; otherwise Castor said why
//! and left SVM off.

use core::sync::atomic::Ordering;

use super::Verdict;
use crate::arch::x86_64::{instr, msr, percpu};
use crate::ensure;
use crate::vmm::svm::caps::{SvmCaps, SvmUnavailable};
use crate::vmm::vmx::caps::VmxCaps;

/// All CPUs with SVM enabled, or SVM absent (or VT-x in use) and reported.
pub fn enabled() -> Verdict {
    let on = percpu::online()
        .filter(|c| c.svm_on.load(Ordering::Acquire))
        .count();
    let online = percpu::online().count();
    if VmxCaps::read().is_ok() {
        ensure!(
            on == 0,
            "{on} CPUs enabled SVM although VT-x is the back end"
        );
        return Ok(alloc::format!(
            "VT-x is the back end; SVM left off on all {online} CPUs"
        ));
    }
    let caps = match SvmCaps::read() {
        Err(why @ (SvmUnavailable::NotSupported | SvmUnavailable::DisabledByFirmware)) => {
            ensure!(on == 0, "{on} CPUs claim SVM although it is unavailable");
            return Ok(alloc::format!(
                "AMD-V unavailable ({why}); left off on all {online} CPUs"
            ));
        }
        Err(why) => return Err(alloc::format!("{why}")),
        Ok(caps) => caps,
    };
    ensure!(on == online, "only {on} of {online} CPUs enabled SVM");
    // SAFETY: EFER and VM_HSAVE_PA exist on a CPU with SVM enabled (checked above).
    let (efer, hsave) = unsafe { (instr::rdmsr(msr::IA32_EFER), instr::rdmsr(msr::VM_HSAVE_PA)) };
    ensure!(efer & msr::EFER_SVME != 0, "EFER.SVME clear on this CPU");
    ensure!(
        hsave != 0 && hsave % 4096 == 0,
        "VM_HSAVE_PA {hsave:#x} is not a page"
    );
    ensure!(
        caps.asids > 1,
        "{} ASIDs: no room for guests beside the host",
        caps.asids
    );
    Ok(alloc::format!(
        "{on} CPUs with EFER.SVME and a host save area; SVM revision {}, {} ASIDs, next-RIP {}",
        caps.revision,
        caps.asids,
        if caps.has_nrips() {
            "offered"
        } else {
            "absent (instruction lengths decoded)"
        }
    ))
}
