// SPDX-License-Identifier: MIT OR Apache-2.0
//! Enhanced configuration access (ECAM): configuration space memory-mapped at the base the
//! ACPI MCFG table gives (PCI Express Base Specification 4.0, 7.2.2; PCI Firmware
//! Specification 3.2, 4.1.2). The kernel maps everything below 4 GiB that is not RAM uncached,
//! where firmware puts ECAM windows.

use super::{Address, ConfigSpace};
use crate::arch::x86_64::instr;

/// One ECAM window.
#[derive(Debug, Clone, Copy)]
pub struct Ecam {
    /// Physical base of bus `start_bus`.
    pub base: u64,
    /// First bus decoded.
    pub start_bus: u8,
    /// Last bus decoded.
    pub end_bus: u8,
}

impl Ecam {
    fn register(&self, at: Address, offset: u16) -> Option<u64> {
        if at.bus < self.start_bus || at.bus > self.end_bus || self.base >= 1 << 32 {
            return None;
        }
        let bus = u64::from(at.bus - self.start_bus);
        Some(
            self.base
                + (bus << 20)
                + (u64::from(at.device & 0x1F) << 15)
                + (u64::from(at.function & 0x7) << 12)
                + u64::from(offset & 0xFFC),
        )
    }
}

impl ConfigSpace for Ecam {
    fn read32(&self, at: Address, offset: u16) -> u32 {
        match self.register(at, offset) {
            // SAFETY: inside the ECAM window the firmware reported (below 4 GiB, mapped
            // uncached by the kernel); configuration reads have no side effects.
            Some(addr) => unsafe { instr::mmio_read32(addr) },
            None => u32::MAX,
        }
    }

    fn write32(&self, at: Address, offset: u16, value: u32) {
        if let Some(addr) = self.register(at, offset) {
            // SAFETY: as in `read32`; configuration writes are the caller's intent.
            unsafe { instr::mmio_write32(addr, value) }
        }
    }
}
