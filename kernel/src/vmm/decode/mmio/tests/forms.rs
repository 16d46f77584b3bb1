// SPDX-License-Identifier: MIT OR Apache-2.0
//! Each instruction form at each width, in each mode: what the device sees, what the registers
//! become, and the length.

use alloc::vec;

use super::super::alu::mask;
use super::*;

use CodeMode::{Bits16, Bits32, Bits64};

/// The register a load or exchange case checks.
type Pick = fn(&Cpu) -> u64;
const RAX: Pick = |c| c.gprs.rax;
const RCX: Pick = |c| c.gprs.rcx;
const RSP: Pick = |c| c.rsp;
const R8: Pick = |c| c.gprs.r8;
const R15: Pick = |c| c.gprs.r15;

/// Checks loads: (bytes, mode, register, its value after, length); the device holds `value`
/// and sees one read of `width` bytes.
fn loads(value: u64, cases: &[(&[u8], CodeMode, Pick, u64, Width)]) {
    for &(bytes, mode, pick, expected, width) in cases {
        let (len, cpu, dev) = run(bytes, mode, 0x320, value, |_| {});
        assert_eq!(len, bytes.len(), "{bytes:02x?}");
        assert_eq!(pick(&cpu), expected, "{bytes:02x?} in {mode:?}");
        let read = Access::Read {
            gpa: PAGE + 0x320,
            width,
        };
        assert_eq!(dev.log, [read], "{bytes:02x?}");
        assert_eq!(cpu.rflags, 2, "loads leave RFLAGS alone");
    }
}

/// Checks stores: (bytes, mode, width, value written, length) with `setup` applied.
fn stores(setup: fn(&mut Cpu), cases: &[(&[u8], CodeMode, Width, u64, usize)]) {
    for &(bytes, mode, width, value, expected_len) in cases {
        let (len, cpu, dev) = run(bytes, mode, 0x40, u64::MAX, setup);
        assert_eq!(len, expected_len, "{bytes:02x?}");
        let write = Access::Write {
            gpa: PAGE + 0x40,
            width,
            value,
        };
        assert_eq!(dev.log, [write], "{bytes:02x?} in {mode:?}");
        let kept = !mask(width);
        assert_eq!(
            dev.get(PAGE + 0x40),
            kept | value,
            "only {width} bytes change"
        );
        let mut unchanged = Cpu::new();
        setup(&mut unchanged);
        assert_eq!(cpu, unchanged, "stores leave registers alone");
    }
}

#[test]
fn real_disassembly() {
    // mov eax, [rdi+0x320]
    let b = [0x8b, 0x87, 0x20, 0x03, 0x00, 0x00];
    let (len, cpu, _) = run(&b, Bits64, 0x320, 0xDEAD_BEEF_1234_5678, |_| {});
    assert_eq!((len, cpu.gprs.rax), (6, 0x1234_5678));
    // mov dword [0xfee000b0], 0
    let b = [
        0xc7, 0x04, 0x25, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00,
    ];
    let (len, _, dev) = run(&b, Bits64, 0xB0, u64::MAX, |_| {});
    assert_eq!(len, 11);
    let write = Access::Write {
        gpa: PAGE + 0xB0,
        width: 4,
        value: 0,
    };
    assert_eq!(dev.log, [write]);
    assert_eq!(dev.get(PAGE + 0xB0), 0xFFFF_FFFF_0000_0000);
    // mov [rdx], eax
    let (len, _, dev) = run(&[0x89, 0x02], Bits64, 0x300, 0, |_| {});
    assert_eq!(len, 2);
    let write = Access::Write {
        gpa: PAGE + 0x300,
        width: 4,
        value: 0xAAAA_AAAA,
    };
    assert_eq!(dev.log, [write]);
}

#[test]
fn mov_loads_each_width_and_register() {
    let v = 0x8877_6655_4433_2211;
    loads(
        v,
        &[
            (&[0x8A, 0x00], Bits64, RAX, 0xAAAA_AAAA_AAAA_AA11, 1),
            (&[0x66, 0x8B, 0x00], Bits64, RAX, 0xAAAA_AAAA_AAAA_2211, 2),
            (&[0x8B, 0x00], Bits64, RAX, 0x4433_2211, 4),
            (&[0x48, 0x8B, 0x00], Bits64, RAX, v, 8),
            (&[0x8B, 0x00], Bits32, RAX, 0x4433_2211, 4),
            (&[0x66, 0x8B, 0x00], Bits32, RAX, 0xAAAA_AAAA_AAAA_2211, 2),
            (&[0x8A, 0x00], Bits32, RAX, 0xAAAA_AAAA_AAAA_AA11, 1),
            (&[0x8B, 0x07], Bits16, RAX, 0xAAAA_AAAA_AAAA_2211, 2),
            (&[0x66, 0x8B, 0x07], Bits16, RAX, 0x4433_2211, 4),
            // AH without REX, SPL with one.
            (&[0x8A, 0x20], Bits64, RAX, 0xAAAA_AAAA_AAAA_11AA, 1),
            (&[0x8A, 0x20], Bits16, RAX, 0xAAAA_AAAA_AAAA_11AA, 1),
            (&[0x40, 0x8A, 0x20], Bits64, RSP, 0x4444_4444_4444_4411, 1),
            (&[0x8B, 0x20], Bits64, RSP, 0x4433_2211, 4),
            (&[0x8A, 0x08], Bits64, RCX, 0xCCCC_CCCC_CCCC_CC11, 1),
            (&[0x44, 0x8B, 0x00], Bits64, R8, 0x4433_2211, 4),
            (&[0x45, 0x8A, 0x00], Bits64, R8, 0x8888_8888_8888_8811, 1),
            (&[0x4C, 0x8B, 0x38], Bits64, R15, v, 8),
        ],
    );
}

#[test]
fn mov_stores_each_width_and_register() {
    let setup: fn(&mut Cpu) = |c| c.gprs.rax = 0x0102_0304_0506_0708;
    stores(
        setup,
        &[
            (&[0x88, 0x00], Bits64, 1, 0x08, 2),
            (&[0x88, 0x20], Bits64, 1, 0x07, 2),
            (&[0x40, 0x88, 0x20], Bits64, 1, 0x44, 3),
            (&[0x88, 0x08], Bits32, 1, 0xCC, 2),
            (&[0x66, 0x89, 0x00], Bits64, 2, 0x0708, 3),
            (&[0x89, 0x00], Bits64, 4, 0x0506_0708, 2),
            (&[0x48, 0x89, 0x00], Bits64, 8, 0x0102_0304_0506_0708, 3),
            (&[0x44, 0x89, 0x00], Bits64, 4, 0x8888_8808, 3),
            (&[0x4C, 0x89, 0x38], Bits64, 8, 0x8888_8888_8888_8815, 3),
            (&[0x89, 0x20], Bits64, 4, 0x4444_4444, 2),
            (&[0x89, 0x00], Bits32, 4, 0x0506_0708, 2),
            (&[0x89, 0x00], Bits16, 2, 0x0708, 2),
            (&[0x66, 0x89, 0x00], Bits16, 4, 0x0506_0708, 3),
        ],
    );
}

#[test]
fn mov_stores_of_immediates() {
    stores(
        |_| {},
        &[
            (&[0xC6, 0x00, 0x5A], Bits64, 1, 0x5A, 3),
            (&[0x66, 0xC7, 0x00, 0x34, 0x12], Bits64, 2, 0x1234, 5),
            (
                &[0xC7, 0x00, 0x78, 0x56, 0x34, 0x12],
                Bits64,
                4,
                0x1234_5678,
                6,
            ),
            (
                &[0x48, 0xC7, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
                Bits64,
                8,
                u64::MAX,
                7,
            ),
            (
                &[0x48, 0xC7, 0x00, 0x00, 0x00, 0x00, 0x80],
                Bits64,
                8,
                0xFFFF_FFFF_8000_0000,
                7,
            ),
            (&[0xC7, 0x00, 0x34, 0x12], Bits16, 2, 0x1234, 4),
            (
                &[0x66, 0xC7, 0x00, 0x78, 0x56, 0x34, 0x12],
                Bits16,
                4,
                0x1234_5678,
                7,
            ),
            (
                &[0xC7, 0x00, 0x78, 0x56, 0x34, 0x12],
                Bits32,
                4,
                0x1234_5678,
                6,
            ),
            // mov dword [rax+0x300], 1: displacement then immediate.
            (
                &[0xC7, 0x80, 0x00, 0x03, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00],
                Bits64,
                4,
                1,
                10,
            ),
            // mov byte [rip+0x10], 0x7F
            (
                &[0xC6, 0x05, 0x10, 0x00, 0x00, 0x00, 0x7F],
                Bits64,
                1,
                0x7F,
                7,
            ),
        ],
    );
}

#[test]
fn movzx_movsx_movsxd() {
    let byte_word = 0x0000_0000_8000_8080;
    loads(
        byte_word,
        &[
            (&[0x0F, 0xB6, 0x00], Bits64, RAX, 0x80, 1),
            (&[0x0F, 0xBE, 0x00], Bits64, RAX, 0xFFFF_FF80, 1),
            (
                &[0x48, 0x0F, 0xBE, 0x00],
                Bits64,
                RAX,
                0xFFFF_FFFF_FFFF_FF80,
                1,
            ),
            (&[0x0F, 0xB7, 0x00], Bits64, RAX, 0x8080, 2),
            (&[0x0F, 0xBF, 0x00], Bits64, RAX, 0xFFFF_8080, 2),
            (
                &[0x48, 0x0F, 0xBF, 0x00],
                Bits64,
                RAX,
                0xFFFF_FFFF_FFFF_8080,
                2,
            ),
            (
                &[0x66, 0x0F, 0xB6, 0x00],
                Bits64,
                RAX,
                0xAAAA_AAAA_AAAA_0080,
                1,
            ),
            (
                &[0x66, 0x0F, 0xBE, 0x00],
                Bits64,
                RAX,
                0xAAAA_AAAA_AAAA_FF80,
                1,
            ),
            (&[0x0F, 0xB6, 0x00], Bits16, RAX, 0xAAAA_AAAA_AAAA_0080, 1),
            (&[0x66, 0x0F, 0xBF, 0x00], Bits16, RAX, 0xFFFF_8080, 2),
            (&[0x0F, 0xBE, 0x00], Bits32, RAX, 0xFFFF_FF80, 1),
            (&[0x44, 0x0F, 0xB7, 0x00], Bits64, R8, 0x8080, 2),
            // MOVSXD: 4 bytes sign-extended with REX.W, a plain 32-bit load without.
            (&[0x48, 0x63, 0x00], Bits64, RAX, 0xFFFF_FFFF_8000_8080, 4),
            (&[0x63, 0x00], Bits64, RAX, 0x8000_8080, 4),
            (&[0x66, 0x63, 0x00], Bits64, RAX, 0xAAAA_AAAA_AAAA_8080, 2),
        ],
    );
}

#[test]
fn mov_with_a_memory_offset() {
    let v = 0x8877_6655_4433_2211;
    let mut b64 = vec![0x48, 0xA1];
    b64.extend_from_slice(&(PAGE + 0x320).to_le_bytes());
    let mut b64_32 = vec![0xA1];
    b64_32.extend_from_slice(&(PAGE + 0x320).to_le_bytes());
    let mut b64_8 = vec![0xA0];
    b64_8.extend_from_slice(&(PAGE + 0x320).to_le_bytes());
    let b67 = [0x67, 0xA1, 0x20, 0x03, 0xE0, 0xFE];
    let b16 = [0x67, 0xA1, 0x20, 0x03, 0xE0, 0xFE];
    loads(
        v,
        &[
            (&b64, Bits64, RAX, v, 8),
            (&b64_32, Bits64, RAX, 0x4433_2211, 4),
            (&b64_8, Bits64, RAX, 0xAAAA_AAAA_AAAA_AA11, 1),
            (&b67, Bits64, RAX, 0x4433_2211, 4),
            (&[0xA1, 0x20, 0x03, 0xE0, 0xFE], Bits32, RAX, 0x4433_2211, 4),
            (&[0xA1, 0x20, 0x03], Bits16, RAX, 0xAAAA_AAAA_AAAA_2211, 2),
            (&b16, Bits16, RAX, 0xAAAA_AAAA_AAAA_2211, 2),
        ],
    );
    let d = MmioInstruction::decode(&b64, Bits64).unwrap();
    assert_eq!((d.len, d.memory.displacement), (10, 0xFEE0_0320));
    assert_eq!(d.memory.effective_address(&[0; 16], 0), PAGE + 0x320);
    let setup: fn(&mut Cpu) = |c| c.gprs.rax = 0x0102_0304_0506_0708;
    stores(
        setup,
        &[
            (&[0xA3, 0x40, 0x00, 0xE0, 0xFE], Bits32, 4, 0x0506_0708, 5),
            (&[0x66, 0xA3, 0x40, 0x00, 0xE0, 0xFE], Bits32, 2, 0x0708, 6),
            (&[0xA2, 0x40, 0x00], Bits16, 1, 0x08, 3),
            (
                &[0x67, 0x48, 0xA3, 0x40, 0x00, 0xE0, 0xFE],
                Bits64,
                8,
                0x0102_0304_0506_0708,
                7,
            ),
        ],
    );
}

#[test]
fn xchg_swaps_register_and_memory() {
    // xchg [rax], ecx
    let (len, cpu, dev) = run(&[0x87, 0x08], Bits64, 0x10, 0x1234_5678, |_| {});
    assert_eq!((len, cpu.gprs.rcx), (2, 0x1234_5678));
    let (gpa, width) = (PAGE + 0x10, 4);
    let write = Access::Write {
        gpa,
        width,
        value: 0xCCCC_CCCC,
    };
    assert_eq!(dev.log, [Access::Read { gpa, width }, write]);
    // xchg [rax], ah
    let (_, cpu, dev) = run(&[0x86, 0x20], Bits64, 0x10, 0x77, |c| c.gprs.rax = 0x5500);
    assert_eq!((cpu.gprs.rax, dev.get(gpa)), (0x7700, 0x55));
    // lock xchg [rax], rcx; xacquire xchg [rax], r9w
    let (_, cpu, dev) = run(&[0xF0, 0x48, 0x87, 0x08], Bits64, 0x10, 7, |_| {});
    assert_eq!((cpu.gprs.rcx, dev.get(gpa)), (7, 0xCCCC_CCCC_CCCC_CCCC));
    let (_, cpu, dev) = run(&[0xF2, 0x66, 0x44, 0x87, 0x08], Bits64, 0x10, 7, |_| {});
    assert_eq!((cpu.gprs.r9, dev.get(gpa)), (0x8888_8888_8888_0007, 0x8809));
    assert_eq!(cpu.rflags, 2);
}

#[test]
fn bit_tests_with_an_immediate() {
    // (bytes, bit 5 set in the device: new device value, CF)
    let cases: [(&[u8], u64, bool); 10] = [
        (&[0x0F, 0xBA, 0x20, 0x05], 0x20, true),
        (&[0x0F, 0xBA, 0x20, 0x04], 0x20, false),
        (&[0x0F, 0xBA, 0x28, 0x03], 0x28, false),
        (&[0x0F, 0xBA, 0x30, 0x05], 0x00, true),
        (&[0x0F, 0xBA, 0x38, 0x05], 0x00, true),
        (&[0x0F, 0xBA, 0x38, 0x00], 0x21, false),
        // The offset is taken modulo the operand size: 37 % 32, 21 % 16.
        (&[0x0F, 0xBA, 0x20, 0x25], 0x20, true),
        (&[0x66, 0x0F, 0xBA, 0x20, 0x15], 0x20, true),
        (
            &[0x48, 0x0F, 0xBA, 0x28, 0x3F],
            0x8000_0000_0000_0020,
            false,
        ),
        (&[0xF0, 0x0F, 0xBA, 0x28, 0x03], 0x28, false),
    ];
    for (bytes, new, cf) in cases {
        let zf_sf = ZF | SF | 2;
        let (len, cpu, dev) = run(bytes, Bits64, 0x80, 0x20, |c| c.rflags = zf_sf | CF);
        assert_eq!(len, bytes.len());
        assert_eq!(dev.get(PAGE + 0x80), new, "{bytes:02x?}");
        let wrote = dev.log.iter().any(|a| matches!(a, Access::Write { .. }));
        assert_eq!(
            wrote,
            bytes[bytes.len() - 2] != 0x20,
            "only BT does not write"
        );
        let expect = if cf { zf_sf | CF } else { zf_sf };
        assert_eq!(
            cpu.rflags, expect,
            "{bytes:02x?}: CF is the bit, other flags stay"
        );
    }
}

#[test]
fn stos_stores_and_moves_rdi() {
    /// (bytes, mode, RFLAGS, RDI before, width (of RAX, written), RDI after)
    type Case = (&'static [u8], CodeMode, u64, u64, Width, u64);
    let rax = 0x0102_0304_0506_0708u64;
    let cases: [Case; 8] = [
        (&[0xAB], Bits64, 2, 0x1000, 4, 0x1004),
        (&[0xAB], Bits64, 2 | DF, 0x1000, 4, 0x0FFC),
        (&[0x48, 0xAB], Bits64, 2, 0x1000, 8, 0x1008),
        (&[0xAA], Bits64, 2, 0x1000, 1, 0x1001),
        (&[0x66, 0xAB], Bits64, 2 | DF, 0x1000, 2, 0x0FFE),
        // 32-bit address size: EDI wraps and zero-extends.
        (&[0x67, 0xAB], Bits64, 2, 0xFFFF_FFFF_FFFF_FFFC, 4, 0),
        (&[0xAB], Bits32, 2, 0xFFFF_FFFC, 4, 0),
        // 16-bit: DI wraps, the rest of RDI stays.
        (&[0xAB], Bits16, 2, 0x1234_FFFE, 2, 0x1234_0000),
    ];
    for (bytes, mode, rflags, rdi, width, rdi_after) in cases {
        let (len, cpu, dev) = run(bytes, mode, 0x100, 0, |c| {
            c.gprs.rax = rax;
            c.gprs.rdi = rdi;
            c.rflags = rflags;
        });
        assert_eq!(len, bytes.len());
        let value = rax & mask(width);
        let gpa = PAGE + 0x100;
        assert_eq!(
            dev.log,
            [Access::Write { gpa, width, value }],
            "{bytes:02x?}"
        );
        assert_eq!(cpu.gprs.rdi, rdi_after, "{bytes:02x?} in {mode:?}");
        assert_eq!(cpu.gprs.rcx, Cpu::new().gprs.rcx, "no REP, no count");
    }
}

#[test]
fn rep_stos_runs_one_iteration_at_a_time() {
    /// (bytes, mode, RCX before, stores, RCX after, RIP moves)
    type Case = (&'static [u8], CodeMode, u64, bool, u64, usize);
    let cases: [Case; 6] = [
        (&[0xF3, 0xAB], Bits64, 3, true, 2, 0),
        (&[0xF3, 0xAB], Bits64, 1, true, 0, 2),
        (&[0xF3, 0xAB], Bits64, 0, false, 0, 2),
        (&[0xF3, 0x48, 0xAB], Bits64, 2, true, 1, 0),
        // ECX counts with a 32-bit address size: 0 in its low half means none.
        (
            &[0xF3, 0x67, 0xAB],
            Bits64,
            0x1_0000_0000,
            false,
            0x1_0000_0000,
            3,
        ),
        (&[0xF3, 0xAB], Bits16, 0xFFFF_0001, true, 0xFFFF_0000, 2),
    ];
    for (bytes, mode, rcx, stores, rcx_after, advance) in cases {
        let (len, cpu, dev) = run(bytes, mode, 0x100, 0, |c| {
            c.gprs.rcx = rcx;
            c.gprs.rdi = 0x100;
        });
        assert_eq!(len, advance, "{bytes:02x?} with rCX {rcx:#x}");
        assert_eq!(dev.log.len(), usize::from(stores));
        assert_eq!(cpu.gprs.rcx, rcx_after);
        let step = if stores {
            MmioInstruction::decode(bytes, mode).unwrap().width
        } else {
            0
        };
        assert_eq!(cpu.gprs.rdi, 0x100 + u64::from(step));
    }
}
