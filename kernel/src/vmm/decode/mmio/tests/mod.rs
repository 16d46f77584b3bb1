// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests of MMIO emulation against a fake device that logs every access.

use alloc::vec::Vec;

use super::*;
use crate::vmm::vcpu::GuestRegs;

mod alu;
mod errors;
mod forms;
mod hostile;
mod prefixes;

/// The fake device's page: the local APIC's.
const PAGE: u64 = 0xFEE0_0000;

/// An access the fake device saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read { gpa: u64, width: Width },
    Write { gpa: u64, width: Width, value: u64 },
}

/// 4 KiB of device registers at [`PAGE`], little-endian, logging each access. Reads return
/// junk above the access width, which the emulation must ignore.
struct Fake {
    bytes: [u8; 4096],
    log: Vec<Access>,
}

impl Fake {
    fn new() -> Self {
        Self {
            bytes: [0; 4096],
            log: Vec::new(),
        }
    }

    fn offset(gpa: u64) -> usize {
        assert_eq!(gpa & !0xFFF, PAGE, "access outside the fake device's page");
        (gpa & 0xFFF) as usize
    }

    /// Sets the 8 bytes at `gpa`.
    fn set(&mut self, gpa: u64, value: u64) {
        let o = Self::offset(gpa);
        self.bytes[o..o + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// The 8 bytes at `gpa`.
    fn get(&self, gpa: u64) -> u64 {
        let o = Self::offset(gpa);
        u64::from_le_bytes(self.bytes[o..o + 8].try_into().unwrap())
    }
}

impl MmioDevice for Fake {
    fn read(&mut self, gpa: u64, width: Width) -> u64 {
        self.log.push(Access::Read { gpa, width });
        let o = Self::offset(gpa);
        let mut v = [0xA5u8; 8];
        let w = usize::from(width);
        v[..w].copy_from_slice(&self.bytes[o..o + w]);
        u64::from_le_bytes(v)
    }

    fn write(&mut self, gpa: u64, width: Width, value: u64) {
        self.log.push(Access::Write { gpa, width, value });
        let o = Self::offset(gpa);
        let w = usize::from(width);
        self.bytes[o..o + w].copy_from_slice(&value.to_le_bytes()[..w]);
    }
}

/// A guest's registers: the general ones, RSP and RFLAGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cpu {
    gprs: GuestRegs,
    rsp: u64,
    rflags: u64,
}

impl Cpu {
    /// Every register holds a distinct recognisable pattern; RFLAGS has only its fixed bit 1.
    fn new() -> Self {
        let p = |n: u64| 0x1111_1111_1111_1111u64.wrapping_mul(n);
        Self {
            gprs: GuestRegs {
                rax: p(0xA),
                rbx: p(0xB),
                rcx: p(0xC),
                rdx: p(0xD),
                rsi: p(0x5),
                rdi: p(0x7),
                rbp: p(0x6),
                r8: 0x8888_8888_8888_8808,
                r9: 0x8888_8888_8888_8809,
                r10: 0x8888_8888_8888_8810,
                r11: 0x8888_8888_8888_8811,
                r12: 0x8888_8888_8888_8812,
                r13: 0x8888_8888_8888_8813,
                r14: 0x8888_8888_8888_8814,
                r15: 0x8888_8888_8888_8815,
                reserved: 0,
                cr2: 0,
            },
            rsp: p(0x4),
            rflags: 2,
        }
    }

    /// Emulates `bytes` in `mode` at `gpa` against `dev`.
    fn run(
        &mut self,
        bytes: &[u8],
        mode: CodeMode,
        gpa: u64,
        dev: &mut Fake,
    ) -> Result<Completed, MmioError> {
        let mut regs = Registers {
            gprs: &mut self.gprs,
            rsp: &mut self.rsp,
            rflags: &mut self.rflags,
        };
        emulate(bytes, mode, gpa, &mut regs, dev)
    }
}

/// Runs `bytes` in `mode` at `PAGE + offset` from [`Cpu::new`] with `setup` applied, against a
/// device whose 8 bytes at the access hold `device_value`. Returns the instruction length, the
/// registers after, the device.
fn run(
    bytes: &[u8],
    mode: CodeMode,
    offset: u64,
    device_value: u64,
    setup: impl FnOnce(&mut Cpu),
) -> (usize, Cpu, Fake) {
    let mut cpu = Cpu::new();
    setup(&mut cpu);
    let mut dev = Fake::new();
    dev.set(PAGE + offset, device_value);
    let done = cpu
        .run(bytes, mode, PAGE + offset, &mut dev)
        .unwrap_or_else(|e| panic!("{bytes:02x?} in {mode:?}: {e}"));
    (done.advance, cpu, dev)
}
