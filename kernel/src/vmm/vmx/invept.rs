// SPDX-License-Identifier: MIT OR Apache-2.0
//! Which INVEPT type this CPU supports, from IA32_VMX_EPT_VPID_CAP (Intel SDM Vol. 3D, A.10
//! "VPID and EPT Capabilities": bit 20 INVEPT, bit 25 single-context, bit 26 all-context).
//! INVEPT with an unsupported type fails (SDM Vol. 3C, VMX Instruction Reference, INVEPT), so
//! the VT-x back end issues only the type chosen here (`invalidate`).

/// IA32_VMX_EPT_VPID_CAP bit 20: INVEPT is supported.
const CAP_INVEPT: u64 = 1 << 20;
/// Bit 25: single-context INVEPT is supported.
const CAP_SINGLE: u64 = 1 << 25;
/// Bit 26: all-context INVEPT is supported.
const CAP_ALL: u64 = 1 << 26;
/// The capability bits [`invept_type`] looks at.
pub const CAP_INVEPT_BITS: u64 = CAP_INVEPT | CAP_SINGLE | CAP_ALL;

/// An INVEPT type (the instruction's register operand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum InveptType {
    /// Invalidates the mappings tagged with one EPTP's EP4TA.
    SingleContext = 1,
    /// Invalidates the mappings of every EPTP.
    AllContext = 2,
}

/// The INVEPT type to use on a CPU whose IA32_VMX_EPT_VPID_CAP is `ept_vpid_cap`:
/// single-context where supported, else all-context; `None` if the CPU has no INVEPT or offers
/// neither type (then EPT cannot be used safely).
pub const fn invept_type(ept_vpid_cap: u64) -> Option<InveptType> {
    if ept_vpid_cap & CAP_INVEPT == 0 {
        None
    } else if ept_vpid_cap & CAP_SINGLE != 0 {
        Some(InveptType::SingleContext)
    } else if ept_vpid_cap & CAP_ALL != 0 {
        Some(InveptType::AllContext)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_context_preferred_all_context_as_fallback() {
        let both = CAP_INVEPT | CAP_SINGLE | CAP_ALL;
        assert_eq!(invept_type(both), Some(InveptType::SingleContext));
        assert_eq!(
            invept_type(CAP_INVEPT | CAP_SINGLE),
            Some(InveptType::SingleContext)
        );
        assert_eq!(
            invept_type(CAP_INVEPT | CAP_ALL),
            Some(InveptType::AllContext)
        );
        // A Bochs-like value: EPT 4-level walk, WB, 2 MiB pages, INVEPT with both types.
        assert_eq!(
            invept_type(0x0000_0f01_0631_4141),
            Some(InveptType::SingleContext)
        );
    }

    #[test]
    fn no_usable_type_is_refused_rather_than_skipped() {
        assert_eq!(invept_type(0), None);
        // INVEPT announced, but neither type.
        assert_eq!(invept_type(CAP_INVEPT), None);
        // Types announced without INVEPT itself.
        assert_eq!(invept_type(CAP_SINGLE | CAP_ALL), None);
        // Unrelated capability bits do not make up for them.
        assert_eq!(invept_type(!CAP_INVEPT_BITS), None);
    }
}
