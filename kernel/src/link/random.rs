// SPDX-License-Identifier: MIT OR Apache-2.0
//! Randomness for peer-link session ids: RDRAND where the CPU has it (Intel SDM Vol. 1, 7.3.17),
//! mixed with the TSC; the TSC through a SplitMix64 step otherwise. Session ids only need to
//! differ between boots so nonces are never reused under one key.

use castor_ft::link::RandomSource;

use crate::arch::x86_64::instr;

/// The kernel's random source.
pub struct HardwareRandom {
    has_rdrand: bool,
    state: u64,
}

impl HardwareRandom {
    /// Probes CPUID for RDRAND.
    pub fn new() -> Self {
        let has_rdrand = raw_cpuid::CpuId::new()
            .get_feature_info()
            .is_some_and(|f| f.has_rdrand());
        Self {
            has_rdrand,
            state: instr::rdtsc(),
        }
    }

    fn rdrand(&self) -> Option<u64> {
        if !self.has_rdrand {
            return None;
        }
        // Retry as Intel recommends (10 attempts) before falling back.
        (0..10).find_map(|_| {
            let mut value = 0u64;
            // SAFETY: CPUID reports RDRAND; `_rdrand64_step` only writes `value`.
            let ok = unsafe { core::arch::x86_64::_rdrand64_step(&mut value) };
            (ok == 1).then_some(value)
        })
    }
}

impl Default for HardwareRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl RandomSource for HardwareRandom {
    fn next_u64(&mut self) -> u64 {
        // SplitMix64 over the TSC (Steele, Lea, Flood 2014), xored with RDRAND when present.
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15) ^ instr::rdtsc();
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) ^ self.rdrand().unwrap_or(0)
    }
}
