// SPDX-License-Identifier: MIT OR Apache-2.0
//! Prefixes and addressing forms: operand and address size in each mode, REX, segment
//! overrides, the XACQUIRE/XRELEASE hints and the uses of F2/F3 that are refused.

use super::super::super::length::{Base, Segment};
use super::*;

use CodeMode::{Bits16, Bits32, Bits64};

fn decode(bytes: &[u8], mode: CodeMode) -> MmioInstruction {
    MmioInstruction::decode(bytes, mode).unwrap_or_else(|e| panic!("{bytes:02x?}: {e}"))
}

#[test]
fn operand_size_in_each_mode() {
    // (prefixes before 8B 00, mode, width)
    let cases: [(&[u8], CodeMode, Width); 9] = [
        (&[], Bits16, 2),
        (&[0x66], Bits16, 4),
        (&[], Bits32, 4),
        (&[0x66], Bits32, 2),
        (&[], Bits64, 4),
        (&[0x66], Bits64, 2),
        (&[0x48], Bits64, 8),
        (&[0x66, 0x48], Bits64, 8),
        // A REX followed by a legacy prefix is ignored.
        (&[0x48, 0x66], Bits64, 2),
    ];
    for (prefixes, mode, width) in cases {
        let mut bytes = prefixes.to_vec();
        bytes.extend_from_slice(&[0x8B, 0x00]);
        let d = decode(&bytes, mode);
        assert_eq!(
            (d.width, d.len),
            (width, bytes.len()),
            "{bytes:02x?} in {mode:?}"
        );
    }
}

#[test]
fn address_size_and_memory_operands() {
    /// (bytes of a mov eax/ax load, mode, length, address size, base, index)
    type Case = (&'static [u8], CodeMode, usize, u8, Option<Base>, Option<u8>);
    let cases: [Case; 11] = [
        (&[0x8B, 0x07], Bits16, 2, 2, Some(Base::Gpr(3)), None),
        (&[0x8B, 0x00], Bits16, 2, 2, Some(Base::Gpr(3)), Some(6)),
        (&[0x8B, 0x06, 0x20, 0x03], Bits16, 4, 2, None, None),
        (
            &[0x67, 0x8B, 0x04, 0x24],
            Bits16,
            4,
            4,
            Some(Base::Gpr(4)),
            None,
        ),
        (&[0x67, 0x8B, 0x07], Bits32, 3, 2, Some(Base::Gpr(3)), None),
        (&[0x8B, 0x40, 0x10], Bits32, 3, 4, Some(Base::Gpr(0)), None),
        (
            &[0x67, 0x8B, 0x47, 0x10],
            Bits64,
            4,
            4,
            Some(Base::Gpr(7)),
            None,
        ),
        (
            &[0x41, 0x8B, 0x04, 0x24],
            Bits64,
            4,
            8,
            Some(Base::Gpr(12)),
            None,
        ),
        (
            &[0x42, 0x8B, 0x04, 0x20],
            Bits64,
            4,
            8,
            Some(Base::Gpr(0)),
            Some(12),
        ),
        (
            &[0x8B, 0x05, 0x00, 0x10, 0x00, 0x00],
            Bits64,
            6,
            8,
            Some(Base::Rip),
            None,
        ),
        (
            &[0x8B, 0x84, 0x8F, 0x00, 0x03, 0x00, 0x00],
            Bits64,
            7,
            8,
            Some(Base::Gpr(7)),
            Some(1),
        ),
    ];
    for (bytes, mode, len, asize, base, index) in cases {
        let d = decode(bytes, mode);
        let m = d.memory;
        assert_eq!(
            (d.len, m.address_size, m.base, m.index),
            (len, asize, base, index),
            "{bytes:02x?} in {mode:?}"
        );
    }
    // The memory operand gives the effective address to callers that want to check it.
    let d = decode(&[0x8B, 0x87, 0x20, 0x03, 0x00, 0x00], Bits64);
    let mut gprs = [0; 16];
    gprs[7] = PAGE;
    assert_eq!(d.memory.effective_address(&gprs, 0), PAGE + 0x320);
}

#[test]
fn segment_overrides_are_kept_and_change_nothing_else() {
    let cases = [
        (0x26, Segment::Es),
        (0x2E, Segment::Cs),
        (0x36, Segment::Ss),
        (0x3E, Segment::Ds),
        (0x64, Segment::Fs),
        (0x65, Segment::Gs),
    ];
    for mode in [Bits16, Bits32, Bits64] {
        for (prefix, segment) in cases {
            let (len, cpu, _) = run(&[prefix, 0x8A, 0x00], mode, 0, 0x5A, |_| {});
            assert_eq!((len, cpu.gprs.rax & 0xFF), (3, 0x5A));
            let d = decode(&[prefix, 0x89, 0x00], mode);
            assert_eq!(d.memory.segment, segment);
        }
    }
    // Several prefixes in any order: CS, 16-bit addressing, 16-bit operand in 32-bit code.
    let d = decode(&[0x2E, 0x67, 0x66, 0x8B, 0x00], Bits32);
    assert_eq!((d.len, d.width, d.memory.address_size), (5, 2, 2));
    assert_eq!(d.memory.segment, Segment::Cs);
    // STOS always writes ES, overrides or not.
    assert_eq!(decode(&[0x64, 0xAB], Bits64).memory.segment, Segment::Es);
}

#[test]
fn rex_bytes_are_instructions_outside_64_bit_mode() {
    for mode in [Bits16, Bits32] {
        assert_eq!(
            MmioInstruction::decode(&[0x48, 0x8B, 0x00], mode),
            Err(MmioError::Decode(DecodeError::Unsupported(
                Opcode::OneByte(0x48)
            )))
        );
    }
}

#[test]
fn hle_hints_are_accepted_where_defined() {
    let ok: [&[u8]; 6] = [
        &[0xF3, 0x89, 0x00],
        &[0xF3, 0xC7, 0x00, 0x01, 0x00, 0x00, 0x00],
        &[0xF2, 0xF0, 0x09, 0x08],
        &[0xF3, 0xF0, 0x0F, 0xBA, 0x28, 0x01],
        &[0xF2, 0x87, 0x08],
        &[0xF3, 0xF0, 0x83, 0x00, 0x01],
    ];
    for bytes in ok {
        let d = decode(bytes, Bits64);
        assert_eq!(d.len, bytes.len());
    }
}

#[test]
fn other_rep_prefixes_are_refused() {
    let refused: [(&[u8], Opcode); 8] = [
        (&[0xF3, 0x8B, 0x00], Opcode::OneByte(0x8B)),
        (&[0xF2, 0x89, 0x00], Opcode::OneByte(0x89)),
        (&[0xF3, 0xA3, 0, 0, 0, 0], Opcode::OneByte(0xA3)),
        (&[0xF3, 0x09, 0x08], Opcode::OneByte(0x09)),
        (&[0xF3, 0x39, 0x08], Opcode::OneByte(0x39)),
        (&[0xF2, 0xAB], Opcode::OneByte(0xAB)),
        (&[0xF3, 0x0F, 0xB6, 0x00], Opcode::TwoByte(0xB6)),
        (&[0xF3, 0x0F, 0xB8, 0x00], Opcode::TwoByte(0xB8)),
    ];
    for (bytes, op) in refused {
        assert_eq!(
            MmioInstruction::decode(bytes, Bits32),
            Err(MmioError::Decode(DecodeError::Unsupported(op))),
            "{bytes:02x?}"
        );
    }
}

#[test]
fn reads_and_writes_memory() {
    // (bytes, reads, writes)
    let cases: [(&[u8], bool, bool); 10] = [
        (&[0x8B, 0x00], true, false),
        (&[0x89, 0x00], false, true),
        (&[0xAB], false, true),
        (&[0x09, 0x00], true, true),
        (&[0x0B, 0x00], true, false),
        (&[0x39, 0x00], true, false),
        (&[0x85, 0x00], true, false),
        (&[0x87, 0x00], true, true),
        (&[0x0F, 0xBA, 0x20, 0x01], true, false),
        (&[0x0F, 0xBA, 0x28, 0x01], true, true),
    ];
    for (bytes, reads, writes) in cases {
        let d = decode(bytes, Bits64);
        assert_eq!(
            (d.reads_memory(), d.writes_memory()),
            (reads, writes),
            "{bytes:02x?}"
        );
    }
}
