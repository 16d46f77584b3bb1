// SPDX-License-Identifier: MIT OR Apache-2.0
//! What this CPU's VMX implementation offers, read from the capability MSRs — nothing assumed.

use core::fmt;

use super::controls::Allowed;
use crate::arch::x86_64::{instr, msr};

/// Why VMX cannot be used on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmxUnavailable {
    /// CPUID.1:ECX.VMX is clear.
    NotSupported,
    /// IA32_FEATURE_CONTROL is locked with VMX outside SMX disabled (firmware setting).
    DisabledByFirmware,
    /// The CPU lacks a capability Castor requires (named).
    Missing(&'static str),
}

impl fmt::Display for VmxUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmxUnavailable::NotSupported => write!(f, "this CPU does not support VT-x (VMX)"),
            VmxUnavailable::DisabledByFirmware => write!(
                f,
                "VT-x is disabled by the firmware (IA32_FEATURE_CONTROL locked without VMX): \
                 enable Intel Virtualization Technology in the BIOS/UEFI setup"
            ),
            VmxUnavailable::Missing(what) => write!(f, "this CPU's VT-x lacks {what}"),
        }
    }
}

/// VMX capabilities (Intel SDM Vol. 3D, appendix A).
#[derive(Debug, Clone, Copy)]
pub struct VmxCaps {
    /// VMCS revision identifier (IA32_VMX_BASIC bits 30:0).
    pub revision: u32,
    /// Pin-based controls.
    pub pin: Allowed,
    /// Primary processor-based controls.
    pub proc: Allowed,
    /// Secondary processor-based controls (all zero if the CPU has none).
    pub proc2: Allowed,
    /// VM-exit controls.
    pub exit: Allowed,
    /// VM-entry controls.
    pub entry: Allowed,
    /// IA32_VMX_MISC.
    pub misc: u64,
    /// IA32_VMX_EPT_VPID_CAP (0 without secondary controls).
    pub ept_vpid: u64,
    /// CR0 bits that must be 1 / may be 1 in VMX operation.
    pub cr0_fixed: (u64, u64),
    /// CR4 bits that must be 1 / may be 1 in VMX operation.
    pub cr4_fixed: (u64, u64),
}

/// Primary processor-based control: activate secondary controls (SDM Vol. 3C, 25.6.2).
pub const PROC_SECONDARY_CONTROLS: u32 = 1 << 31;

impl VmxCaps {
    /// Reads the capability MSRs of this CPU.
    pub fn read() -> Result<Self, VmxUnavailable> {
        let id = raw_cpuid::CpuId::new();
        if !id.get_feature_info().is_some_and(|f| f.has_vmx()) {
            return Err(VmxUnavailable::NotSupported);
        }
        let rd = |m| {
            // SAFETY: CPUID reports VMX, so IA32_FEATURE_CONTROL and the VMX capability MSRs up
            // to IA32_VMX_VMCS_ENUM exist (SDM Vol. 4, Table 2-2); the others are read only when
            // the bits announcing them are set below.
            unsafe { instr::rdmsr(m) }
        };
        let fc = rd(msr::IA32_FEATURE_CONTROL);
        if fc & 1 != 0 && fc & (1 << 2) == 0 {
            return Err(VmxUnavailable::DisabledByFirmware);
        }
        let basic = rd(msr::IA32_VMX_BASIC);
        let true_ctls = basic & (1 << 55) != 0;
        let pick = |plain, truer| Allowed::from_msr(rd(if true_ctls { truer } else { plain }));
        let proc = pick(
            msr::IA32_VMX_PROCBASED_CTLS,
            msr::IA32_VMX_TRUE_PROCBASED_CTLS,
        );
        let has_secondary = proc.allows(PROC_SECONDARY_CONTROLS);
        let proc2 = if has_secondary {
            Allowed::from_msr(rd(msr::IA32_VMX_PROCBASED_CTLS2))
        } else {
            Allowed::NONE
        };
        // EPT_VPID_CAP exists if the CPU can enable EPT (bit 1) or VPID (bit 5).
        let ept_vpid = if proc2.allows(1 << 1) || proc2.allows(1 << 5) {
            rd(msr::IA32_VMX_EPT_VPID_CAP)
        } else {
            0
        };
        Ok(Self {
            revision: (basic & 0x7FFF_FFFF) as u32,
            pin: pick(
                msr::IA32_VMX_PINBASED_CTLS,
                msr::IA32_VMX_TRUE_PINBASED_CTLS,
            ),
            proc,
            proc2,
            exit: pick(msr::IA32_VMX_EXIT_CTLS, msr::IA32_VMX_TRUE_EXIT_CTLS),
            entry: pick(msr::IA32_VMX_ENTRY_CTLS, msr::IA32_VMX_TRUE_ENTRY_CTLS),
            misc: rd(msr::IA32_VMX_MISC),
            ept_vpid,
            cr0_fixed: (rd(msr::IA32_VMX_CR0_FIXED0), rd(msr::IA32_VMX_CR0_FIXED1)),
            cr4_fixed: (rd(msr::IA32_VMX_CR4_FIXED0), rd(msr::IA32_VMX_CR4_FIXED1)),
        })
    }

    /// Whether IA32_FEATURE_CONTROL must still be written (unlocked) before VMXON.
    pub fn feature_control_unlocked() -> bool {
        // SAFETY: only called after `read` succeeded, so the MSR exists.
        unsafe { instr::rdmsr(msr::IA32_FEATURE_CONTROL) & 1 == 0 }
    }

    /// EPT with a 4-level walk and write-back paging structures (EPT_VPID_CAP bits 6 and 14).
    pub fn has_ept(&self) -> bool {
        self.proc2.allows(1 << 1) && self.ept_vpid & (1 << 6) != 0 && self.ept_vpid & (1 << 14) != 0
    }

    /// EPT accessed and dirty flags (EPT_VPID_CAP bit 21).
    pub fn has_ept_ad(&self) -> bool {
        super::ept::has_dirty_flags(self.ept_vpid)
    }

    /// Unrestricted guest (secondary control bit 7).
    pub fn has_unrestricted_guest(&self) -> bool {
        self.proc2.allows(1 << 7)
    }

    /// VPID (secondary control bit 5).
    pub fn has_vpid(&self) -> bool {
        self.proc2.allows(1 << 5)
    }

    /// Page-modification logging (secondary control bit 17).
    pub fn has_pml(&self) -> bool {
        self.proc2.allows(1 << 17)
    }

    /// VMX-preemption timer (pin-based control bit 6); its rate is TSC >> MISC[4:0].
    pub fn has_preemption_timer(&self) -> bool {
        self.pin.allows(1 << 6)
    }
}
