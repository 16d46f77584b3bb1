// SPDX-License-Identifier: MIT OR Apache-2.0
//! Configuration mechanism #1: the CONFIG_ADDRESS (0xCF8) / CONFIG_DATA (0xCFC) port pair
//! (PCI 3.0, 3.2.2.3.2). Reaches the first 256 bytes of each function's configuration space.

use super::{Address, ConfigSpace};
use crate::arch::x86_64::instr;

/// The legacy port mechanism. A lock serializes the address/data pair across CPUs.
pub struct PortConfig {
    lock: spin::Mutex<()>,
}

impl PortConfig {
    /// The mechanism (present on every PC-compatible machine).
    pub const fn new() -> Self {
        Self {
            lock: spin::Mutex::new(()),
        }
    }
}

impl Default for PortConfig {
    fn default() -> Self {
        Self::new()
    }
}

fn address(at: Address, offset: u16) -> u32 {
    (1 << 31)
        | (u32::from(at.bus) << 16)
        | (u32::from(at.device & 0x1F) << 11)
        | (u32::from(at.function & 0x7) << 8)
        | u32::from(offset & 0xFC)
}

impl ConfigSpace for PortConfig {
    fn read32(&self, at: Address, offset: u16) -> u32 {
        let _guard = self.lock.lock();
        // SAFETY: 0xCF8/0xCFC are the PCI configuration ports, only used under this lock.
        unsafe {
            instr::outl(0xCF8, address(at, offset));
            instr::inl(0xCFC)
        }
    }

    fn write32(&self, at: Address, offset: u16, value: u32) {
        let _guard = self.lock.lock();
        // SAFETY: as in `read32`; configuration writes are the caller's intent.
        unsafe {
            instr::outl(0xCF8, address(at, offset));
            instr::outl(0xCFC, value);
        }
    }
}
