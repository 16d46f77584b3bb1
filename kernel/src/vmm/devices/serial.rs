// SPDX-License-Identifier: MIT OR Apache-2.0
//! A 16550A UART model on COM1 (ports 0x3F8-0x3FF), after the National Semiconductor PC16550D
//! datasheet (June 1995), section 8 (Registers) and Table II (register summary).
//!
//! Transmit is immediate: the transmitter is always empty (LSR bits 5 and 6), and the bytes a
//! guest writes are collected into lines that the monitor prints and keeps
//! ([`take_output`](PortDevice::take_output)). Receive ([`rx`]) has the 16-byte FIFO with
//! trigger levels 1/4/8/14, or the one-byte RBR of 16450 mode, filled by the host
//! ([`Serial::push_input`]) or, in loopback, by the guest's own writes. Interrupts ([`iir`])
//! follow the datasheet's priorities; [`Serial::irq_level`] is the line to drive IRQ4, gated by
//! MCR OUT2 as on a PC.
//!
//! There is no baud clock: bytes move at once, so two timings are choices.
//! - The character timeout (datasheet 8.10: bytes below the trigger level, none received or
//!   read for 4 character times) is reported as soon as bytes sit below the trigger level.
//!   Input arrives from the host in whole batches ([`Serial::push_input`]), so no further byte
//!   is on the wire to wait for; a delay would only postpone what the guest gets anyway.
//! - Host input is flow controlled: [`Serial::push_input`] takes what fits
//!   ([`Serial::input_room`]) and leaves the rest with the caller, as RTS/CTS would, so typed
//!   or pasted text is never lost to a guest that drains slowly. An overrun (LSR bit 1) comes
//!   from the one source without flow control, loopback (see [`rx::Receiver::arrive`] for the
//!   dropped byte).

mod iir;
mod modem;
mod rx;
mod state;
#[cfg(test)]
mod tests;

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

use self::iir::{Conditions, IER_THRE, IER_WRITABLE, Source};
use self::modem::{MCR_LOOP, MCR_OUT2, MCR_WRITABLE};
use self::rx::{Arrival, Receiver};
use super::irq::IrqLine;
use super::state::{DeviceId, DeviceState, StateError, StateReader, StateWriter};
use super::{Effect, PortDevice};
use crate::vmm::vcpu::Width;

/// Base port of COM1.
pub const COM1: u16 = 0x3F8;
/// The ISA interrupt line of COM1.
pub const COM1_IRQ: u8 = 4;

/// LCR bit 7: divisor latch access.
const LCR_DLAB: u8 = 1 << 7;
/// LSR bit 0: data ready.
const LSR_DR: u8 = 1 << 0;
/// LSR bit 1: overrun error.
const LSR_OE: u8 = 1 << 1;
/// LSR bits 5 and 6: transmitter holding register empty, transmitter empty.
const LSR_IDLE: u8 = (1 << 5) | (1 << 6);
const MAX_LINE: usize = 256;

/// The UART's registers, its receiver and the output collected so far.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Serial {
    ier: u8,
    lcr: u8,
    mcr: u8,
    scratch: u8,
    divisor: u16,
    rx: Receiver,
    /// LSR bit 1, until the guest reads the LSR.
    overrun: bool,
    /// The THRE interrupt is latched (set when the THR empties or ETBEI is set, cleared by
    /// an IIR read that reports it).
    thre: bool,
    /// MSR bits 3:0, until the guest reads the MSR.
    msr_deltas: u8,
    line: Vec<u8>,
    /// Complete lines written by the guest, not yet taken by the monitor.
    lines: Vec<String>,
    /// Bytes written in total.
    pub bytes_out: u64,
}

impl Serial {
    /// Input from the host (what the user typed) arriving on the serial line. Takes the first
    /// bytes of `input` that fit ([`input_room`](Self::input_room)) and returns how many; the
    /// rest stay with the caller for later. Never overruns.
    pub fn push_input(&mut self, input: &[u8]) -> usize {
        let n = input.len().min(self.input_room());
        for &b in &input[..n] {
            self.rx.arrive(b);
        }
        n
    }

    /// Bytes [`push_input`](Self::push_input) would take now: the receiver's free room, or 0
    /// in loopback, where the serial input is disconnected (datasheet 8.7, MCR bit 4).
    pub fn input_room(&self) -> usize {
        match self.mcr & MCR_LOOP {
            0 => self.rx.room(),
            _ => 0,
        }
    }

    /// The level of the interrupt line (IRQ4 on a PC): an enabled interrupt is pending and
    /// OUT2 is on. On a PC, OUT2 (MCR bit 3) enables the UART's interrupt line driver; in
    /// loopback the modem control outputs are forced inactive (datasheet 8.7, MCR bit 4), so
    /// the line stays low.
    pub fn irq_level(&self) -> bool {
        self.mcr & (MCR_OUT2 | MCR_LOOP) == MCR_OUT2 && self.pending().is_some()
    }

    /// The pending interrupt of highest priority.
    fn pending(&self) -> Option<Source> {
        let fifo = self.rx.fifo_enabled();
        let held = self.rx.len();
        iir::pending(
            self.ier,
            Conditions {
                line_error: self.overrun,
                rx_at_trigger: held >= self.rx.trigger(),
                rx_below_trigger: fifo && held > 0 && held < self.rx.trigger(),
                thre: self.thre,
                modem_delta: self.msr_deltas != 0,
            },
        )
    }

    /// The LSR (datasheet 8.3); reading it clears the overrun error.
    fn read_lsr(&mut self) -> u8 {
        let dr = if self.rx.len() > 0 { LSR_DR } else { 0 };
        let oe = if self.overrun { LSR_OE } else { 0 };
        self.overrun = false;
        LSR_IDLE | oe | dr
    }

    /// The IIR (datasheet 8.5); reading it clears a THRE interrupt it reports.
    fn read_iir(&mut self) -> u8 {
        let source = self.pending();
        if source == Some(Source::Thre) {
            self.thre = false;
        }
        iir::value(source, self.rx.fifo_enabled())
    }

    /// The MSR (datasheet 8.8); reading it clears the delta bits.
    fn read_msr(&mut self) -> u8 {
        let msr = modem::inputs(self.mcr) | self.msr_deltas;
        self.msr_deltas = 0;
        msr
    }

    fn write_ier(&mut self, v: u8) {
        let ier = v & IER_WRITABLE;
        // Enabling the THRE interrupt with the THR empty (always) raises it (datasheet 8.6).
        if ier & !self.ier & IER_THRE != 0 {
            self.thre = true;
        }
        self.ier = ier;
    }

    fn write_mcr(&mut self, v: u8) {
        let mcr = v & MCR_WRITABLE;
        self.msr_deltas |= modem::deltas(modem::inputs(self.mcr), modem::inputs(mcr));
        self.mcr = mcr;
    }

    /// A THR write: out on the line, or back into the receiver in loopback. The THR is empty
    /// again at once, which raises THRE anew.
    fn write_thr(&mut self, byte: u8) {
        if self.mcr & MCR_LOOP != 0 {
            if self.rx.arrive(byte) == Arrival::Overrun {
                self.overrun = true;
            }
        } else {
            self.transmit(byte);
        }
        self.thre = true;
    }

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

    /// A byte read of register `offset` (0-7).
    fn read_register(&mut self, offset: u16) -> u8 {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            0 if dlab => self.divisor as u8,
            1 if dlab => (self.divisor >> 8) as u8,
            0 => self.rx.pop(),
            1 => self.ier,
            2 => self.read_iir(),
            3 => self.lcr,
            4 => self.mcr,
            5 => self.read_lsr(),
            6 => self.read_msr(),
            _ => self.scratch,
        }
    }

    /// A byte write of register `offset` (0-7).
    fn write_register(&mut self, offset: u16, v: u8) {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            0 if dlab => self.divisor = (self.divisor & 0xFF00) | u16::from(v),
            1 if dlab => self.divisor = (self.divisor & 0x00FF) | (u16::from(v) << 8),
            0 => self.write_thr(v),
            1 => self.write_ier(v),
            2 => self.rx.write_fcr(v),
            3 => self.lcr = v,
            4 => self.write_mcr(v),
            5 | 6 => {} // LSR and MSR: writes are for factory testing (datasheet 8.3), ignored
            _ => self.scratch = v,
        }
    }
}

/// The register offset of byte `i` of an access at `port`, if that byte falls on the UART.
/// A wider access reaches the 8-bit UART as byte cycles on consecutive ports, as the ISA bus
/// splits it.
fn offset(port: u16, i: u8) -> Option<u16> {
    let offset = port.checked_add(u16::from(i))?.checked_sub(COM1)?;
    (offset < 8).then_some(offset)
}

impl PortDevice for Serial {
    fn ports(&self) -> RangeInclusive<u16> {
        COM1..=COM1 + 7
    }

    fn irq(&self) -> Option<(IrqLine, bool)> {
        Some((IrqLine::COM1, self.irq_level()))
    }

    fn wakes_on_input(&self) -> bool {
        self.ier & iir::IER_RX != 0 && self.mcr & (MCR_OUT2 | MCR_LOOP) == MCR_OUT2
    }

    fn push_input(&mut self, input: &[u8]) -> usize {
        Serial::push_input(self, input)
    }

    fn read(&mut self, port: u16, width: Width) -> u32 {
        (0..width.min(4)).fold(0, |value, i| {
            let byte = offset(port, i).map_or(0xFF, |o| self.read_register(o));
            value | u32::from(byte) << (8 * i)
        })
    }

    fn write(&mut self, port: u16, width: Width, value: u32) -> Effect {
        for i in 0..width.min(4) {
            if let Some(o) = offset(port, i) {
                self.write_register(o, (value >> (8 * i)) as u8);
            }
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
