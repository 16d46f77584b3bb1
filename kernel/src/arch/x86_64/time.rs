// SPDX-License-Identifier: MIT OR Apache-2.0
//! TSC and local-APIC-timer frequencies, calibrated against the PIT, and busy-wait delays.

use core::sync::atomic::{AtomicU64, Ordering};

use alloc::vec::Vec;

use super::{apic, instr, pit};
use crate::calibration;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick in 32.32 fixed point, for [`now_ns`] (a multiply and a shift where
/// dividing by the rate would be a 128-bit division on every call).
static NS_PER_TICK_FP32: AtomicU64 = AtomicU64::new(0);
/// Unix time read from the machine's RTC at calibration, and the TSC value then.
static BOOT_UNIX: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
static LAPIC_TIMER_HZ: AtomicU64 = AtomicU64::new(0);

/// Calibration window: 50 ms of PIT time.
const WINDOW_TICKS: u16 = 59_659;

/// Calibration result.
#[derive(Debug, Clone, Copy)]
pub struct Calibration {
    /// TSC increments per second.
    pub tsc_hz: u64,
    /// Local APIC timer decrements per second (after the divide-by-16).
    pub lapic_timer_hz: u64,
    /// PIT windows measured.
    pub windows: usize,
    /// How far the TSC rate can be off, in parts per million (its window's brackets).
    pub slack_ppm: u64,
}

/// Measures the TSC and local APIC timer rates on this CPU against PIT windows, keeping the
/// median of the windows measured without interruption ([`crate::calibration::pick`]).
pub fn calibrate() -> Calibration {
    let mut windows: Vec<Window> = Vec::new();
    let best = loop {
        windows.push(measure_window());
        if let Some(w) = calibration::pick(&windows, |w| w.edges) {
            break w;
        }
    };
    let window_ns = u64::from(WINDOW_TICKS) * 1_000_000_000 / pit::FREQUENCY_HZ;
    let per_second = |delta: u64| delta.saturating_mul(1_000_000_000) / window_ns.max(1);
    let cal = Calibration {
        tsc_hz: per_second(best.edges.ticks()),
        lapic_timer_hz: per_second(best.lapic_ticks),
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

/// One PIT window: the TSC around its edges, and the LAPIC timer's count across it.
#[derive(Clone, Copy)]
struct Window {
    edges: pit::Edges,
    lapic_ticks: u64,
}

fn measure_window() -> Window {
    let (edges, lapic_end) = pit::measure(
        WINDOW_TICKS,
        || apic::timer_start_oneshot_masked(u32::MAX),
        apic::timer_current,
    );
    apic::timer_stop();
    Window {
        edges,
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
