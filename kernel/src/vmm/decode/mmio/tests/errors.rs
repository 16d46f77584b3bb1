// SPDX-License-Identifier: MIT OR Apache-2.0
//! What is refused, and how: register operands, other instructions, LOCK where the CPU raises
//! #UD, truncation, the 15-byte limit, accesses across a page end, and fetch failures.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::super::super::walk::{GuestRead, PagingState, WalkError};
use super::*;

use CodeMode::{Bits32, Bits64};

fn refused(bytes: &[u8], mode: CodeMode) -> MmioError {
    MmioInstruction::decode(bytes, mode).expect_err("must be refused")
}

#[test]
fn register_operands_make_no_access() {
    let cases: [(&[u8], Opcode); 6] = [
        (&[0x8B, 0xC0], Opcode::OneByte(0x8B)),
        (&[0x89, 0xC8], Opcode::OneByte(0x89)),
        (&[0x83, 0xC0, 0x01], Opcode::OneByte(0x83)),
        (&[0xC7, 0xC0, 0, 0, 0, 0], Opcode::OneByte(0xC7)),
        (&[0x0F, 0xB6, 0xC0], Opcode::TwoByte(0xB6)),
        (&[0x0F, 0xBA, 0xE0, 0x05], Opcode::TwoByte(0xBA)),
    ];
    for (bytes, op) in cases {
        assert_eq!(refused(bytes, Bits64), MmioError::RegisterOperand(op));
    }
}

#[test]
fn other_instructions_are_refused() {
    let cases: [(&[u8], CodeMode, Opcode); 12] = [
        (&[0xFF, 0x30], Bits64, Opcode::OneByte(0xFF)),
        (&[0x82, 0x00, 0x01], Bits32, Opcode::OneByte(0x82)),
        (&[0x63, 0x00], Bits32, Opcode::OneByte(0x63)),
        (&[0xC7, 0x08, 0, 0, 0, 0], Bits64, Opcode::OneByte(0xC7)),
        (&[0xC6, 0xF8, 0x00], Bits64, Opcode::OneByte(0xC6)),
        (&[0xF6, 0x10], Bits64, Opcode::OneByte(0xF6)),
        (&[0xF7, 0x08, 0, 0, 0, 0], Bits64, Opcode::OneByte(0xF7)),
        (&[0x0F, 0xBA, 0x00, 0x05], Bits64, Opcode::TwoByte(0xBA)),
        (&[0x0F, 0xAF, 0x00], Bits64, Opcode::TwoByte(0xAF)),
        (&[0x0F, 0xA3, 0x00], Bits64, Opcode::TwoByte(0xA3)),
        (&[0xA4], Bits64, Opcode::OneByte(0xA4)),
        (
            &[0x05, 0x01, 0x00, 0x00, 0x00],
            Bits64,
            Opcode::OneByte(0x05),
        ),
    ];
    for (bytes, mode, op) in cases {
        let e = refused(bytes, mode);
        assert_eq!(
            e,
            MmioError::Decode(DecodeError::Unsupported(op)),
            "{bytes:02x?}"
        );
    }
}

#[test]
fn lock_where_the_cpu_raises_ud() {
    let cases: [(&[u8], Opcode); 9] = [
        (&[0xF0, 0x8B, 0x00], Opcode::OneByte(0x8B)),
        (&[0xF0, 0x89, 0x00], Opcode::OneByte(0x89)),
        (&[0xF0, 0x39, 0x08], Opcode::OneByte(0x39)),
        (&[0xF0, 0x0B, 0x08], Opcode::OneByte(0x0B)),
        (&[0xF0, 0x85, 0x08], Opcode::OneByte(0x85)),
        (&[0xF0, 0x83, 0x38, 0x01], Opcode::OneByte(0x83)),
        (&[0xF0, 0xAB], Opcode::OneByte(0xAB)),
        (&[0xF0, 0x0F, 0xBA, 0x20, 0x03], Opcode::TwoByte(0xBA)),
        (&[0xF0, 0x0F, 0xB6, 0x00], Opcode::TwoByte(0xB6)),
    ];
    for (bytes, op) in cases {
        assert_eq!(
            refused(bytes, Bits64),
            MmioError::Decode(DecodeError::Lock(op))
        );
    }
}

#[test]
fn truncated_and_too_long() {
    let store = [
        0xc7, 0x04, 0x25, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00,
    ];
    for have in 0..store.len() {
        assert_eq!(
            refused(&store[..have], Bits64),
            MmioError::Decode(DecodeError::Truncated { have })
        );
    }
    // 13 operand-size prefixes and 8B 00 are 15 bytes: allowed; one more is #GP.
    let mut bytes = vec![0x66; 13];
    bytes.extend_from_slice(&[0x8B, 0x00]);
    assert_eq!(MmioInstruction::decode(&bytes, Bits64).unwrap().len, 15);
    bytes.insert(0, 0x66);
    assert_eq!(
        refused(&bytes, Bits64),
        MmioError::Decode(DecodeError::TooLong)
    );
}

#[test]
fn accesses_across_the_page_end_are_refused() {
    let mut dev = Fake::new();
    for (bytes, offset, ok) in [
        (&[0x8B, 0x00][..], 0xFFC, true),
        (&[0x8B, 0x00], 0xFFD, false),
        (&[0x48, 0x8B, 0x00], 0xFF8, true),
        (&[0x48, 0x8B, 0x00], 0xFF9, false),
        (&[0x8A, 0x00], 0xFFF, true),
    ] {
        dev.log.clear();
        let mut cpu = Cpu::new();
        let r = cpu.run(bytes, Bits64, PAGE + offset, &mut dev);
        if ok {
            assert!(r.is_ok());
        } else {
            let width = if bytes.len() == 3 { 8 } else { 4 };
            let gpa = PAGE + offset;
            assert_eq!(r, Err(MmioError::CrossesPage { gpa, width }));
            assert!(dev.log.is_empty(), "nothing reaches the device");
            assert_eq!(cpu, Cpu::new(), "nor the registers");
        }
    }
}

#[test]
fn errors_say_what_went_wrong() {
    let e = refused(&[0x8B, 0xC0], Bits64);
    assert_eq!(
        e.to_string(),
        "MMIO instruction 8B has a register operand, no memory access"
    );
    let e = MmioError::CrossesPage {
        gpa: 0xFEE0_0FFE,
        width: 4,
    };
    assert_eq!(
        e.to_string(),
        "4-byte MMIO access at 0xfee00ffe crosses a page boundary"
    );
    let e = refused(&[0xF0, 0x8B, 0x00], Bits64);
    assert_eq!(e.to_string(), "MMIO instruction decode: LOCK prefix on 8B");
}

/// Flat guest RAM (paging off).
struct Flat(Vec<u8>);

impl GuestRead for Flat {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        let Ok(start) = usize::try_from(gpa) else {
            return false;
        };
        match self.0.get(start..start + buf.len()) {
            Some(s) => {
                buf.copy_from_slice(s);
                true
            }
            None => false,
        }
    }
}

#[test]
fn fetch_reads_and_decodes() {
    let mut ram = Flat(vec![0; 0x2000]);
    let store = [
        0xc7, 0x04, 0x25, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00,
    ];
    ram.0[0x100..0x100 + store.len()].copy_from_slice(&store);
    let state = PagingState::default();
    let d = fetch(&state, &mut ram, 0x100, Bits64).unwrap();
    assert_eq!((d.len, d.width), (11, 4));
    // At the end of RAM: a short instruction decodes, a long one reports the read failure.
    ram.0[0x1FFE..].copy_from_slice(&[0x89, 0x02]);
    assert_eq!(fetch(&state, &mut ram, 0x1FFE, Bits64).unwrap().len, 2);
    ram.0[0x1FFE..].copy_from_slice(&[0xC7, 0x00]);
    assert_eq!(
        fetch(&state, &mut ram, 0x1FFE, Bits64),
        Err(MmioError::Fetch(WalkError::Unreadable { gpa: 0x2000 }))
    );
    assert!(matches!(
        fetch(&state, &mut ram, 0x2000, Bits64),
        Err(MmioError::Fetch(_))
    ));
}
