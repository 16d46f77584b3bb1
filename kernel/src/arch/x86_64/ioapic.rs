// SPDX-License-Identifier: MIT OR Apache-2.0
//! I/O APIC (Intel 82093AA datasheet, section 3): identified and fully masked at boot; drivers
//! route their lines later.

use super::instr;

const REG_ID: u32 = 0x00;
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION_BASE: u32 = 0x10;
const REDIRECTION_MASKED: u32 = 1 << 16;

/// One I/O APIC, as described by the MADT.
#[derive(Debug, Clone, Copy)]
pub struct IoApic {
    /// Physical (identity-mapped) base of its registers.
    pub base: u64,
    /// First global system interrupt it serves.
    pub gsi_base: u32,
}

impl IoApic {
    fn read(&self, reg: u32) -> u32 {
        // SAFETY: `base` comes from the MADT and is mapped uncached; IOREGSEL is at +0 and IOWIN
        // at +0x10. Only the BSP programs I/O APICs, during boot.
        unsafe {
            instr::mmio_write32(self.base, reg);
            instr::mmio_read32(self.base + 0x10)
        }
    }

    fn write(&self, reg: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe {
            instr::mmio_write32(self.base, reg);
            instr::mmio_write32(self.base + 0x10, value);
        }
    }

    /// APIC id from the ID register (bits 24..27).
    pub fn id(&self) -> u32 {
        (self.read(REG_ID) >> 24) & 0xF
    }

    /// Number of redirection entries (pins).
    pub fn pins(&self) -> u32 {
        ((self.read(REG_VERSION) >> 16) & 0xFF) + 1
    }

    /// Masks every pin.
    pub fn mask_all(&self) {
        for pin in 0..self.pins() {
            self.write(REG_REDIRECTION_BASE + 2 * pin, REDIRECTION_MASKED);
            self.write(REG_REDIRECTION_BASE + 2 * pin + 1, 0);
        }
    }
}
