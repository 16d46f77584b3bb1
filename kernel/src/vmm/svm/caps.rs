// SPDX-License-Identifier: MIT OR Apache-2.0
//! What this CPU's SVM implementation offers, from CPUID 8000_000A (AMD64 APM Vol. 2, 15.4
//! "Enabling SVM", and APM Vol. 3, CPUID Fn8000_000A).

use core::arch::x86_64::__cpuid;
use core::fmt;

use crate::arch::x86_64::{instr, msr};

/// Why SVM cannot be used on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvmUnavailable {
    /// CPUID Fn8000_0001 ECX.SVM is clear.
    NotSupported,
    /// VM_CR.SVMDIS is set (firmware disabled it).
    DisabledByFirmware,
    /// The CPU lacks a capability Castor requires (named).
    Missing(&'static str),
}

impl fmt::Display for SvmUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SvmUnavailable::NotSupported => write!(f, "this CPU does not support AMD-V (SVM)"),
            SvmUnavailable::DisabledByFirmware => write!(
                f,
                "AMD-V is disabled by the firmware (VM_CR.SVMDIS): enable SVM in the BIOS/UEFI setup"
            ),
            SvmUnavailable::Missing(what) => write!(f, "this CPU's AMD-V lacks {what}"),
        }
    }
}

/// SVM features (CPUID Fn8000_000A).
#[derive(Debug, Clone, Copy)]
pub struct SvmCaps {
    /// SVM revision (EAX[7:0]).
    pub revision: u32,
    /// Number of ASIDs (EBX).
    pub asids: u32,
    /// Feature bits (EDX).
    pub features: u32,
}

impl SvmCaps {
    /// Reads CPUID and VM_CR.
    pub fn read() -> Result<Self, SvmUnavailable> {
        // CPUID is unprivileged; the extended maximum leaf is checked before leaf 8000_000A.
        let max = __cpuid(0x8000_0000).eax;
        if max < 0x8000_000A || __cpuid(0x8000_0001).ecx & (1 << 2) == 0 {
            return Err(SvmUnavailable::NotSupported);
        }
        // SAFETY: VM_CR exists on every CPU that reports SVM (APM Vol. 2, 15.30.1).
        let vm_cr = unsafe { instr::rdmsr(msr::VM_CR) };
        if vm_cr & (1 << 4) != 0 {
            return Err(SvmUnavailable::DisabledByFirmware);
        }
        let leaf = __cpuid(0x8000_000A);
        let caps = Self {
            revision: leaf.eax & 0xFF,
            asids: leaf.ebx,
            features: leaf.edx,
        };
        if !caps.has_npt() {
            return Err(SvmUnavailable::Missing("nested paging"));
        }
        Ok(caps)
    }

    /// Nested paging (EDX bit 0).
    pub fn has_npt(&self) -> bool {
        self.features & (1 << 0) != 0
    }

    /// Next-RIP saved on intercepts (EDX bit 3); without it Castor decodes instruction lengths.
    pub fn has_nrips(&self) -> bool {
        self.features & (1 << 3) != 0
    }

    /// VMCB clean bits (EDX bit 5).
    pub fn has_clean_bits(&self) -> bool {
        self.features & (1 << 5) != 0
    }

    /// TLB flush by ASID (EDX bit 6).
    pub fn has_flush_by_asid(&self) -> bool {
        self.features & (1 << 6) != 0
    }

    /// Decode assists (EDX bit 7).
    pub fn has_decode_assists(&self) -> bool {
        self.features & (1 << 7) != 0
    }

    /// Pause filter (EDX bit 10).
    pub fn has_pause_filter(&self) -> bool {
        self.features & (1 << 10) != 0
    }
}
