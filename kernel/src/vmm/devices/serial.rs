// SPDX-License-Identifier: MIT OR Apache-2.0
//! A 16550A UART model on COM1 (ports 0x3F8-0x3FF), register layout per the National
//! Semiconductor PC16550D datasheet, section 8. Transmit is immediate (the transmitter is always
//! empty); bytes are collected into lines that the monitor prints and keeps. Receive has no
//! input yet (LSR.DR stays 0). Interrupt generation comes with the virtual interrupt controller.

mod state;

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

use super::state::{DeviceId, DeviceState, StateError, StateReader, StateWriter};
use super::{Effect, PortDevice};
use crate::vmm::vcpu::Width;

/// Base port of COM1.
pub const COM1: u16 = 0x3F8;

const LCR_DLAB: u8 = 1 << 7;
/// LSR: transmit holding register empty, transmitter empty.
const LSR_IDLE: u8 = (1 << 5) | (1 << 6);
/// MSR with loopback off: CTS, DSR, DCD asserted (a terminal is attached).
const MSR_CONNECTED: u8 = (1 << 4) | (1 << 5) | (1 << 7);
const MAX_LINE: usize = 256;
/// IER bits a guest can set.
const IER_WRITABLE: u8 = 0x0F;
/// MCR bits a guest can set.
const MCR_WRITABLE: u8 = 0x1F;

/// The UART's registers and the output collected so far.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Serial {
    ier: u8,
    lcr: u8,
    mcr: u8,
    scratch: u8,
    divisor: u16,
    line: Vec<u8>,
    /// Complete lines written by the guest, not yet taken by the monitor.
    lines: Vec<String>,
    /// Bytes written in total.
    pub bytes_out: u64,
}

impl Serial {
    fn end_line(&mut self) {
        let text = String::from_utf8_lossy(&self.line).into_owned();
        self.lines.push(text);
        self.line.clear();
    }

    fn transmit(&mut self, byte: u8) {
        self.bytes_out += 1;
        match byte {
            b'\n' => self.end_line(),
            b'\r' => {}
            b => {
                self.line.push(b);
                if self.line.len() >= MAX_LINE {
                    self.end_line();
                }
            }
        }
    }
}

impl PortDevice for Serial {
    fn ports(&self) -> RangeInclusive<u16> {
        COM1..=COM1 + 7
    }

    fn read(&mut self, port: u16, _width: Width) -> u32 {
        let dlab = self.lcr & LCR_DLAB != 0;
        u32::from(match port - COM1 {
            0 if dlab => self.divisor as u8,
            1 if dlab => (self.divisor >> 8) as u8,
            0 => 0, // receive buffer: no input
            1 => self.ier,
            2 => 0xC1, // IIR: FIFOs enabled, no interrupt pending
            3 => self.lcr,
            4 => self.mcr,
            5 => LSR_IDLE,
            6 if self.mcr & (1 << 4) != 0 => (self.mcr & 0x0F) << 4, // loopback: outputs fed back
            6 => MSR_CONNECTED,
            _ => self.scratch,
        })
    }

    fn write(&mut self, port: u16, _width: Width, value: u32) -> Effect {
        let v = value as u8;
        let dlab = self.lcr & LCR_DLAB != 0;
        match port - COM1 {
            0 if dlab => self.divisor = (self.divisor & 0xFF00) | u16::from(v),
            1 if dlab => self.divisor = (self.divisor & 0x00FF) | (u16::from(v) << 8),
            0 if self.mcr & (1 << 4) == 0 => self.transmit(v),
            0 => {} // loopback: nothing leaves the chip
            1 => self.ier = v & IER_WRITABLE,
            2 => {} // FCR: FIFOs are modelled as always on and empty
            3 => self.lcr = v,
            4 => self.mcr = v & MCR_WRITABLE,
            5 | 6 => {} // LSR/MSR are read-only
            _ => self.scratch = v,
        }
        Effect::None
    }

    fn take_output(&mut self, end: bool) -> Vec<String> {
        if end && !self.line.is_empty() {
            self.end_line();
        }
        core::mem::take(&mut self.lines)
    }

    fn state_id(&self) -> Option<DeviceId> {
        Some(DeviceId::uart16550(COM1))
    }

    fn save_state(&self, w: &mut StateWriter) {
        DeviceState::save_state(self, w);
    }

    /// Complete lines not taken yet stay: they are this host's output.
    fn restore_state(&mut self, r: &mut StateReader<'_>) -> Result<(), StateError> {
        let restored = <Self as DeviceState>::restore_state(r)?;
        *self = Self {
            lines: core::mem::take(&mut self.lines),
            ..restored
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(s: &mut Serial, text: &str) {
        for b in text.bytes() {
            s.write(COM1, 1, u32::from(b));
        }
    }

    #[test]
    fn lines_are_collected() {
        let mut s = Serial::default();
        out(&mut s, "hello\r\nwor");
        assert_eq!(s.take_output(false), ["hello"]);
        out(&mut s, "ld");
        assert_eq!(s.take_output(true), ["world"]);
        assert_eq!(s.bytes_out, 12);
    }

    #[test]
    fn divisor_latch_scratch_and_status() {
        let mut s = Serial::default();
        s.write(COM1 + 3, 1, 0x83); // DLAB, 8N1
        s.write(COM1, 1, 0x01);
        s.write(COM1 + 1, 1, 0x00);
        assert_eq!(s.read(COM1, 1), 1, "divisor low");
        s.write(COM1 + 3, 1, 0x03);
        assert_eq!(s.bytes_out, 0, "divisor writes are not output");
        s.write(COM1 + 7, 1, 0x42);
        assert_eq!(
            s.read(COM1 + 7, 1),
            0x42,
            "scratch register (UART presence checks)"
        );
        assert_eq!(s.read(COM1 + 5, 1), 0x60, "transmitter always ready");
    }

    #[test]
    fn loopback_does_not_transmit() {
        let mut s = Serial::default();
        s.write(COM1 + 4, 1, 0x1E); // loopback + OUT1/OUT2/RTS
        out(&mut s, "x\n");
        assert_eq!(s.bytes_out, 0);
        assert_eq!(s.read(COM1 + 6, 1) & 0xF0, 0xE0);
    }

    #[test]
    fn long_lines_are_split() {
        let mut s = Serial::default();
        out(&mut s, &"a".repeat(300));
        assert_eq!(s.take_output(false).len(), 1);
        assert_eq!(s.take_output(true)[0].len(), 44);
    }
}
