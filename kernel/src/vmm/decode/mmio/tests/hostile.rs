// SPDX-License-Identifier: MIT OR Apache-2.0
//! Hostile input: random bytes, and random mixes of prefixes and handled opcodes, never panic;
//! what decodes is consistent (its length, its truncation, the accesses it makes).

use alloc::vec::Vec;

use super::*;
use crate::testutil::Rng;

use CodeMode::{Bits16, Bits32, Bits64};

/// Bytes that start the handled forms, and prefixes, to make random input decode often.
const OPCODES: [u8; 30] = [
    0x00, 0x01, 0x02, 0x03, 0x09, 0x0B, 0x21, 0x29, 0x31, 0x39, 0x3B, 0x63, 0x80, 0x81, 0x83, 0x84,
    0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8B, 0xA1, 0xA3, 0xAB, 0xC6, 0xC7, 0xF7, 0x0F,
];
const PREFIXES: [u8; 16] = [
    0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x40, 0x41, 0x44, 0x48, 0x4F,
];
const SECOND: [u8; 6] = [0xB6, 0xB7, 0xBE, 0xBF, 0xBA, 0xA3];

/// Decodes and, if that works, executes `bytes` in `mode` at a random offset of the fake
/// device's page, checking what must hold whatever the bytes. Returns whether it decoded.
fn check(bytes: &[u8], mode: CodeMode, rng: &mut Rng) -> bool {
    let Ok(d) = MmioInstruction::decode(bytes, mode) else {
        return false;
    };
    assert!(
        (1..=15).contains(&d.len) && d.len <= bytes.len(),
        "{bytes:02x?}"
    );
    assert!(matches!(d.width, 1 | 2 | 4 | 8), "{bytes:02x?}");
    // The same instruction from exactly its bytes; one byte short is truncated.
    assert_eq!(MmioInstruction::decode(&bytes[..d.len], mode), Ok(d));
    assert_eq!(
        MmioInstruction::decode(&bytes[..d.len - 1], mode),
        Err(MmioError::Decode(DecodeError::Truncated {
            have: d.len - 1
        })),
        "{bytes:02x?}"
    );
    let offset = rng.below(4096);
    let gpa = PAGE + offset;
    let mut cpu = Cpu::new();
    cpu.gprs.rcx = rng.below(3);
    cpu.rflags = 2 | (rng.next() & (CF | PF | AF | ZF | SF | DF | OF));
    let mut dev = Fake::new();
    let mut regs = Registers {
        gprs: &mut cpu.gprs,
        rsp: &mut cpu.rsp,
        rflags: &mut cpu.rflags,
    };
    match d.execute(gpa, &mut regs, &mut dev) {
        Err(e) => {
            assert_eq!(
                e,
                MmioError::CrossesPage {
                    gpa,
                    width: d.width
                }
            );
            assert!(offset + u64::from(d.width) > 4096);
        }
        Ok(done) => {
            assert!(done.advance == d.len || (done.advance == 0 && d.op == Op::Stos { rep: true }));
            let reads: Vec<_> = dev
                .log
                .iter()
                .filter(|a| matches!(a, Access::Read { .. }))
                .collect();
            let writes = dev.log.len() - reads.len();
            assert!(reads.len() <= usize::from(d.reads_memory()), "{bytes:02x?}");
            assert!(writes <= usize::from(d.writes_memory()), "{bytes:02x?}");
            for a in &dev.log {
                let (Access::Read { gpa: g, width: w }
                | Access::Write {
                    gpa: g, width: w, ..
                }) = *a;
                assert_eq!((g, w), (gpa, d.width));
            }
            if d.reads_memory() && d.writes_memory() && writes == 1 {
                assert!(
                    matches!(dev.log[0], Access::Read { .. }),
                    "read, then write"
                );
            }
            assert_eq!(cpu.rflags & 2, 2);
        }
    }
    true
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(0x4D4D_494F);
    for mode in [Bits16, Bits32, Bits64] {
        for _ in 0..20_000 {
            let len = rng.below(17) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            check(&bytes, mode, &mut rng);
        }
    }
}

#[test]
fn random_instruction_like_bytes_never_panic() {
    let mut rng = Rng::new(0x1234_5678);
    for mode in [Bits16, Bits32, Bits64] {
        let mut decoded = 0;
        let tries = 20_000;
        for _ in 0..tries {
            let pick = |rng: &mut Rng, from: &[u8]| from[rng.below(from.len() as u64) as usize];
            let mut bytes: Vec<u8> = (0..rng.below(4))
                .map(|_| pick(&mut rng, &PREFIXES))
                .collect();
            let opcode = pick(&mut rng, &OPCODES);
            bytes.push(opcode);
            if opcode == 0x0F {
                bytes.push(pick(&mut rng, &SECOND));
            }
            bytes.extend((0..rng.below(12)).map(|_| rng.next() as u8));
            if check(&bytes, mode, &mut rng) {
                decoded += 1;
            }
        }
        assert!(
            decoded > tries / 5,
            "{mode:?}: only {decoded} of {tries} decoded"
        );
    }
}
