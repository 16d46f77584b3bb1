// SPDX-License-Identifier: MIT OR Apache-2.0
//! ALU instructions: the flags table against known values, then each form through the decoder
//! and the fake device.

use alloc::vec;

use super::super::alu::alu;
use super::*;

use AluOp::*;
use CodeMode::{Bits16, Bits32, Bits64};

const STATUS: u64 = CF | PF | AF | ZF | SF | OF;
/// Bits that are not status flags and must survive: fixed bit 1, IF, DF.
const OTHER: u64 = 2 | (1 << 9) | DF;

#[test]
fn flags_against_known_values() {
    // (op, width, a, b, carry in, result, flags)
    let table: [(AluOp, Width, u64, u64, bool, u64, u64); 30] = [
        (Add, 1, 0xFF, 0x01, false, 0x00, CF | ZF | AF | PF),
        (Add, 1, 0x7F, 0x01, false, 0x80, OF | SF | AF),
        (Add, 1, 0x80, 0x80, false, 0x00, CF | OF | ZF | PF),
        (Add, 2, 0x8000, 0x8000, false, 0, CF | OF | ZF | PF),
        (Add, 4, 0xFFFF_FFFF, 1, false, 0, CF | ZF | AF | PF),
        (Add, 8, u64::MAX, 1, false, 0, CF | ZF | AF | PF),
        (
            Add,
            8,
            i64::MAX as u64,
            1,
            false,
            1 << 63,
            OF | SF | AF | PF,
        ),
        (Add, 4, 0x0F, 0x01, false, 0x10, AF),
        (Add, 4, 1, 2, false, 3, PF),
        (Add, 1, 0x1FF, 0x101, false, 0x00, CF | ZF | AF | PF),
        (Adc, 1, 0xFF, 0x00, true, 0x00, CF | ZF | AF | PF),
        (Adc, 1, 0x7F, 0x00, true, 0x80, OF | SF | AF),
        (Adc, 4, 1, 1, false, 2, 0),
        (Sub, 1, 0x00, 0x01, false, 0xFF, CF | SF | AF | PF),
        (Sub, 1, 0x80, 0x01, false, 0x7F, OF | AF),
        (Sub, 1, 0x7F, 0xFF, false, 0x80, CF | OF | SF),
        (Sub, 4, 5, 5, false, 0, ZF | PF),
        (Sub, 8, 0, 1, false, u64::MAX, CF | SF | AF | PF),
        (Sub, 2, 0x8000, 1, false, 0x7FFF, OF | AF | PF),
        (Cmp, 4, 3, 5, false, 0xFFFF_FFFE, CF | SF | AF),
        (Sbb, 1, 0x00, 0x00, true, 0xFF, CF | SF | AF | PF),
        (Sbb, 1, 0x80, 0x00, true, 0x7F, OF | AF),
        (Sbb, 4, 5, 4, true, 0, ZF | PF),
        (And, 1, 0xF0, 0x0F, false, 0, ZF | PF),
        (And, 4, 0x8000_00FF, 0xFFFF_FF01, false, 0x8000_0001, SF),
        (Or, 4, 0x8000_0000, 0, false, 0x8000_0000, SF | PF),
        (Xor, 2, 3, 0, false, 3, PF),
        (Xor, 1, 1, 0, false, 1, 0),
        (Xor, 8, u64::MAX, u64::MAX, false, 0, ZF | PF),
        (Test, 8, 1 << 63, 1 << 63, false, 1 << 63, SF | PF),
    ];
    for (op, width, a, b, carry, result, flags) in table {
        let cf_in = if carry { CF } else { 0 };
        // Every status flag is written, whatever it was; the other bits stay.
        for before in [OTHER | cf_in, OTHER | (STATUS & !CF) | cf_in] {
            let got = alu(op, a, b, width, before);
            assert_eq!(
                got,
                (result, OTHER | flags),
                "{op:?} {width} bytes {a:#x}, {b:#x} carry {carry}"
            );
        }
    }
}

/// Runs an ALU instruction with `setup`, the device holding `value`; returns the CPU after and
/// the device's log and value.
fn alu_run(bytes: &[u8], mode: CodeMode, value: u64, setup: impl FnOnce(&mut Cpu)) -> (Cpu, Fake) {
    let (len, cpu, dev) = run(bytes, mode, 0x40, value, setup);
    assert_eq!(len, bytes.len(), "{bytes:02x?}");
    (cpu, dev)
}

/// Checks the device saw a read of `width` bytes and, if `wrote`, a write of `value` after it.
fn assert_rmw(dev: &Fake, width: Width, wrote: Option<u64>) {
    let gpa = PAGE + 0x40;
    let mut expected = vec![Access::Read { gpa, width }];
    if let Some(value) = wrote {
        expected.push(Access::Write { gpa, width, value });
    }
    assert_eq!(dev.log, expected);
}

#[test]
fn memory_destination_reads_then_writes() {
    /// (bytes, mode, device, RCX, width, written, RFLAGS after)
    type Case = (&'static [u8], CodeMode, u64, u64, Width, Option<u64>, u64);
    let cases: [Case; 12] = [
        (&[0x09, 0x08], Bits64, 0x100, 1, 4, Some(0x101), 0),
        (
            &[0x01, 0x08],
            Bits64,
            0xFFFF_FFFF,
            1,
            4,
            Some(0),
            CF | ZF | AF | PF,
        ),
        (
            &[0x29, 0x08],
            Bits64,
            0,
            1,
            4,
            Some(0xFFFF_FFFF),
            CF | SF | AF | PF,
        ),
        (&[0x21, 0x08], Bits32, 0xF0F0, 0xFF00, 4, Some(0xF000), PF),
        (&[0x31, 0x08], Bits16, 0xFFFF, 0xFFFF, 2, Some(0), ZF | PF),
        (&[0x39, 0x08], Bits64, 5, 5, 4, None, ZF | PF),
        (
            &[0x85, 0x08],
            Bits64,
            0x8000_0000,
            0x8000_0000,
            4,
            None,
            SF | PF,
        ),
        (&[0x84, 0x08], Bits64, 0x0F, 0xF0, 1, None, ZF | PF),
        (&[0x00, 0x08], Bits64, 0x7F, 1, 1, Some(0x80), OF | SF | AF),
        (
            &[0x48, 0x01, 0x08],
            Bits64,
            u64::MAX,
            1,
            8,
            Some(0),
            CF | ZF | AF | PF,
        ),
        (
            &[0x66, 0x09, 0x08],
            Bits64,
            0x1_0000,
            0x8000,
            2,
            Some(0x8000),
            SF | PF,
        ),
        (&[0xF0, 0x09, 0x08], Bits64, 0x100, 1, 4, Some(0x101), 0),
    ];
    for (bytes, mode, value, rcx, width, wrote, flags) in cases {
        let (cpu, dev) = alu_run(bytes, mode, value, |c| c.gprs.rcx = rcx);
        assert_rmw(&dev, width, wrote);
        assert_eq!(cpu.rflags, 2 | flags, "{bytes:02x?}");
        assert_eq!(cpu.gprs.rcx, rcx, "the register is a source only");
    }
}

#[test]
fn carry_in_of_adc_and_sbb() {
    // adc [rax], cl with CF: 0xFF + 0 + 1; sbb [rax], cl with CF: 0 - 0 - 1.
    let (cpu, dev) = alu_run(&[0x10, 0x08], Bits64, 0xFF, |c| {
        c.gprs.rcx = 0;
        c.rflags = 2 | CF;
    });
    assert_rmw(&dev, 1, Some(0));
    assert_eq!(cpu.rflags, 2 | CF | ZF | AF | PF);
    let (cpu, dev) = alu_run(&[0x18, 0x08], Bits64, 0, |c| {
        c.gprs.rcx = 0;
        c.rflags = 2 | CF;
    });
    assert_rmw(&dev, 1, Some(0xFF));
    assert_eq!(cpu.rflags, 2 | CF | SF | AF | PF);
}

#[test]
fn register_destination_writes_the_register() {
    // or ecx, [rax]: 32-bit result zero-extends.
    let (cpu, dev) = alu_run(&[0x0B, 0x08], Bits64, 0x100, |c| {
        c.gprs.rcx = 0xFFFF_FFFF_0000_0001;
    });
    assert_rmw(&dev, 4, None);
    assert_eq!((cpu.gprs.rcx, cpu.rflags), (0x101, 2));
    // or cx, [rax]: 16-bit result keeps the rest.
    let (cpu, _) = alu_run(&[0x66, 0x0B, 0x08], Bits64, 0x100, |c| {
        c.gprs.rcx = 0xFFFF_FFFF_0000_0001;
    });
    assert_eq!(cpu.gprs.rcx, 0xFFFF_FFFF_0000_0101);
    // add ah, [rax]: 0x7F + 1 in AH.
    let (cpu, _) = alu_run(&[0x02, 0x20], Bits64, 1, |c| c.gprs.rax = 0x7F00);
    assert_eq!((cpu.gprs.rax, cpu.rflags), (0x8000, 2 | OF | SF | AF));
    // sub ecx, [rax]: 5 - 7; cmp ecx, [rax] computes the same, writes nothing.
    let (cpu, _) = alu_run(&[0x2B, 0x08], Bits64, 7, |c| c.gprs.rcx = 5);
    assert_eq!((cpu.gprs.rcx, cpu.rflags), (0xFFFF_FFFE, 2 | CF | SF | AF));
    let (cpu, _) = alu_run(&[0x3B, 0x08], Bits64, 7, |c| c.gprs.rcx = 5);
    assert_eq!((cpu.gprs.rcx, cpu.rflags), (5, 2 | CF | SF | AF));
    // and r8, [rax]
    let (cpu, dev) = alu_run(&[0x4C, 0x23, 0x00], Bits64, 0xFF00_0000_0000_00FF, |_| {});
    assert_rmw(&dev, 8, None);
    assert_eq!((cpu.gprs.r8, cpu.rflags), (0x8800_0000_0000_0008, 2 | SF));
    // xor al, [bx+si] in real mode
    let (cpu, _) = alu_run(&[0x32, 0x00], Bits16, 0xAA, |_| {});
    assert_eq!(
        (cpu.gprs.rax, cpu.rflags),
        (0xAAAA_AAAA_AAAA_AA00, 2 | ZF | PF)
    );
}

#[test]
fn group_1_immediates() {
    /// (bytes, mode, device, width, written, RFLAGS after)
    type Case = (&'static [u8], CodeMode, u64, Width, Option<u64>, u64);
    let cases: [Case; 10] = [
        (&[0x83, 0x08, 0x01], Bits64, 0x100, 4, Some(0x101), 0),
        (
            &[0x83, 0x00, 0xFF],
            Bits64,
            1,
            4,
            Some(0),
            CF | ZF | AF | PF,
        ),
        (
            &[0x81, 0x20, 0xFF, 0x00, 0xFF, 0x00],
            Bits64,
            0x1234_5678,
            4,
            Some(0x0034_0078),
            PF,
        ),
        (
            &[0x66, 0x81, 0x30, 0x34, 0x12],
            Bits64,
            0x1234,
            2,
            Some(0),
            ZF | PF,
        ),
        (
            &[0x81, 0x30, 0x34, 0x12],
            Bits16,
            0x1234,
            2,
            Some(0),
            ZF | PF,
        ),
        (&[0x80, 0x38, 0x05], Bits64, 5, 1, None, ZF | PF),
        (
            &[0x48, 0x83, 0x28, 0x01],
            Bits64,
            0,
            8,
            Some(u64::MAX),
            CF | SF | AF | PF,
        ),
        (
            &[0x48, 0x81, 0x08, 0x00, 0x00, 0x00, 0x80],
            Bits64,
            1,
            8,
            Some(0xFFFF_FFFF_8000_0001),
            SF,
        ),
        (&[0x80, 0x20, 0x0F], Bits32, 0xF0, 1, Some(0), ZF | PF),
        (&[0xF0, 0x83, 0x20, 0xFE], Bits64, 0xFF, 4, Some(0xFE), 0),
    ];
    for (bytes, mode, value, width, wrote, flags) in cases {
        let (cpu, dev) = alu_run(bytes, mode, value, |_| {});
        assert_rmw(&dev, width, wrote);
        assert_eq!(cpu.rflags, 2 | flags, "{bytes:02x?}");
    }
}

#[test]
fn test_with_an_immediate() {
    // (bytes, device, width, RFLAGS after): never writes.
    let cases: [(&[u8], u64, Width, u64); 5] = [
        (&[0xF6, 0x00, 0x80], 0x80, 1, SF),
        (
            &[0xF7, 0x00, 0x00, 0x00, 0x00, 0x80],
            0x8000_0000,
            4,
            SF | PF,
        ),
        (&[0x66, 0xF7, 0x00, 0x00, 0x80], 0x8000, 2, SF | PF),
        // 32 bits of 1 << 32 are 0; the sign-extended 64-bit immediate finds the bit.
        (&[0xF7, 0x00, 0xFF, 0xFF, 0xFF, 0xFF], 1 << 32, 4, ZF | PF),
        (&[0x48, 0xF7, 0x00, 0xFF, 0xFF, 0xFF, 0xFF], 1 << 32, 8, PF),
    ];
    for (bytes, value, width, flags) in cases {
        let (cpu, dev) = alu_run(bytes, Bits64, value, |c| c.rflags = 2 | CF | OF | AF);
        assert_rmw(&dev, width, None);
        assert_eq!(cpu.rflags, 2 | flags, "{bytes:02x?}");
        assert_eq!(dev.get(PAGE + 0x40), value);
    }
}
