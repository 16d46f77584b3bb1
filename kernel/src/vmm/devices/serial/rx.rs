// SPDX-License-Identifier: MIT OR Apache-2.0
//! The receiver of the 16550A: a 16-byte FIFO in FIFO mode, a one-byte receiver buffer register
//! (RBR) in 16450 mode, and the FIFO control register's receiver settings (PC16550D datasheet
//! 8.4, FIFO Control Register).

use alloc::collections::VecDeque;

/// Bytes the receiver FIFO holds (datasheet 1.0, Features: 16-byte FIFOs).
pub const FIFO_SIZE: usize = 16;
/// FCR bit 0: FIFOs enabled.
pub const FCR_ENABLE: u8 = 1 << 0;
/// FCR bit 1: clear the receiver FIFO (self-clearing).
pub const FCR_RX_RESET: u8 = 1 << 1;
/// FCR bits 7:6: the receiver FIFO's interrupt trigger level.
pub const FCR_TRIGGER: u8 = 0xC0;
/// The FCR bits the receiver keeps: FIFO enable and trigger level.
pub const FCR_KEPT: u8 = FCR_ENABLE | FCR_TRIGGER;

/// What happened to a byte that arrived at the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Stored: the guest will read it.
    Stored,
    /// Overrun (datasheet 8.3, LSR bit 1): the receiver had no room.
    Overrun,
}

/// The receiver: its bytes and the FIFO settings (FCR bits 7:6 and 0).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Receiver {
    /// FCR bits [`FCR_KEPT`] as last programmed.
    fcr: u8,
    /// Received bytes, oldest first: at most [`FIFO_SIZE`], at most 1 with FIFOs off.
    bytes: VecDeque<u8>,
}

impl Receiver {
    /// A receiver with FCR bits `fcr` (only [`FCR_KEPT`]) holding `bytes`, if that is a state
    /// the receiver can be in.
    pub fn with(fcr: u8, bytes: &[u8]) -> Option<Self> {
        let rx = Self {
            fcr,
            bytes: bytes.iter().copied().collect(),
        };
        (fcr & !FCR_KEPT == 0 && bytes.len() <= rx.capacity()).then_some(rx)
    }

    /// The FCR bits kept ([`FCR_KEPT`]).
    pub fn fcr(&self) -> u8 {
        self.fcr
    }

    /// The received bytes, oldest first.
    pub fn bytes(&self) -> impl ExactSizeIterator<Item = u8> + '_ {
        self.bytes.iter().copied()
    }

    /// FIFO mode (FCR bit 0), as IIR bits 7:6 report it.
    pub fn fifo_enabled(&self) -> bool {
        self.fcr & FCR_ENABLE != 0
    }

    /// Bytes the receiver holds at most: 16 in FIFO mode, 1 (the RBR) in 16450 mode.
    pub fn capacity(&self) -> usize {
        if self.fifo_enabled() { FIFO_SIZE } else { 1 }
    }

    /// Bytes that can arrive before an overrun.
    pub fn room(&self) -> usize {
        self.capacity() - self.bytes.len()
    }

    /// Bytes waiting (LSR bit 0, data ready, is `len() > 0`).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The receiver data available interrupt's trigger level: FCR bits 7:6 select 1, 4, 8 or
    /// 14 bytes in FIFO mode (datasheet 8.4, Table: FCR bits 7:6); 1 byte (a full RBR) in 16450
    /// mode.
    pub fn trigger(&self) -> usize {
        if !self.fifo_enabled() {
            return 1;
        }
        match self.fcr >> 6 {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        }
    }

    /// A write of `value` to the FCR. Changing bit 0 clears the FIFO; bit 1 clears it too; the
    /// other bits are only programmed while bit 0 is written as 1 (datasheet 8.4). Transmit
    /// bits (2, FIFO reset; 3, DMA mode) mean nothing to a transmitter that is always empty.
    pub fn write_fcr(&mut self, value: u8) {
        if (value ^ self.fcr) & FCR_ENABLE != 0 || value & FCR_RX_RESET != 0 {
            self.bytes.clear();
        }
        self.fcr = match value & FCR_ENABLE {
            0 => self.fcr & !FCR_ENABLE,
            _ => value & FCR_KEPT,
        };
    }

    /// A byte completely received. With no room it is an overrun (datasheet 8.3, LSR bit 1):
    /// in FIFO mode the new byte, still in the shift register, is overwritten by the next and
    /// never reaches the FIFO, so it is dropped and the FIFO keeps its 16 bytes; in 16450 mode
    /// the new byte replaces the unread one in the RBR, which is lost.
    pub fn arrive(&mut self, byte: u8) -> Arrival {
        if self.room() > 0 {
            self.bytes.push_back(byte);
            return Arrival::Stored;
        }
        if !self.fifo_enabled() {
            self.bytes.clear();
            self.bytes.push_back(byte);
        }
        Arrival::Overrun
    }

    /// A read of the RBR: the oldest byte, or 0 when there is none.
    pub fn pop(&mut self) -> u8 {
        self.bytes.pop_front().unwrap_or(0)
    }
}
