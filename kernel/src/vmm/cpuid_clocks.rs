// SPDX-License-Identifier: MIT OR Apache-2.0
//! The CPUID leaves that report the guest's clock rates (kept apart from the feature filter in
//! `cpuid`).

use super::cpuid::Regs;

/// The local APIC timer's input clock Castor gives guests: the core crystal clock leaf 0x15
/// reports (a common Intel value; SDM Vol. 3A, 11.5.4 and 20.7.3).
pub const LAPIC_TIMER_HZ: u64 = 25_000_000;

/// The rates of the guest's TSC and of its local APIC timer's input clock, in Hz.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clocks {
    /// The TSC.
    pub tsc_hz: u64,
    /// The local APIC timer's input (the core crystal clock).
    pub lapic_hz: u64,
}

/// `n / d` reduced until both fit in 32 bits.
fn ratio(mut n: u64, mut d: u64) -> (u32, u32) {
    let (mut a, mut b) = (n, d);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    (n, d) = (n / a.max(1), d / a.max(1));
    while n > u64::from(u32::MAX) || d > u64::from(u32::MAX) {
        (n, d) = (n >> 1, (d >> 1).max(1));
    }
    (n as u32, d as u32)
}

/// Leaves 0x15 and 0x16 (Intel SDM Vol. 2A, CPUID, "Time Stamp Counter and Nominal Core
/// Crystal Clock Information" and "Processor Frequency Information"), which tell a guest its
/// TSC rate and its local APIC timer's clock (SDM Vol. 3A, 20.7.3; Linux calibrates neither
/// when they are given): 0x15 EAX/EBX the TSC / crystal ratio, ECX the crystal (the local
/// APIC timer's input) in Hz; 0x16 the base and maximum frequency (the TSC's) and the bus
/// (reference) frequency in MHz. `None` for other leaves or unknown rates. Only Intel
/// defines these leaves; the caller answers them where the host's highest basic leaf reaches
/// them (AMD processors stop below 0x15, so an AMD guest calibrates its timers itself).
pub fn clock_leaf(leaf: u32, clocks: Clocks) -> Option<Regs> {
    if clocks.tsc_hz == 0 || clocks.lapic_hz == 0 {
        return None;
    }
    let mhz = |hz: u64| u32::try_from(hz / 1_000_000).unwrap_or(u32::MAX);
    match leaf {
        0x15 => {
            let (tsc, crystal) = ratio(clocks.tsc_hz, clocks.lapic_hz);
            Some(Regs {
                eax: crystal,
                ebx: tsc,
                ecx: u32::try_from(clocks.lapic_hz).unwrap_or(0),
                edx: 0,
            })
        }
        0x16 => Some(Regs {
            eax: mhz(clocks.tsc_hz),
            ebx: mhz(clocks.tsc_hz),
            ecx: mhz(clocks.lapic_hz),
            edx: 0,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_leaves_give_the_tsc_and_lapic_timer_rates() {
        let clocks = Clocks {
            tsc_hz: 2_893_299_000,
            lapic_hz: 25_000_000,
        };
        let l15 = clock_leaf(0x15, clocks).unwrap();
        assert_eq!(l15.ecx, 25_000_000);
        assert_eq!(
            u64::from(l15.ecx) * u64::from(l15.ebx) / u64::from(l15.eax),
            clocks.tsc_hz,
            "crystal * EBX / EAX is the TSC rate"
        );
        let l16 = clock_leaf(0x16, clocks).unwrap();
        assert_eq!((l16.eax, l16.ebx, l16.ecx), (2893, 2893, 25));
        assert_eq!(clock_leaf(0x14, clocks), None);
        let unknown = Clocks {
            tsc_hz: 0,
            ..clocks
        };
        assert_eq!(clock_leaf(0x15, unknown), None, "before calibration");
        let huge = clock_leaf(
            0x15,
            Clocks {
                tsc_hz: u64::MAX,
                lapic_hz: 3,
            },
        )
        .unwrap();
        assert!(huge.eax > 0 && huge.ebx > 0);
    }
}
