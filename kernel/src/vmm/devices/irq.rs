// SPDX-License-Identifier: MIT OR Apache-2.0
//! Interrupt lines between the legacy ISA devices and the interrupt controller, and the byte-wide
//! port convention those devices share.
//!
//! A device never holds a reference to the controller. It exposes its output (a level, or a count
//! of edges still to deliver) and the monitor hands it an [`IrqSink`] when it is time to drive the
//! line: `pit.deliver(&mut pic)`, `rtc.deliver(&mut pic)`. The PC/AT wires sixteen lines, IRQ0-7
//! to the master 8259A and IRQ8-15 to the slave, which cascades into the master's IR2.
//!
//! The 8259A, 8254 and MC146818 are 8-bit parts: the chipset splits a 16- or 32-bit `in`/`out`
//! into byte cycles at consecutive ports. [`read_bytes`] and [`write_bytes`] do the same over a
//! [`ByteIo`] device, so wide accesses behave like on a PC and need no special cases.

use crate::vmm::vcpu::Width;

/// One of the sixteen ISA interrupt lines (IRQ0-15). Holding one proves the number is in range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IrqLine(u8);

impl IrqLine {
    /// 8254 PIT channel 0.
    pub const PIT: Self = Self(0);
    /// Keyboard controller.
    pub const KEYBOARD: Self = Self(1);
    /// The master's IR2, taken by the slave 8259A in cascade mode.
    pub const CASCADE: Self = Self(2);
    /// COM1 (and COM3).
    pub const COM1: Self = Self(4);
    /// MC146818 RTC.
    pub const RTC: Self = Self(8);

    /// Line `n`, if `n` is below 16.
    pub const fn new(n: u8) -> Option<Self> {
        if n < 16 { Some(Self(n)) } else { None }
    }

    /// The line number, 0-15.
    pub const fn number(self) -> u8 {
        self.0
    }
}

/// Where devices drive their interrupt lines (the 8259A pair implements it).
pub trait IrqSink {
    /// Sets the level of `line`: high requests an interrupt. An edge-triggered input latches a
    /// request on a low-to-high transition only; a level-triggered one requests while high.
    fn set_level(&mut self, line: IrqLine, high: bool);

    /// The controller holds a request from `line` that the CPU has not acknowledged yet, so a new
    /// edge on an edge-triggered input would merge with it.
    fn is_requested(&self, line: IrqLine) -> bool;

    /// Raises `line`.
    fn raise(&mut self, line: IrqLine) {
        self.set_level(line, true);
    }

    /// Lowers `line`.
    fn lower(&mut self, line: IrqLine) {
        self.set_level(line, false);
    }

    /// A low-high-low pulse: one request on an edge-triggered input.
    fn pulse(&mut self, line: IrqLine) {
        self.set_level(line, false);
        self.set_level(line, true);
        self.set_level(line, false);
    }
}

/// A device of 8-bit ports.
pub trait ByteIo {
    /// A byte read from `port`; ports the device does not decode read 0xFF.
    fn read_byte(&mut self, port: u16) -> u8;
    /// A byte written to `port`; ports the device does not decode ignore it.
    fn write_byte(&mut self, port: u16, value: u8);
}

/// Byte cycles in an access: widths above 4 are treated as 4, a width of 0 as 1.
fn cycles(width: Width) -> u16 {
    u16::from(width.clamp(1, 4))
}

/// An `in` of `width` bytes at `port`, as byte reads of `port`, `port + 1`, ... (little endian).
pub fn read_bytes(dev: &mut impl ByteIo, port: u16, width: Width) -> u32 {
    (0..cycles(width)).fold(0, |acc, i| {
        acc | u32::from(dev.read_byte(port.wrapping_add(i))) << (8 * i)
    })
}

/// An `out` of `width` bytes at `port`, as byte writes to `port`, `port + 1`, ...
pub fn write_bytes(dev: &mut impl ByteIo, port: u16, width: Width, value: u32) {
    for i in 0..cycles(width) {
        dev.write_byte(port.wrapping_add(i), (value >> (8 * i)) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Regs([u8; 2]);

    impl ByteIo for Regs {
        fn read_byte(&mut self, port: u16) -> u8 {
            match port {
                0x10 | 0x11 => self.0[usize::from(port - 0x10)],
                _ => 0xFF,
            }
        }
        fn write_byte(&mut self, port: u16, value: u8) {
            if let 0x10 | 0x11 = port {
                self.0[usize::from(port - 0x10)] = value;
            }
        }
    }

    #[test]
    fn lines_are_range_checked() {
        assert_eq!(IrqLine::new(15).map(IrqLine::number), Some(15));
        assert_eq!(IrqLine::new(16), None);
        assert_eq!(IrqLine::RTC.number(), 8);
    }

    #[test]
    fn wide_accesses_split_into_byte_cycles() {
        let mut r = Regs([0, 0]);
        write_bytes(&mut r, 0x10, 2, 0xBEEF);
        assert_eq!(r.0, [0xEF, 0xBE]);
        assert_eq!(read_bytes(&mut r, 0x10, 4), 0xFFFF_BEEF);
        assert_eq!(read_bytes(&mut r, 0x11, 1), 0xBE);
        assert_eq!(
            read_bytes(&mut r, 0xFFFF, 2),
            0xFFFF,
            "port numbers wrap, no overflow"
        );
        assert_eq!(read_bytes(&mut r, 0x10, 0), 0xEF, "width 0 acts as 1");
        assert_eq!(
            read_bytes(&mut r, 0x10, 200),
            0xFFFF_BEEF,
            "width capped at 4"
        );
    }
}
