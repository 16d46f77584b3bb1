// SPDX-License-Identifier: MIT OR Apache-2.0
//! A debug-exit port compatible with QEMU's `isa-debug-exit` at 0xF4 (size 4): a guest writes a
//! status there to end its run, as test kernels do under QEMU. Castor reports the value written;
//! QEMU would exit with `(value << 1) | 1`.

use core::ops::RangeInclusive;

use super::{Effect, PortDevice};
use crate::vmm::vcpu::Width;

/// I/O port of the device.
pub const PORT: u16 = 0xF4;

/// The debug-exit device.
#[derive(Debug, Default)]
pub struct DebugExit;

impl PortDevice for DebugExit {
    fn ports(&self) -> RangeInclusive<u16> {
        PORT..=PORT + 3
    }

    fn read(&mut self, _port: u16, _width: Width) -> u32 {
        0
    }

    fn write(&mut self, _port: u16, width: Width, value: u32) -> Effect {
        let mask = match width {
            1 => 0xFF,
            2 => 0xFFFF,
            _ => u32::MAX,
        };
        Effect::Exit(value & mask)
    }
}
