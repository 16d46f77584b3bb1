// SPDX-License-Identifier: MIT OR Apache-2.0
//! The calibrated local APIC timer ticks at the rate it was programmed for, measured against
//! the PIT, with real interrupts delivered through the IDT.

use core::sync::atomic::Ordering;

use super::Verdict;
use crate::arch::x86_64::{apic, instr, percpu, time};
use crate::ensure;

const HZ: u64 = 1000;
/// 50 ms of PIT ticks.
const WINDOW_TICKS: u16 = 59_659;

/// Periodic LAPIC timer at 1 kHz counted over a 50 ms PIT window: 50 ticks ± 20 %.
pub fn lapic_against_pit() -> Verdict {
    let rate = time::lapic_timer_hz();
    ensure!(rate > 0, "LAPIC timer not calibrated");
    ensure!(time::tsc_hz() > 0, "TSC not calibrated");
    let ticks = &percpu::current().timer_ticks;
    let (mut start, mut end) = (0, 0);
    let window_ns = time::pit_window(
        WINDOW_TICKS,
        || {
            apic::timer_start_periodic((rate / HZ) as u32);
            // SAFETY: the IDT is loaded and handles the timer vector.
            unsafe { instr::sti() };
            start = ticks.load(Ordering::Relaxed);
        },
        || end = ticks.load(Ordering::Relaxed),
    );
    instr::cli();
    apic::timer_stop();
    let counted = end - start;
    let expected = window_ns * HZ / 1_000_000_000;
    ensure!(
        counted * 10 >= expected * 8 && counted * 10 <= expected * 12,
        "{counted} ticks in {} ms, expected {expected} ± 20%",
        window_ns / 1_000_000
    );
    Ok(alloc::format!(
        "{counted} ticks of a 1 kHz timer in a {} ms PIT window",
        window_ns / 1_000_000
    ))
}
