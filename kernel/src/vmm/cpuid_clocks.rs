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

/// The highest basic leaf Castor's clock leaves need.
pub const CLOCK_LEAVES_END: u32 = 0x16;

/// What the host's leaf 0 says that decides the clock leaves: its highest basic leaf and
/// whether it is an Intel processor (the only vendor that defines leaves 0x15 and 0x16, and
/// the only one for which Linux reads them: `native_calibrate_tsc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLeaf0 {
    /// EAX of leaf 0.
    pub max_basic: u32,
    /// EBX, EDX, ECX of leaf 0 spell "GenuineIntel".
    pub intel: bool,
}

impl HostLeaf0 {
    /// From the host's leaf-0 answer.
    pub fn new(leaf0: Regs) -> Self {
        let intel = [leaf0.ebx, leaf0.edx, leaf0.ecx]
            == [*b"Genu", *b"ineI", *b"ntel"].map(u32::from_le_bytes);
        Self {
            max_basic: leaf0.eax,
            intel,
        }
    }
}

/// A single host's answer for `leaf` where the clock leaves decide it, `None` where the
/// ordinary filter does: on an Intel host with known rates, leaves 0x15 and 0x16 are always
/// given ([`clock_leaf`]) and leaf 0 reaches at least 0x16, even where the host's own CPUID
/// stops lower (Bochs' models, older parts): Linux then never calibrates its TSC against an
/// emulated PIT through exits, which fails or misreads under emulators. Basic leaves between
/// the host's highest and 0x16 read as zeros rather than repeating the host's highest leaf
/// as an Intel CPU does (SDM Vol. 2A, CPUID, "If a value entered for CPUID.EAX is higher than
/// the maximum input value ..."). `filtered0` is the filtered answer for leaf 0.
pub fn single_host_leaf(
    leaf: u32,
    host: HostLeaf0,
    clocks: Clocks,
    filtered0: Regs,
) -> Option<Regs> {
    let offered = host.intel && clocks.tsc_hz != 0 && clocks.lapic_hz != 0;
    match leaf {
        0 if offered => Some(Regs {
            eax: filtered0.eax.max(CLOCK_LEAVES_END),
            ..filtered0
        }),
        0x15 | 0x16 if offered => clock_leaf(leaf, clocks),
        l if offered && l > host.max_basic && l < CLOCK_LEAVES_END => Some(Regs::default()),
        _ => None,
    }
}

/// The TSC / crystal ratio as leaf 0x15's EBX / EAX. Linux multiplies the crystal in kHz by
/// EBX in 32-bit arithmetic (`native_calibrate_tsc`), so EBX stays at most
/// `u32::MAX / crystal_khz`: the exact reduced ratio where it fits, otherwise the closest
/// ratio under that bound (real parts report small ratios such as 232/2; at a 25 MHz crystal
/// the bound leaves a resolution of about 20 kHz at 3 GHz).
fn tsc_ratio(tsc_hz: u64, crystal_hz: u64) -> (u32, u32) {
    let (mut a, mut b) = (tsc_hz, crystal_hz);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let (n, d) = (tsc_hz / a.max(1), crystal_hz / a.max(1));
    let max_ebx = u64::from(u32::MAX) / (crystal_hz / 1000).max(1);
    if n <= max_ebx && d <= u64::from(u32::MAX) {
        return (n as u32, d as u32);
    }
    // The largest denominator whose numerator stays under the bound.
    let (tsc, crystal) = (u128::from(tsc_hz), u128::from(crystal_hz.max(1)));
    let eax = (u128::from(max_ebx) * crystal / tsc.max(1)).clamp(1, u128::from(u32::MAX));
    let ebx = ((tsc * eax + crystal / 2) / crystal).clamp(1, u128::from(max_ebx));
    (ebx as u32, eax as u32)
}

/// Leaves 0x15 and 0x16 (Intel SDM Vol. 2A, CPUID, "Time Stamp Counter and Nominal Core
/// Crystal Clock Information" and "Processor Frequency Information"), which tell a guest its
/// TSC rate and its local APIC timer's clock (SDM Vol. 3A, 20.7.3; Linux calibrates neither
/// when they are given): 0x15 EAX/EBX the TSC / crystal ratio, ECX the crystal (the local
/// APIC timer's input) in Hz; 0x16 the base and maximum frequency (the TSC's) and the bus
/// (reference) frequency in MHz. `None` for other leaves or unknown rates. Only Intel
/// defines these leaves ([`single_host_leaf`] decides where they are given; an AMD guest
/// calibrates its timers itself).
pub fn clock_leaf(leaf: u32, clocks: Clocks) -> Option<Regs> {
    if clocks.tsc_hz == 0 || clocks.lapic_hz == 0 {
        return None;
    }
    let mhz = |hz: u64| u32::try_from(hz / 1_000_000).unwrap_or(u32::MAX);
    match leaf {
        0x15 => {
            let (tsc, crystal) = tsc_ratio(clocks.tsc_hz, clocks.lapic_hz);
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
        assert!(linux_tsc_khz(l15).abs_diff(2_893_299) < 290, "{l15:?}");
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

    /// What Linux computes from leaf 0x15 (`native_calibrate_tsc`): the crystal in kHz times
    /// EBX, in 32-bit unsigned arithmetic, over EAX.
    fn linux_tsc_khz(l15: Regs) -> u32 {
        (l15.ecx / 1000).wrapping_mul(l15.ebx) / l15.eax
    }

    /// Linux's 32-bit product must not wrap: a TSC rate that is no round multiple of the
    /// crystal (Bochs' calibrated 20.000133 MHz) once gave a guest 71 kHz.
    #[test]
    fn linux_reads_the_tsc_rate_without_overflow() {
        for tsc_hz in [
            20_000_133,
            2_893_299_000,
            3_000_000_000,
            999_999_999,
            5_123_456_789,
        ] {
            let l15 = clock_leaf(
                0x15,
                Clocks {
                    tsc_hz,
                    lapic_hz: LAPIC_TIMER_HZ,
                },
            )
            .unwrap();
            let khz = u64::from(linux_tsc_khz(l15));
            let want = tsc_hz / 1000;
            assert!(
                khz.abs_diff(want) * 10_000 <= want,
                "{tsc_hz} Hz read as {khz} kHz ({l15:?})"
            );
        }
    }

    const INTEL0: Regs = Regs {
        eax: 0xD,
        ebx: u32::from_le_bytes(*b"Genu"),
        edx: u32::from_le_bytes(*b"ineI"),
        ecx: u32::from_le_bytes(*b"ntel"),
    };

    /// An Intel host whose CPUID stops at leaf 0xD (as Bochs' models do) still tells the
    /// guest its clocks: leaf 0 reaches 0x16, 0x15/0x16 hold the rates, and the leaves in
    /// between are empty instead of repeating leaf 0xD.
    #[test]
    fn an_intel_host_below_leaf_0x15_still_gives_the_clock_leaves() {
        let clocks = Clocks {
            tsc_hz: 20_000_000,
            lapic_hz: LAPIC_TIMER_HZ,
        };
        let host = HostLeaf0::new(INTEL0);
        assert!(host.intel);
        let l0 = single_host_leaf(0, host, clocks, INTEL0).unwrap();
        assert_eq!((l0.eax, l0.ebx), (0x16, INTEL0.ebx));
        let l15 = single_host_leaf(0x15, host, clocks, INTEL0).unwrap();
        assert_eq!(
            u64::from(l15.ecx) / 1000 * u64::from(l15.ebx) / u64::from(l15.eax),
            20_000,
            "Linux's native_calibrate_tsc: crystal kHz * EBX / EAX"
        );
        assert_eq!(
            single_host_leaf(0x10, host, clocks, INTEL0),
            Some(Regs::default())
        );
        assert_eq!(
            single_host_leaf(0xB, host, clocks, INTEL0),
            None,
            "the host has it"
        );
        assert_eq!(single_host_leaf(0x17, host, clocks, INTEL0), None);
    }

    #[test]
    fn amd_hosts_and_unknown_rates_get_no_clock_leaves() {
        let clocks = Clocks {
            tsc_hz: 2_000_000_000,
            lapic_hz: LAPIC_TIMER_HZ,
        };
        let amd0 = Regs {
            eax: 0x10,
            ebx: u32::from_le_bytes(*b"Auth"),
            edx: u32::from_le_bytes(*b"enti"),
            ecx: u32::from_le_bytes(*b"cAMD"),
        };
        let amd = HostLeaf0::new(amd0);
        assert!(!amd.intel);
        for leaf in [0, 0x15, 0x16] {
            assert_eq!(single_host_leaf(leaf, amd, clocks, amd0), None);
        }
        let unknown = Clocks {
            tsc_hz: 0,
            ..clocks
        };
        let intel = HostLeaf0::new(INTEL0);
        assert_eq!(single_host_leaf(0x15, intel, unknown, INTEL0), None);
        assert_eq!(single_host_leaf(0, intel, unknown, INTEL0), None);
    }
}
