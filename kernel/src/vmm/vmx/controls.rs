// SPDX-License-Identifier: MIT OR Apache-2.0
//! VMX control words computed against the capability MSRs, in one place.
//!
//! Each VMX control capability MSR reports, for its 32-bit control word (Intel SDM Vol. 3D,
//! A.3.1 "Pin-Based VM-Execution Controls", and the same scheme in A.3.2-A.5):
//! - bits 31:0, the **allowed-0 settings**: a bit set here *must be 1* in the control word;
//! - bits 63:32, the **allowed-1 settings**: a bit clear here *must be 0* in the control word.
//!
//! When IA32_VMX_BASIC bit 55 is set, the TRUE_* MSRs must be used instead of the plain ones:
//! they let some "default1" bits be cleared (SDM Vol. 3D, A.2). Castor asks for the bits it
//! requires (an error names any that the CPU cannot set) and the bits it would like (set only if
//! allowed), and always sets what the CPU demands.

/// The allowed settings of one control word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// Bits that must be 1 (allowed-0 settings).
    pub must_be_one: u32,
    /// Bits that may be 1 (allowed-1 settings).
    pub may_be_one: u32,
}

impl Allowed {
    /// From a capability MSR value.
    pub const fn from_msr(value: u64) -> Self {
        Self {
            must_be_one: value as u32,
            may_be_one: (value >> 32) as u32,
        }
    }

    /// Every setting allowed (for secondary controls when the CPU has none: all zero).
    pub const NONE: Allowed = Allowed {
        must_be_one: 0,
        may_be_one: 0,
    };

    /// Whether `bits` may all be set.
    pub const fn allows(&self, bits: u32) -> bool {
        bits & !self.may_be_one == 0
    }

    /// The control word: every `required` bit (error with the unsupported ones if any cannot be
    /// set), the `optional` bits the CPU allows, and the bits the CPU demands.
    pub const fn compute(&self, required: u32, optional: u32) -> Result<u32, u32> {
        let missing = required & !self.may_be_one;
        if missing != 0 {
            return Err(missing);
        }
        Ok(required | (optional & self.may_be_one) | self.must_be_one)
    }
}

/// Checks a CR0 or CR4 value against the VMX fixed-bit MSRs (SDM Vol. 3D, A.7 and A.8):
/// bits set in `fixed0` must be 1, bits clear in `fixed1` must be 0. Returns the value with the
/// required bits set and the forbidden bits cleared.
pub const fn apply_fixed(value: u64, fixed0: u64, fixed1: u64) -> u64 {
    (value | fixed0) & fixed1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_optional_and_default_bits() {
        // Bit 1 must be 1; bits 0..=7 may be 1.
        let a = Allowed::from_msr(0x0000_00ff_0000_0002);
        assert_eq!(a.compute(0b1000_0000, 0b0000_0001), Ok(0b1000_0011));
        // Optional bits outside allowed-1 are dropped silently.
        assert_eq!(a.compute(0, 0x100), Ok(0b10));
        // Required bits outside allowed-1 are an error naming them.
        assert_eq!(a.compute(0x300, 0), Err(0x300));
        assert!(a.allows(0x80) && !a.allows(0x100));
        assert_eq!(Allowed::NONE.compute(0, u32::MAX), Ok(0));
    }

    #[test]
    fn fixed_bits() {
        // Bochs-like CR0: fixed0 = PE|NE|PG, fixed1 = all ones in the low 32 bits.
        let fixed0 = 0x8000_0021;
        let fixed1 = 0xffff_ffff;
        assert_eq!(apply_fixed(0x6000_0011, fixed0, fixed1), 0xe000_0031);
        assert_eq!(
            apply_fixed(1 << 40, 0, fixed1),
            0,
            "bits clear in fixed1 are cleared"
        );
    }
}
