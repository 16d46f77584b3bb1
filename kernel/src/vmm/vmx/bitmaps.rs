// SPDX-License-Identifier: MIT OR Apache-2.0
//! The intercept bitmaps of a VT-x vCPU: I/O bitmaps A and B (Intel SDM Vol. 3C, 25.6.4) and
//! the MSR bitmaps (25.6.9). Every port and every MSR exits, except the MSRs whose guest values
//! the VMCS switches itself.

use crate::mm::OwnedFrames;

/// MSRs whose guest values the VMCS switches itself, so guests access them without exits:
/// FS/GS base and EFER (guest-state area, SDM Vol. 3C, 25.4.1), SYSENTER_* likewise, and
/// those the VM-entry/VM-exit MSR areas switch (`msr_switch`).
const PASS_THROUGH_MSRS: [u32; 12] = {
    let mut all = [
        0xC000_0100,
        0xC000_0101,
        0xC000_0080,
        0x174,
        0x175,
        0x176,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    let mut i = 0;
    while i < super::msr_switch::SWITCHED.len() {
        all[6 + i] = super::msr_switch::SWITCHED[i];
        i += 1;
    }
    all
};

/// A vCPU's bitmaps, owned (freed with it).
pub struct Bitmaps {
    /// I/O bitmap A (ports 0-0x7FFF), then B (ports 0x8000-0xFFFF).
    io: OwnedFrames,
    /// MSR bitmaps (read low, read high, write low, write high).
    msr: OwnedFrames,
}

impl Bitmaps {
    /// Bitmaps that intercept every port and every MSR but [`PASS_THROUGH_MSRS`]; `None` if
    /// memory is short.
    pub fn new() -> Option<Self> {
        let bitmaps = Self {
            io: OwnedFrames::filled(2, 0xFF)?,
            msr: OwnedFrames::filled(1, 0xFF)?,
        };
        for msr in PASS_THROUGH_MSRS {
            bitmaps.pass_through(msr);
        }
        Some(bitmaps)
    }

    /// Physical address of I/O bitmap A.
    pub fn io_a(&self) -> u64 {
        self.io.phys()
    }

    /// Physical address of I/O bitmap B.
    pub fn io_b(&self) -> u64 {
        self.io.phys() + 4096
    }

    /// Physical address of the MSR bitmaps.
    pub fn msr(&self) -> u64 {
        self.msr.phys()
    }

    /// Clears the read and write intercept bits of `msr` (SDM Vol. 3C, 25.6.9: read-low at +0,
    /// read-high at +1024, write-low at +2048, write-high at +3072).
    fn pass_through(&self, msr: u32) {
        let (base, index) = match msr {
            0..=0x1FFF => (0, msr),
            0xC000_0000..=0xC000_1FFF => (1024, msr - 0xC000_0000),
            _ => return,
        };
        for half in [0, 2048] {
            let byte = self.msr.ptr(half + base + (index / 8) as usize);
            // SAFETY: the bitmap frame belongs to this vCPU and no VMCS uses it yet.
            unsafe { byte.write_volatile(byte.read_volatile() & !(1 << (index % 8))) };
        }
    }
}
