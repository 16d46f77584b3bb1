// SPDX-License-Identifier: MIT OR Apache-2.0
//! 8254 PIT channel 2 as a calibration reference (Intel 8254 datasheet; the gate and OUT2 are
//! reached through port 0x61 on PC-compatible machines). Polled, no interrupts.

use super::instr::{inb, outb, rdtsc};
pub use crate::calibration::Edges;

/// PIT input clock in Hz.
pub const FREQUENCY_HZ: u64 = 1_193_182;

/// Longest interval one countdown can measure (65535 ticks).
pub const MAX_TICKS: u16 = u16::MAX;

/// Runs `during_start` right before channel 2 starts counting down `ticks` (mode 0, one-shot)
/// and `at_end` right when it reaches zero. Returns the TSC readings around both edges (see
/// [`Edges`]) and `at_end`'s value.
pub fn measure<T>(
    ticks: u16,
    during_start: impl FnOnce(),
    at_end: impl FnOnce() -> T,
) -> (Edges, T) {
    // SAFETY: port 0x61 (bits 0-1: channel 2 gate and speaker enable; bit 5: OUT2), 0x43 (mode
    // register) and 0x42 (channel 2 data) belong to the PIT, used only here, by the BSP at boot.
    unsafe {
        let port61 = inb(0x61) & !0x03;
        outb(0x61, port61); // gate low, speaker off
        outb(0x43, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        outb(0x42, ticks as u8);
        outb(0x42, (ticks >> 8) as u8);
        during_start();
        let before = rdtsc();
        outb(0x61, port61 | 0x01); // gate high: counting starts
        let start = (before, rdtsc());
        let mut running = start.1;
        loop {
            let expired = inb(0x61) & 0x20 != 0;
            let now = rdtsc();
            if expired {
                let result = at_end();
                outb(0x61, port61);
                let end = (running, now);
                return (Edges { start, end }, result);
            }
            running = now;
            core::hint::spin_loop();
        }
    }
}
