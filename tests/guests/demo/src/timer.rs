// SPDX-License-Identifier: MIT OR Apache-2.0
//! The step clock: the 8259A pair with only IRQ0 unmasked and the 8254's channel 0 as a rate
//! generator; IRQ0's handler (boot.S) counts [`TICKS`] and acknowledges.

use crate::instr;
use crate::interrupts::PIC_VECTOR_BASE;
use crate::pace::Pace;
use core::sync::atomic::{AtomicU64, Ordering};

/// IRQ0s taken so far (incremented by boot.S's IRQ0 stub).
pub static TICKS: AtomicU64 = AtomicU64::new(0);

const PIC_MASTER: u16 = 0x20;
const PIC_SLAVE: u16 = 0xA0;
const PIT_CHANNEL0: u16 = 0x40;
const PIT_CONTROL: u16 = 0x43;

/// Paces steps: [`Pacer::wait`] returns once per step period.
pub struct Pacer {
    ticks_per_step: u64,
    last: u64,
}

/// Programs the 8259A pair with every line masked but those clear in `master_mask` (the
/// slave's lines all masked).
pub fn program_pics(master_mask: u8) {
    // 8259A datasheet, "Initialization Command Words": ICW1 edge triggered, cascade, ICW4
    // follows; ICW2 vector base; ICW3 slave on IR2 / slave identity 2; ICW4 8086 mode. Then
    // OCW1: the masks.
    let pic: [(u16, u8); 10] = [
        (PIC_MASTER, 0x11),
        (PIC_SLAVE, 0x11),
        (PIC_MASTER + 1, PIC_VECTOR_BASE),
        (PIC_SLAVE + 1, PIC_VECTOR_BASE + 8),
        (PIC_MASTER + 1, 0x04),
        (PIC_SLAVE + 1, 0x02),
        (PIC_MASTER + 1, 0x01),
        (PIC_SLAVE + 1, 0x01),
        (PIC_MASTER + 1, master_mask),
        (PIC_SLAVE + 1, 0xFF),
    ];
    for (port, value) in pic {
        // SAFETY: the 8259A pair's ports; the IDT covers the vectors programmed here.
        unsafe { instr::outb(port, value) };
    }
}

/// Programs the interrupt controllers and the timer for `pace` and unmasks interrupts.
pub fn start(pace: Pace) -> Pacer {
    // Only IRQ0, the PIT.
    program_pics(0xFE);
    // 8254 datasheet, "Control Word Format": channel 0, LSB then MSB, mode 2 (rate
    // generator), binary. A count of 65536 is written as 0.
    let [lsb, msb, ..] = pace.divisor.to_le_bytes();
    for (port, value) in [
        (PIT_CONTROL, 0x34),
        (PIT_CHANNEL0, lsb),
        (PIT_CHANNEL0, msb),
    ] {
        // SAFETY: the PIT's ports; channel 0 drives IRQ0, which the IDT handles.
        unsafe { instr::outb(port, value) };
    }
    instr::enable_interrupts();
    Pacer {
        ticks_per_step: pace.ticks_per_step,
        last: TICKS.load(Ordering::Relaxed),
    }
}

impl Pacer {
    /// Ticks taken so far. The guest makes no exit for this: a hypervisor must interrupt a
    /// guest that only computes by itself (Castor's host timer does) for ticks to arrive.
    pub fn poll_ticks(&self) -> u64 {
        TICKS.load(Ordering::Relaxed)
    }

    /// Halts until `ticks_per_step` ticks have passed since the previous return (or
    /// [`start`]). The period restarts from the tick seen at return, so a step that overran
    /// its period is followed by one step at once, not by a burst of catch-up steps.
    pub fn wait(&mut self) {
        let target = self.last + self.ticks_per_step;
        loop {
            instr::disable_interrupts();
            let now = TICKS.load(Ordering::Relaxed);
            if now >= target {
                instr::enable_interrupts();
                self.last = now;
                return;
            }
            // Interrupts stay masked until HLT, so the tick that wakes us cannot slip in
            // between the check and the halt.
            instr::enable_interrupts_and_halt();
        }
    }
}
