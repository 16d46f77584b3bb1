// SPDX-License-Identifier: MIT OR Apache-2.0
//! Interrupt messages on the APIC bus: what the IOAPIC's redirection entries and the local
//! APIC's interrupt command register send (Intel SDM Vol. 3A, 11.6.1 "Interrupt Command
//! Register"; 82093AA datasheet, 3.2.4 "I/O Redirection Table Registers"), and the
//! [`ApicBus`] they are sent on.

/// How a message is delivered: the 3-bit delivery mode field of an ICR, LVT entry or
/// redirection entry (SDM Vol. 3A, 11.5.1 and 11.6.1; 82093AA, 3.2.4 bits 10:8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// 000: the vector, to every destination.
    Fixed,
    /// 001: the vector, to the destination with the lowest priority.
    LowestPriority,
    /// 010: a system management interrupt.
    Smi,
    /// 100: a non-maskable interrupt.
    Nmi,
    /// 101: INIT.
    Init,
    /// 110: start-up IPI (reserved in the IOAPIC).
    StartUp,
    /// 111: the 8259A's vector, fetched by an INTA cycle.
    ExtInt,
    /// 011: reserved.
    Reserved,
}

impl DeliveryMode {
    /// The mode encoded by the low three bits of `bits`.
    pub const fn from_bits(bits: u32) -> Self {
        match bits & 7 {
            0 => Self::Fixed,
            1 => Self::LowestPriority,
            2 => Self::Smi,
            3 => Self::Reserved,
            4 => Self::Nmi,
            5 => Self::Init,
            6 => Self::StartUp,
            _ => Self::ExtInt,
        }
    }

    /// Whether the message carries a vector for the local APIC's IRR (fixed and lowest
    /// priority; the local APIC model accepts only these).
    pub const fn is_vectored(self) -> bool {
        matches!(self, Self::Fixed | Self::LowestPriority)
    }
}

/// One interrupt message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// The vector (only meaningful for fixed and lowest-priority delivery).
    pub vector: u8,
    /// How it is delivered.
    pub mode: DeliveryMode,
    /// Level-triggered: the receiving local APIC sets the vector's TMR bit and broadcasts its
    /// EOI back to the IOAPIC (SDM Vol. 3A, 11.8.4).
    pub level_triggered: bool,
    /// The destination field: an APIC ID (physical mode) or a set of logical IDs.
    pub destination: u8,
    /// Logical destination mode (matched against LDR and DFR, SDM Vol. 3A, 11.6.2.2).
    pub logical: bool,
}

/// Where interrupt messages go: the local APICs (the monitor hands one to the IOAPIC when its
/// pins change, as it hands the PIC to the PIT, see `devices::irq`).
pub trait ApicBus {
    /// Sends `msg`; true if a local APIC accepted it (the IOAPIC then sets the pin's remote IRR
    /// for a level-triggered message).
    fn deliver(&mut self, msg: Message) -> bool;
}
