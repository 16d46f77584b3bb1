// SPDX-License-Identifier: MIT OR Apache-2.0
//! The ACPI power-management timer as a calibration reference (ACPI 6.5, 4.8.3.3): a free-running
//! 24- or 32-bit counter at 3.579545 MHz in the I/O space the FADT names. Unlike the PIT, whose
//! expiry can only be found by polling an output bit, its count is read directly: a late poll
//! makes a window longer, never wrong.

use super::instr::{inl, rdtsc};
use crate::calibration::{Edges, counted};

/// The counter's rate in Hz (ACPI 6.5, 4.8.3.3: 3.579545 MHz on every platform).
pub const FREQUENCY_HZ: u64 = 3_579_545;

/// The timer a platform's FADT describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmTimer {
    /// `PM_TMR_BLK`'s I/O port.
    pub port: u16,
    /// Whether the counter has 32 bits (FADT flag `TMR_VAL_EXT`) rather than 24.
    pub wide: bool,
}

impl PmTimer {
    fn mask(self) -> u32 {
        if self.wide { u32::MAX } else { 0x00FF_FFFF }
    }

    /// The count and the TSC just before and just after reading it.
    fn sample(self) -> (u32, (u64, u64)) {
        let before = rdtsc();
        // SAFETY: the port is the FADT's PM timer block; reading it has no side effects, and
        // only calibration (the BSP, at boot) reads it.
        let count = unsafe { inl(self.port) } & self.mask();
        (count, (before, rdtsc()))
    }

    /// Runs `during_start` right before the first reading and `at_end` right after the one that
    /// finds at least `ticks` counted (at most the counter's half range). Returns the TSC
    /// readings around both, the ticks counted between them, and `at_end`'s value.
    pub fn measure<T>(
        self,
        ticks: u32,
        during_start: impl FnOnce(),
        at_end: impl FnOnce() -> T,
    ) -> (Edges, u32, T) {
        let ticks = ticks.min(self.mask() / 2);
        during_start();
        let (first, start) = self.sample();
        loop {
            let (count, end) = self.sample();
            let ticks_now = counted(first, count, self.mask());
            if ticks_now >= ticks {
                return (Edges { start, end }, ticks_now, at_end());
            }
            core::hint::spin_loop();
        }
    }
}
