// SPDX-License-Identifier: MIT OR Apache-2.0
//! TSC and local-APIC-timer frequencies, calibrated against the ACPI PM timer or the PIT, and
//! busy-wait delays.

use core::sync::atomic::{AtomicU64, Ordering};

use alloc::vec::Vec;

use super::pm_timer::{self, PmTimer};
use super::{apic, instr, pit};
use crate::calibration::{self, Edges};

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick in 32.32 fixed point, for [`now_ns`] (a multiply and a shift where
/// dividing by the rate would be a 128-bit division on every call).
static NS_PER_TICK_FP32: AtomicU64 = AtomicU64::new(0);
/// Unix time read from the machine's RTC at calibration, and the TSC value then.
static BOOT_UNIX: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
static LAPIC_TIMER_HZ: AtomicU64 = AtomicU64::new(0);

/// Calibration window: 50 ms of the reference timer.
const WINDOW_MS: u64 = 50;

/// What the TSC and LAPIC timer are calibrated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The ACPI PM timer, read directly (preferred: see [`pm_timer`]).
    PmTimer(PmTimer),
    /// The PIT's channel 2 countdown, polled (machines whose FADT names no PM timer).
    Pit,
}

impl Reference {
    fn hz(self) -> u64 {
        match self {
            Self::PmTimer(_) => pm_timer::FREQUENCY_HZ,
            Self::Pit => pit::FREQUENCY_HZ,
        }
    }

    /// Name for the boot log.
    pub fn name(self) -> &'static str {
        match self {
            Self::PmTimer(_) => "the ACPI PM timer",
            Self::Pit => "the PIT",
        }
    }
}

/// Calibration result.
#[derive(Debug, Clone, Copy)]
pub struct Calibration {
    /// TSC increments per second.
    pub tsc_hz: u64,
    /// Local APIC timer decrements per second (after the divide-by-16).
    pub lapic_timer_hz: u64,
    /// What they were measured against.
    pub reference: Reference,
    /// Reference windows measured.
    pub windows: usize,
    /// How far the TSC rate can be off, in parts per million (its window's brackets).
    pub slack_ppm: u64,
}

/// Measures the TSC and local APIC timer rates on this CPU against windows of `reference`,
/// keeping the median of the windows measured without interruption
/// ([`crate::calibration::pick`]).
pub fn calibrate(reference: Reference) -> Calibration {
    let mut windows: Vec<Window> = Vec::new();
    let best = loop {
        windows.push(measure_window(reference));
        if let Some(w) = calibration::pick(&windows, |w| w.edges, |w| w.per_second(w.edges.ticks()))
        {
            break w;
        }
    };
    let cal = Calibration {
        tsc_hz: best.per_second(best.edges.ticks()),
        lapic_timer_hz: best.per_second(best.lapic_ticks),
        reference,
        windows: windows.len(),
        slack_ppm: best.edges.slack() * 1_000_000 / best.edges.ticks().max(1),
    };
    TSC_HZ.store(cal.tsc_hz, Ordering::Relaxed);
    NS_PER_TICK_FP32.store(
        (1_000_000_000u128 << 32)
            .checked_div(u128::from(cal.tsc_hz))
            .map_or(0, |fp| u64::try_from(fp).unwrap_or(u64::MAX)),
        Ordering::Relaxed,
    );
    LAPIC_TIMER_HZ.store(cal.lapic_timer_hz, Ordering::Relaxed);
    BOOT_UNIX.store(
        super::cmos::read_unix_time().unwrap_or(0),
        Ordering::Relaxed,
    );
    BOOT_TSC.store(instr::rdtsc(), Ordering::Relaxed);
    cal
}

/// One reference window: the TSC around its edges, the reference ticks between them, and the
/// LAPIC timer's count across it.
#[derive(Clone, Copy)]
struct Window {
    edges: Edges,
    reference_ticks: u64,
    reference_hz: u64,
    lapic_ticks: u64,
}

impl Window {
    /// `count` ticks across this window as a rate per second.
    fn per_second(&self, count: u64) -> u64 {
        let rate = u128::from(count) * u128::from(self.reference_hz)
            / u128::from(self.reference_ticks.max(1));
        u64::try_from(rate).unwrap_or(u64::MAX)
    }
}

fn measure_window(reference: Reference) -> Window {
    let hz = reference.hz();
    let ticks = hz * WINDOW_MS / 1000;
    let start_lapic = || apic::timer_start_oneshot_masked(u32::MAX);
    let (edges, reference_ticks, lapic_end) = match reference {
        Reference::PmTimer(timer) => {
            let (edges, counted, lapic) =
                timer.measure(ticks as u32, start_lapic, apic::timer_current);
            (edges, u64::from(counted), lapic)
        }
        Reference::Pit => {
            let (edges, lapic) = pit::measure(ticks as u16, start_lapic, apic::timer_current);
            (edges, ticks, lapic)
        }
    };
    apic::timer_stop();
    Window {
        edges,
        reference_ticks,
        reference_hz: hz,
        lapic_ticks: u64::from(u32::MAX - lapic_end),
    }
}

/// Wall-clock Unix time: the RTC's reading at boot plus the TSC-measured time since (0-based if
/// the machine has no readable RTC).
pub fn unix_now() -> u64 {
    let elapsed = instr::rdtsc().wrapping_sub(BOOT_TSC.load(Ordering::Relaxed));
    BOOT_UNIX.load(Ordering::Relaxed) + elapsed / tsc_hz().max(1)
}

/// Calibrated TSC rate (0 before [`calibrate`]).
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Calibrated local APIC timer rate (0 before [`calibrate`]).
pub fn lapic_timer_hz() -> u64 {
    LAPIC_TIMER_HZ.load(Ordering::Relaxed)
}

/// Nanoseconds since an arbitrary origin, from the TSC (taken as 1 GHz before [`calibrate`]).
/// Off from dividing by the rate by less than one part in 2^32 (a few microseconds a day at
/// GHz rates), and monotonic as the TSC is.
pub fn now_ns() -> u64 {
    let tsc = instr::rdtsc();
    match NS_PER_TICK_FP32.load(Ordering::Relaxed) {
        0 => tsc,
        fp => ((u128::from(tsc) * u128::from(fp)) >> 32) as u64,
    }
}

/// Busy-waits at least `us` microseconds.
pub fn delay_us(us: u64) {
    let start = instr::rdtsc();
    let ticks = tsc_hz().saturating_mul(us) / 1_000_000;
    while instr::rdtsc().wrapping_sub(start) < ticks {
        instr::pause();
    }
}

/// Runs `start` when a PIT countdown of `ticks` (1.193182 MHz) begins and `end` when it expires;
/// returns the window's length in nanoseconds. For cross-checking other timers against the PIT.
pub fn pit_window(ticks: u16, start: impl FnOnce(), end: impl FnOnce()) -> u64 {
    pit::measure(ticks, start, end);
    u64::from(ticks) * 1_000_000_000 / pit::FREQUENCY_HZ
}
