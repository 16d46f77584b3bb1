// SPDX-License-Identifier: MIT OR Apache-2.0
//! The I/O APIC: 24 interrupt pins routed to the local APICs by a redirection table, per the
//! Intel 82093AA I/O Advanced Programmable Interrupt Controller datasheet (order no. 290566):
//! 3.0 "Register Description", 3.1 "Memory Mapped Registers for Accessing IOAPIC Registers",
//! 3.2 "IOAPIC Registers".
//!
//! Registers are reached indirectly: the guest writes a register index to IOREGSEL (offset
//! 0x00 of the page at [`BASE`]) and reads or writes it through IOWIN (offset 0x10). Indexes:
//! 0x00 ID (bits 27:24), 0x01 version ([`VERSION_VALUE`]: 0x11 with maximum redirection entry
//! 23), 0x02 arbitration ID (the ID), 0x10-0x3F the 64-bit redirection entries, low dword at
//! the even index. Other indexes read 0 and ignore writes. Version 0x11 has no EOI register
//! (that came with version 0x20): EOIs arrive as the local APIC's EOI broadcast, [`IoApic::eoi`].
//!
//! Pins take the asserted state of their line ([`IoApic::set_irq`]); the polarity bit is kept
//! for the guest to read back but the monitor passes the logical state, as KVM and QEMU do.
//! An edge-triggered pin sends its message on each rising edge while unmasked (edges while
//! masked are lost, 3.2.4 bit 16). A level-triggered pin sends while it is asserted, unmasked
//! and its remote IRR is clear; a local APIC accepting the message sets remote IRR, and the EOI
//! of its vector clears it, after which a pin still asserted sends again. Messages go to an
//! [`ApicBus`] the monitor hands in (the local APIC), as it hands the PIC to the PIT. Delivery
//! is immediate, so the delivery status bit reads 0. A redirection entry switched to edge
//! clears its remote IRR (as Linux expects when it re-triggers a stuck level pin).
//!
//! # Wiring (for the monitor)
//!
//! MMIO at [`BASE`] ([`IoApic::read`], [`IoApic::write`] with the bus); device lines through
//! [`IoApic::set_irq`] (the ISA IRQs on the pins the MADT names: IRQ0 on pin 2 with the usual
//! interrupt source override, others on their own number); a level-triggered EOI from
//! `Lapic::write` / `Lapic::eoi` to [`IoApic::eoi`]. The state saves and restores completely
//! (`ioapic/state.rs`).

mod state;

use crate::vmm::devices::lapic::{ApicBus, DeliveryMode, Message};
use crate::vmm::vcpu::Width;

/// Default physical address of the register page.
pub const BASE: u64 = 0xFEC0_0000;
/// Offset of IOREGSEL, the register select (datasheet 3.1.1).
pub const IOREGSEL: u64 = 0x00;
/// Offset of IOWIN, the register window (3.1.2).
pub const IOWIN: u64 = 0x10;
/// Interrupt pins.
pub const PINS: usize = 24;
/// The version register: version 0x11, maximum redirection entry 23 in bits 23:16 (3.2.2).
pub const VERSION_VALUE: u32 = 0x11 | (PINS as u32 - 1) << 16;

/// Register indexes (3.2).
const REG_ID: u8 = 0x00;
const REG_VERSION: u8 = 0x01;
const REG_ARBITRATION: u8 = 0x02;
const REG_REDIRECTION: u8 = 0x10;

/// Redirection entry bits (3.2.4).
const DEST_LOGICAL: u64 = 1 << 11;
const REMOTE_IRR: u64 = 1 << 14;
const LEVEL: u64 = 1 << 15;
/// Redirection entry bit 16: the pin is masked.
pub const MASKED: u64 = 1 << 16;
/// Bits software may write: vector, delivery mode, destination mode, polarity, trigger mode,
/// mask and destination. Delivery status (12) and remote IRR (14) are read-only.
const WRITABLE: u64 = 0xFF00_0000_0001_AFFF;

/// One 82093AA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoApic {
    /// IOAPIC ID, 4 bits.
    id: u8,
    /// IOREGSEL.
    select: u8,
    redirection: [u64; PINS],
    /// Pins whose line is asserted, bit per pin.
    asserted: u32,
}

impl IoApic {
    /// An IOAPIC after reset with ID `id` (its low 4 bits; the MADT must name the same): every
    /// pin masked (3.2.4).
    pub fn new(id: u8) -> Self {
        Self {
            id: id & 0xF,
            select: 0,
            redirection: [MASKED; PINS],
            asserted: 0,
        }
    }

    /// The redirection entry of `pin`, if there is such a pin.
    pub fn redirection(&self, pin: u8) -> Option<u64> {
        self.redirection.get(usize::from(pin)).copied()
    }

    /// The message redirection entry `e` sends.
    fn message(e: u64) -> Message {
        Message {
            vector: e as u8,
            mode: DeliveryMode::from_bits((e >> 8) as u32),
            level_triggered: e & LEVEL != 0,
            destination: (e >> 56) as u8,
            logical: e & DEST_LOGICAL != 0,
        }
    }

    /// Sets the line of `pin` asserted or not (pins beyond 23 are ignored), sending the
    /// pin's message to `bus` if that triggers it.
    pub fn set_irq(&mut self, pin: u8, asserted: bool, bus: &mut impl ApicBus) {
        let Some(&e) = self.redirection.get(usize::from(pin)) else {
            return;
        };
        let bit = 1 << pin;
        let rising = asserted && self.asserted & bit == 0;
        if asserted {
            self.asserted |= bit;
        } else {
            self.asserted &= !bit;
        }
        if e & LEVEL != 0 {
            self.service(pin, bus);
        } else if rising && e & MASKED == 0 {
            bus.deliver(Self::message(e));
        }
    }

    /// Sends a level-triggered pin's message if it is asserted, unmasked and not waiting for
    /// an EOI; remote IRR is set when a local APIC accepts it.
    fn service(&mut self, pin: u8, bus: &mut impl ApicBus) {
        let e = self.redirection[usize::from(pin)];
        let ready = e & LEVEL != 0 && e & (MASKED | REMOTE_IRR) == 0;
        if ready && self.asserted & 1 << pin != 0 && bus.deliver(Self::message(e)) {
            self.redirection[usize::from(pin)] |= REMOTE_IRR;
        }
    }

    /// The EOI of `vector` broadcast by a local APIC: clears remote IRR of every
    /// level-triggered pin with that vector, and sends again for those still asserted.
    pub fn eoi(&mut self, vector: u8, bus: &mut impl ApicBus) {
        for pin in 0..PINS as u8 {
            let e = &mut self.redirection[usize::from(pin)];
            if *e & (LEVEL | REMOTE_IRR) == LEVEL | REMOTE_IRR && *e as u8 == vector {
                *e &= !REMOTE_IRR;
                self.service(pin, bus);
            }
        }
    }

    /// The indirect register at index `index`.
    fn indirect(&self, index: u8) -> u32 {
        match index {
            REG_ID | REG_ARBITRATION => u32::from(self.id) << 24,
            REG_VERSION => VERSION_VALUE,
            REG_REDIRECTION..0x40 => {
                let e = self.redirection[usize::from((index - REG_REDIRECTION) / 2)];
                (e >> (32 * u32::from(index & 1))) as u32
            }
            _ => 0,
        }
    }

    /// A write of `value` to the indirect register at index `index`.
    fn write_indirect(&mut self, index: u8, value: u32, bus: &mut impl ApicBus) {
        match index {
            REG_ID => self.id = (value >> 24) as u8 & 0xF,
            REG_REDIRECTION..0x40 => {
                let pin = (index - REG_REDIRECTION) / 2;
                let shift = 32 * u32::from(index & 1);
                let e = &mut self.redirection[usize::from(pin)];
                let part = (WRITABLE >> shift & 0xFFFF_FFFF) << shift;
                *e = (*e & !part) | (u64::from(value) << shift & part);
                if *e & LEVEL == 0 {
                    *e &= !REMOTE_IRR;
                }
                self.service(pin, bus);
            }
            _ => {}
        }
    }

    /// The 32-bit register in the slot at `slot` (IOREGSEL or IOWIN).
    fn register(&self, slot: u64) -> u32 {
        if slot == IOREGSEL {
            u32::from(self.select)
        } else {
            self.indirect(self.select)
        }
    }

    /// A read of `width` bytes (1 to 8) at `offset` in the register page. IOREGSEL and IOWIN
    /// are the first 4 bytes of their 16-byte slots; every other byte reads 0.
    pub fn read(&self, offset: u64, width: Width) -> u64 {
        (0..u64::from(width.clamp(1, 8))).fold(0, |acc, i| {
            let at = offset.wrapping_add(i);
            let byte = match at & !0xF {
                slot @ (IOREGSEL | IOWIN) if at & 0xF < 4 => {
                    (self.register(slot) >> (8 * (at & 3))) as u8
                }
                _ => 0,
            };
            acc | u64::from(byte) << (8 * i)
        })
    }

    /// A write of `width` bytes (1 to 8) at `offset` in the register page, with `bus` for the
    /// messages a redirection entry write may send. The bytes that fall on IOREGSEL or IOWIN
    /// replace those bytes of the register (a narrow IOWIN write keeps the rest of the selected
    /// register); the others are ignored.
    pub fn write(&mut self, offset: u64, width: Width, value: u64, bus: &mut impl ApicBus) {
        for slot in [IOREGSEL, IOWIN] {
            let mut reg = self.register(slot);
            let mut hit = false;
            for i in 0..u64::from(width.clamp(1, 8)) {
                let at = offset.wrapping_add(i);
                if (slot..slot + 4).contains(&at) {
                    let shift = 8 * (at - slot);
                    let byte = u32::from((value >> (8 * i)) as u8);
                    reg = (reg & !(0xFF << shift)) | byte << shift;
                    hit = true;
                }
            }
            match (hit, slot) {
                (false, _) => {}
                (true, IOREGSEL) => self.select = reg as u8,
                (true, _) => self.write_indirect(self.select, reg, bus),
            }
        }
    }
}

#[cfg(test)]
mod tests;
