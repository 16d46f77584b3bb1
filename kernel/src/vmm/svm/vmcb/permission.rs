// SPDX-License-Identifier: MIT OR Apache-2.0
//! The MSR and I/O permission maps a VMCB points at (AMD64 APM Vol. 2, 15.11 and 15.10.1).

/// Size of the MSR permission map (two 4 KiB pages; APM Vol. 2, 15.11).
pub const MSRPM_SIZE: usize = 0x2000;
/// Size of the I/O permission map (three 4 KiB pages: one bit per port, plus the bits that
/// accesses crossing port 0xFFFF read; APM Vol. 2, 15.10.1).
pub const IOPM_SIZE: usize = 0x3000;

/// Where MSR `msr` lives in the MSR permission map (APM Vol. 2, 15.11 "MSR Intercepts"):
/// `(byte offset, bit)` of its read-intercept bit; the write-intercept bit is the
/// next one (`bit + 1`, same byte). `None` for MSRs outside the three covered ranges
/// (0000_0000-0000_1FFF at byte 0, C000_0000-C000_1FFF at 0x800, C001_0000-C001_1FFF at
/// 0x1000); accesses to those always exit when MSR_PROT is set.
pub const fn msrpm_position(msr: u32) -> Option<(usize, u8)> {
    let base = match msr & !0x1FFF {
        0x0000_0000 => 0x000,
        0xC000_0000 => 0x800,
        0xC001_0000 => 0x1000,
        _ => return None,
    };
    let bit = (msr & 0x1FFF) as usize * 2;
    Some((base + bit / 8, (bit % 8) as u8))
}
