// SPDX-License-Identifier: MIT OR Apache-2.0
//! Model-specific registers Castor emulates for guests (vendor neutral).
//!
//! Both back ends intercept every MSR through their bitmaps except the few whose guest values
//! the hardware itself switches (kept in the VMCS/VMCB by the vendor layer). Everything else
//! arrives here; an MSR not listed is unknown and the access raises #GP in the guest, as on a
//! CPU without it (Intel SDM Vol. 2B, RDMSR/WRMSR).

/// IA32_TIME_STAMP_COUNTER.
pub const TSC: u32 = 0x10;
/// IA32_APIC_BASE.
pub const APIC_BASE: u32 = 0x1B;
/// IA32_FEATURE_CONTROL.
pub const FEATURE_CONTROL: u32 = 0x3A;
/// IA32_BIOS_SIGN_ID (microcode revision).
pub const BIOS_SIGN_ID: u32 = 0x8B;
/// IA32_TSC_DEADLINE (the local APIC timer's deadline, `devices::lapic`).
pub const TSC_DEADLINE: u32 = 0x6E0;
/// IA32_MTRRCAP.
pub const MTRRCAP: u32 = 0xFE;
/// IA32_MISC_ENABLE.
pub const MISC_ENABLE: u32 = 0x1A0;
/// IA32_PAT.
pub const PAT: u32 = 0x277;
/// IA32_MTRR_DEF_TYPE.
pub const MTRR_DEF_TYPE: u32 = 0x2FF;
/// IA32_TSC_AUX (what RDTSCP returns in ECX). VT-x switches the real MSR for its guests
/// (`vmx::msr_switch`); AMD-V has no slot for it, so its guests' lives here and RDTSCP is
/// emulated.
pub const TSC_AUX: u32 = 0xC000_0103;
/// AMD's interrupt pending message register (MSR C001_0055, BKDG for family 0Fh/10h): Linux
/// reads it on family 0Fh and 10h parts to learn whether C1E is on (`amd_e400_c1e_bug`).
/// Reads 0 (C1E off; vCPUs have no C1E), writes are refused.
pub const INT_PENDING_MSG: u32 = 0xC001_0055;

/// The architectural power-on PAT value (SDM Vol. 3A, 13.12.4).
const PAT_DEFAULT: u64 = 0x0007_0406_0007_0406;
/// xAPIC enabled at the default base, bootstrap processor.
const APIC_BASE_DEFAULT: u64 = 0xFEE0_0000 | (1 << 11) | (1 << 8);

/// One vCPU's emulated MSRs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualMsrs {
    pat: u64,
    mtrr_def_type: u64,
    apic_base: u64,
    tsc_aux: u64,
}

impl VirtualMsrs {
    /// Power-on values for vCPU `index` (0 is the bootstrap processor).
    pub fn new(index: u32) -> Self {
        let bsp = if index == 0 { 1 << 8 } else { 0 };
        Self {
            pat: PAT_DEFAULT,
            mtrr_def_type: 0,
            apic_base: (APIC_BASE_DEFAULT & !(1 << 8)) | bsp,
            tsc_aux: 0,
        }
    }

    /// RDMSR: the value, or `None` for #GP. `tsc` is the guest's current TSC.
    pub fn read(&self, msr: u32, tsc: u64) -> Option<u64> {
        Some(match msr {
            TSC => tsc,
            APIC_BASE => self.apic_base,
            // Locked, VMX off: nested virtualization is not offered.
            FEATURE_CONTROL => 1,
            BIOS_SIGN_ID => 0,
            // No variable or fixed MTRRs, no write combining.
            MTRRCAP => 0,
            // Fast strings enabled.
            MISC_ENABLE => 1,
            PAT => self.pat,
            MTRR_DEF_TYPE => self.mtrr_def_type,
            TSC_AUX => self.tsc_aux,
            INT_PENDING_MSG => 0,
            _ => return None,
        })
    }

    /// WRMSR: `Err(())` for #GP.
    #[allow(clippy::result_unit_err)]
    pub fn write(&mut self, msr: u32, value: u64) -> Result<(), ()> {
        match msr {
            // Microcode update trigger: accepted and ignored (there is no microcode to load).
            BIOS_SIGN_ID => Ok(()),
            // Only the current value (moving or disabling the APIC is not virtualized).
            APIC_BASE | MISC_ENABLE | FEATURE_CONTROL if self.read(msr, 0) == Some(value) => Ok(()),
            PAT if pat_valid(value) => {
                self.pat = value;
                Ok(())
            }
            // Enable bit 11 and default type in bits 7:0 only (no fixed MTRRs: bit 10 stays 0).
            MTRR_DEF_TYPE if value & !0x8FF == 0 && memory_type_valid((value & 0xFF) as u8) => {
                self.mtrr_def_type = value;
                Ok(())
            }
            // Bits 63:32 are reserved (SDM Vol. 4, IA32_TSC_AUX).
            TSC_AUX if value >> 32 == 0 => {
                self.tsc_aux = value;
                Ok(())
            }
            _ => Err(()),
        }
    }
}

fn memory_type_valid(t: u8) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6)
}

/// Every PAT entry must be UC, WC, WT, WP, WB or UC- (SDM Vol. 3A, 13.12.2).
fn pat_valid(value: u64) -> bool {
    value
        .to_le_bytes()
        .iter()
        .all(|&b| matches!(b, 0 | 1 | 4 | 5 | 6 | 7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_msrs_read_and_unknown_fault() {
        let m = VirtualMsrs::new(0);
        assert_eq!(m.read(TSC, 1234), Some(1234));
        assert_eq!(m.read(APIC_BASE, 0), Some(0xFEE0_0900));
        assert_eq!(VirtualMsrs::new(1).read(APIC_BASE, 0), Some(0xFEE0_0800));
        assert_eq!(m.read(PAT, 0), Some(PAT_DEFAULT));
        assert_eq!(m.read(TSC_AUX, 0), Some(0), "TSC_AUX starts at 0");
        assert_eq!(m.read(INT_PENDING_MSG, 0), Some(0), "no C1E");
        assert_eq!(m.read(0x1234_5678, 0), None);
    }

    #[test]
    fn writes_are_validated() {
        let mut m = VirtualMsrs::new(0);
        assert_eq!(m.write(PAT, 0x0606_0606_0606_0606), Ok(()));
        assert_eq!(m.read(PAT, 0), Some(0x0606_0606_0606_0606));
        assert_eq!(
            m.write(PAT, 0x0202_0202_0202_0202),
            Err(()),
            "type 2 is reserved"
        );
        assert_eq!(m.write(MTRR_DEF_TYPE, 0x806), Ok(()));
        assert_eq!(
            m.write(MTRR_DEF_TYPE, 0xC06),
            Err(()),
            "fixed MTRRs do not exist"
        );
        assert_eq!(m.write(APIC_BASE, 0xFEE0_0900), Ok(()));
        assert_eq!(m.write(APIC_BASE, 0xFEC0_0900), Err(()));
        assert_eq!(m.write(FEATURE_CONTROL, 5), Err(()));
        assert_eq!(m.write(TSC, 0), Err(()), "the back ends handle TSC writes");
        assert_eq!(m.write(TSC_AUX, 5), Ok(()));
        assert_eq!(m.read(TSC_AUX, 0), Some(5));
        assert_eq!(
            m.write(TSC_AUX, 1 << 32),
            Err(()),
            "bits 63:32 are reserved"
        );
        assert_eq!(m.write(0xDEAD, 0), Err(()));
    }
}
