// SPDX-License-Identifier: MIT OR Apache-2.0
//! The legacy 8259 PIC pair: remapped away from the exception vectors and fully masked, since
//! Castor uses the local APIC and I/O APIC. Even masked, an 8259 can raise a spurious IRQ 7/15,
//! which therefore lands on vectors 0x37/0x3F instead of on an exception vector.

use super::instr::{inb, outb};

/// First vector of the remapped master PIC.
pub const VECTOR_BASE: u8 = 0x30;

/// Remaps both PICs to vectors 0x30..0x3F and masks every line (ICW1-ICW4, then OCW1).
pub fn disable() {
    // SAFETY: ports 0x20/0x21 and 0xA0/0xA1 are the 8259 pair on every PC-compatible machine;
    // this is the standard initialization sequence followed by masking all lines.
    unsafe {
        outb(0x20, 0x11);
        outb(0xA0, 0x11);
        outb(0x21, VECTOR_BASE);
        outb(0xA1, VECTOR_BASE + 8);
        outb(0x21, 0x04);
        outb(0xA1, 0x02);
        outb(0x21, 0x01);
        outb(0xA1, 0x01);
        outb(0x21, 0xFF);
        outb(0xA1, 0xFF);
        let _ = inb(0x21);
    }
}
