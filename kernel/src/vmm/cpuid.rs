// SPDX-License-Identifier: MIT OR Apache-2.0
//! What guests see from CPUID: the host's answer, filtered down to what Castor virtualizes, plus
//! a hypervisor leaf naming Castor (Intel SDM Vol. 2A, CPUID; the 0x4000_0000 range is the
//! de-facto hypervisor range, as used by KVM, Hyper-V and Xen).
//!
//! Vendor neutral: VT-x and AMD-V back ends both call [`filter`].

/// Signature in EBX, ECX, EDX of leaf 0x4000_0000.
pub const SIGNATURE: &[u8; 12] = b"CastorCastor";
/// Highest hypervisor leaf.
pub const MAX_HYPERVISOR_LEAF: u32 = 0x4000_0001;
/// Hypercall ABI version reported in EAX of leaf 0x4000_0001.
pub const HYPERCALL_ABI_VERSION: u32 = 1;

/// Register values of one CPUID answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Regs {
    /// EAX.
    pub eax: u32,
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
}

impl From<core::arch::x86_64::CpuidResult> for Regs {
    fn from(r: core::arch::x86_64::CpuidResult) -> Self {
        Self {
            eax: r.eax,
            ebx: r.ebx,
            ecx: r.ecx,
            edx: r.edx,
        }
    }
}

mod bits {
    // Leaf 1 ECX.
    pub const MONITOR: u32 = 1 << 3;
    pub const VMX: u32 = 1 << 5;
    pub const SMX: u32 = 1 << 6;
    pub const EST: u32 = 1 << 7;
    pub const TM2: u32 = 1 << 8;
    pub const PDCM: u32 = 1 << 15;
    pub const X2APIC: u32 = 1 << 21;
    pub const TSC_DEADLINE: u32 = 1 << 24;
    pub const XSAVE: u32 = 1 << 26;
    pub const OSXSAVE: u32 = 1 << 27;
    pub const AVX: u32 = 1 << 28;
    pub const F16C: u32 = 1 << 29;
    pub const HYPERVISOR: u32 = 1 << 31;
    // Leaf 1 EDX.
    pub const ACPI: u32 = 1 << 22;
    pub const TM: u32 = 1 << 29;
    pub const PBE: u32 = 1 << 31;
    // Leaf 7.0 EBX.
    pub const TSC_ADJUST: u32 = 1 << 1;
    pub const SGX: u32 = 1 << 2;
    pub const RDT_M: u32 = 1 << 12;
    pub const RDT_A: u32 = 1 << 15;
    pub const INTEL_PT: u32 = 1 << 25;
    pub const HLE: u32 = 1 << 4;
    pub const AVX2: u32 = 1 << 5;
    pub const INVPCID: u32 = 1 << 10;
    pub const RTM: u32 = 1 << 11;
    pub const MPX: u32 = 1 << 14;
    pub const AVX512: u32 = castor_ft::pair::cpu_model::LEAF7_EBX_AVX512;
    // Leaf 0x8000_0001 ECX.
    pub const SVM: u32 = 1 << 2;
}

/// The guest's answer for `leaf`/`subleaf`, given the host's answer and the vCPU's APIC id.
///
/// Hidden: VMX/SVM (no nested virtualization), XSAVE and everything needing it (AVX and later:
/// guests then never execute XSETBV), MONITOR/MWAIT, x2APIC (the local APIC model is xAPIC
/// only), power and thermal management, performance monitoring, INVPCID (needs a VMX
/// control Castor does not set), TSX and MPX, and what needs MSRs Castor does not emulate:
/// IA32_TSC_ADJUST, SGX, resource director technology, processor trace. Shown: the hypervisor bit, the TSC-deadline timer
/// (`devices::lapic` has it, whatever the host) and Castor's leaves.
pub fn filter(leaf: u32, subleaf: u32, host: Regs, apic_id: u8) -> Regs {
    use bits::*;
    let mut r = host;
    match leaf {
        0x1 => {
            r.ebx = (r.ebx & 0x00FF_FFFF) | (u32::from(apic_id) << 24);
            r.ecx &=
                !(MONITOR | VMX | SMX | EST | TM2 | PDCM | X2APIC | XSAVE | OSXSAVE | AVX | F16C);
            // The local APIC model has the TSC-deadline timer whatever the host's.
            r.ecx |= HYPERVISOR | TSC_DEADLINE;
            r.edx &= !(ACPI | TM | PBE);
        }
        0x5 | 0x6 | 0xA | 0xD => r = Regs::default(),
        0x7 => {
            if subleaf == 0 {
                r.eax = 0;
                r.ebx &= !(TSC_ADJUST
                    | SGX
                    | HLE
                    | AVX2
                    | INVPCID
                    | RTM
                    | RDT_M
                    | MPX
                    | RDT_A
                    | AVX512
                    | INTEL_PT);
                r.ecx = 0;
                r.edx = 0;
            } else {
                r = Regs::default();
            }
        }
        0x4000_0000 => {
            let word = |i: usize| {
                u32::from_le_bytes([
                    SIGNATURE[i],
                    SIGNATURE[i + 1],
                    SIGNATURE[i + 2],
                    SIGNATURE[i + 3],
                ])
            };
            r = Regs {
                eax: MAX_HYPERVISOR_LEAF,
                ebx: word(0),
                ecx: word(4),
                edx: word(8),
            };
        }
        0x4000_0001 => {
            r = Regs {
                eax: HYPERCALL_ABI_VERSION,
                ..Regs::default()
            }
        }
        0x4000_0002..=0x4FFF_FFFF => r = Regs::default(),
        0x8000_0001 => r.ecx &= !SVM,
        _ => {}
    }
    r
}

/// [`filter`], then narrowed to `model` when the guest belongs to a pair that agreed on one
/// ([`super::cpu_model::offer`]): what a paired guest sees is the same on either host.
pub fn filter_with(
    model: Option<&castor_ft::pair::cpu_model::CpuModel>,
    leaf: u32,
    subleaf: u32,
    host: Regs,
    apic_id: u8,
) -> Regs {
    let r = filter(leaf, subleaf, host, apic_id);
    model.map_or(r, |m| super::cpu_model::offer(m, leaf, subleaf, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf1_hides_virtualization_and_xsave_and_sets_hypervisor() {
        let host = Regs {
            eax: 0x906ea,
            ebx: 0x0310_0800,
            ecx: 0xfffa_3223,
            edx: 0xbfeb_fbff,
        };
        let g = filter(1, 0, host, 3);
        assert_eq!(g.eax, host.eax);
        assert_eq!(g.ebx >> 24, 3, "APIC id of the vCPU");
        assert_eq!(g.ebx & 0xFF_FFFF, 0x10_0800);
        assert_eq!(
            g.ecx & (bits::VMX | bits::XSAVE | bits::OSXSAVE | bits::AVX | bits::X2APIC),
            0
        );
        assert_ne!(g.ecx & bits::HYPERVISOR, 0);
    }

    #[test]
    fn tsc_deadline_is_offered_and_x2apic_is_not() {
        let g = filter(
            1,
            0,
            Regs {
                ecx: u32::MAX,
                ..Regs::default()
            },
            0,
        );
        assert_ne!(g.ecx & bits::TSC_DEADLINE, 0);
        let g = filter(1, 0, Regs::default(), 0);
        assert_ne!(
            g.ecx & bits::TSC_DEADLINE,
            0,
            "even where the host lacks it"
        );
        assert_eq!(g.ecx & bits::X2APIC, 0);
    }

    #[test]
    fn hypervisor_leaves_name_castor() {
        let g = filter(0x4000_0000, 0, Regs::default(), 0);
        let mut sig = [0u8; 12];
        sig[..4].copy_from_slice(&g.ebx.to_le_bytes());
        sig[4..8].copy_from_slice(&g.ecx.to_le_bytes());
        sig[8..].copy_from_slice(&g.edx.to_le_bytes());
        assert_eq!(&sig, SIGNATURE);
        assert_eq!(g.eax, MAX_HYPERVISOR_LEAF);
        assert_eq!(
            filter(0x4000_0001, 0, Regs::default(), 0).eax,
            HYPERCALL_ABI_VERSION
        );
        let noise = Regs {
            eax: 1,
            ebx: 2,
            ecx: 3,
            edx: 4,
        };
        assert_eq!(filter(0x4000_0100, 0, noise, 0), Regs::default());
    }

    #[test]
    fn extended_leaf_hides_svm_and_leaf7_hides_avx2() {
        let g = filter(
            0x8000_0001,
            0,
            Regs {
                ecx: 0x0000_0175,
                ..Regs::default()
            },
            0,
        );
        assert_eq!(g.ecx & bits::SVM, 0);
        let g = filter(
            7,
            0,
            Regs {
                ebx: u32::MAX,
                ecx: 5,
                ..Regs::default()
            },
            0,
        );
        assert_eq!(g.ebx & (bits::AVX2 | bits::INVPCID), 0);
        assert_eq!(
            g.ebx & bits::TSC_ADJUST,
            0,
            "IA32_TSC_ADJUST is not emulated"
        );
        assert_eq!(
            (
                g.ecx,
                filter(
                    7,
                    1,
                    Regs {
                        eax: 9,
                        ..Regs::default()
                    },
                    0
                )
                .eax
            ),
            (0, 0)
        );
        assert_eq!(
            filter(
                0xD,
                0,
                Regs {
                    eax: 7,
                    ..Regs::default()
                },
                0
            ),
            Regs::default()
        );
    }
}
