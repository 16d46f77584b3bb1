// SPDX-License-Identifier: MIT OR Apache-2.0
//! PCI: configuration space access, bus enumeration, BAR sizing and capabilities (PCI Local Bus
//! Specification 3.0, chapter 6; PCI Express Base Specification 4.0, 7.2 for ECAM).
//!
//! The logic works over any [`ConfigSpace`], so it is unit tested on the host against a
//! simulated bus; the kernel uses the legacy I/O-port mechanism (`ports`) or ECAM when ACPI's
//! MCFG table gives one (`ecam`).

mod device;
#[cfg(target_os = "none")]
pub mod ecam;
#[cfg(target_os = "none")]
pub mod interrupts;
pub mod msi;
#[cfg(target_os = "none")]
pub mod ports;
#[cfg(test)]
mod tests;

pub use device::{Bar, CAP_MSI, CAP_MSIX, CAP_VENDOR, Capability, Device, enumerate};

use core::fmt;

/// A function's location: bus, device (0..32), function (0..8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Address {
    /// Bus number.
    pub bus: u8,
    /// Device number (5 bits).
    pub device: u8,
    /// Function number (3 bits).
    pub function: u8,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// Access to configuration space. Offsets are byte offsets of aligned 32-bit registers.
pub trait ConfigSpace {
    /// Reads the 32-bit register at `offset` (a multiple of 4) of function `at`.
    fn read32(&self, at: Address, offset: u16) -> u32;
    /// Writes the 32-bit register at `offset` of function `at`.
    fn write32(&self, at: Address, offset: u16, value: u32);

    /// Reads the 16-bit field at `offset` (2-byte aligned).
    fn read16(&self, at: Address, offset: u16) -> u16 {
        (self.read32(at, offset & !3) >> ((offset & 2) * 8)) as u16
    }

    /// Reads the byte at `offset`.
    fn read8(&self, at: Address, offset: u16) -> u8 {
        (self.read32(at, offset & !3) >> ((offset & 3) * 8)) as u8
    }

    /// Writes the 16-bit field at `offset` (read-modify-write of its register).
    fn write16(&self, at: Address, offset: u16, value: u16) {
        let shift = (offset & 2) * 8;
        let old = self.read32(at, offset & !3);
        let new = (old & !(0xFFFF << shift)) | (u32::from(value) << shift);
        self.write32(at, offset & !3, new);
    }
}

/// Standard configuration header registers (PCI 3.0, 6.1).
pub mod reg {
    /// Vendor ID (low 16 bits) and device ID.
    pub const ID: u16 = 0x00;
    /// Command (low 16 bits) and status.
    pub const COMMAND: u16 = 0x04;
    /// Status register.
    pub const STATUS: u16 = 0x06;
    /// Revision, programming interface, subclass, class.
    pub const CLASS: u16 = 0x08;
    /// Cache line, latency, header type, BIST.
    pub const HEADER: u16 = 0x0C;
    /// First base address register.
    pub const BAR0: u16 = 0x10;
    /// Secondary bus number of a PCI-to-PCI bridge (byte at 0x19).
    pub const SECONDARY_BUS: u16 = 0x19;
    /// Capabilities pointer.
    pub const CAPABILITIES: u16 = 0x34;
    /// Interrupt line (byte at 0x3C) and pin (0x3D).
    pub const INTERRUPT: u16 = 0x3C;

    /// Command: respond to I/O space accesses.
    pub const COMMAND_IO: u16 = 1 << 0;
    /// Command: respond to memory space accesses.
    pub const COMMAND_MEMORY: u16 = 1 << 1;
    /// Command: bus mastering (DMA).
    pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
    /// Command: legacy INTx assertion disabled.
    pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
    /// Status: a capabilities list is present.
    pub const STATUS_CAPABILITIES: u16 = 1 << 4;
}
