// SPDX-License-Identifier: MIT OR Apache-2.0
//! Decoding of the intercepted instructions: every instruction in every mode, prefixes, REX,
//! the 15-byte limit, truncation, memory operands and random input.

use alloc::vec;
use alloc::vec::Vec;

use super::super::length::*;
use crate::testutil::Rng;

use CodeMode::{Bits16, Bits32, Bits64};
use Instruction as I;

const MODES: [CodeMode; 3] = [Bits16, Bits32, Bits64];
/// Legacy prefixes that every instruction here accepts (LOCK, F2 and F3 are tested apart).
const NEUTRAL: [u8; 8] = [0x66, 0x67, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65];

/// Instructions without operands, valid in every mode.
fn plain() -> Vec<(&'static [u8], Instruction)> {
    vec![
        (&[0x0F, 0xA2], I::Cpuid),
        (&[0xF4], I::Hlt),
        (&[0x0F, 0x01, 0xD9], I::Vmmcall),
        (&[0x0F, 0x01, 0xC1], I::Vmcall),
        (&[0x0F, 0x32], I::Rdmsr),
        (&[0x0F, 0x30], I::Wrmsr),
        (&[0x0F, 0x33], I::Rdpmc),
        (&[0x0F, 0x31], I::Rdtsc),
        (&[0x0F, 0x01, 0xF9], I::Rdtscp),
        (&[0x0F, 0x01, 0xD1], I::Xsetbv),
        (&[0xF3, 0x90], I::Pause),
        (&[0x0F, 0x08], I::Invd),
        (&[0x0F, 0x09], I::Wbinvd),
        (&[0xF3, 0x0F, 0x09], I::Wbnoinvd),
        (&[0x0F, 0x01, 0xC8], I::Monitor),
        (&[0x0F, 0x01, 0xC9], I::Mwait),
        (&[0x0F, 0x06], I::Clts),
        (&[0x0F, 0x01, 0xD8], I::Vmrun),
        (&[0x0F, 0x01, 0xDA], I::Vmload),
        (&[0x0F, 0x01, 0xDB], I::Vmsave),
        (&[0x0F, 0x01, 0xDC], I::Stgi),
        (&[0x0F, 0x01, 0xDD], I::Clgi),
        (&[0x0F, 0x01, 0xDE], I::Skinit),
        (&[0x0F, 0x01, 0xDF], I::Invlpga),
        (&[0x0F, 0x22, 0xD8], I::MovToCr { cr: 3, gpr: 0 }),
        (&[0x0F, 0x20, 0xE1], I::MovFromCr { cr: 4, gpr: 1 }),
        (&[0x0F, 0x23, 0xFA], I::MovToDr { dr: 7, gpr: 2 }),
        (&[0x0F, 0x21, 0xF3], I::MovFromDr { dr: 6, gpr: 3 }),
        (&[0x0F, 0x01, 0xF6], I::Lmsw(Operand::Register(6))),
        (&[0x0F, 0x01, 0xE7], I::Smsw(Operand::Register(7))),
    ]
}

fn ok(bytes: &[u8], mode: CodeMode) -> (Instruction, usize) {
    match decode(bytes, mode) {
        Ok(d) => (d.instruction, d.len),
        Err(e) => panic!("{bytes:02X?} in {mode:?}: {e}"),
    }
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    v
}

#[test]
fn every_instruction_in_every_mode() {
    for mode in MODES {
        for (bytes, insn) in plain() {
            assert_eq!(
                ok(bytes, mode),
                (insn, bytes.len()),
                "{bytes:02X?} {mode:?}"
            );
            // Trailing bytes (the next instructions) do not matter.
            let more = cat(bytes, &[0x0F, 0x01, 0xD9, 0xF4, 0x66, 0x90]);
            assert_eq!(ok(&more, mode), (insn, bytes.len()));
        }
    }
}

#[test]
fn legacy_prefixes_are_counted() {
    for mode in MODES {
        for (bytes, insn) in plain() {
            for p in NEUTRAL {
                assert_eq!(ok(&cat(&[p], bytes), mode), (insn, bytes.len() + 1));
                assert_eq!(ok(&cat(&[p, p, p], bytes), mode), (insn, bytes.len() + 3));
            }
            let all = cat(&NEUTRAL, bytes);
            assert_eq!(ok(&all, mode), (insn, all.len()));
        }
    }
}

#[test]
fn rep_prefixes() {
    for mode in MODES {
        // F2/F3 on instructions that ignore them (F3 0F 01 D9 is VMGEXIT, VMMCALL outside
        // SEV-ES).
        for (bytes, insn) in plain() {
            if matches!(insn, I::Pause | I::Wbinvd | I::Wbnoinvd) {
                continue;
            }
            for p in [0xF2, 0xF3] {
                assert_eq!(ok(&cat(&[p], bytes), mode), (insn, bytes.len() + 1));
            }
        }
        // PAUSE needs F3 as the last of F2/F3; WBNOINVD is F3 0F 09.
        assert_eq!(ok(&[0x66, 0xF3, 0x90], mode), (I::Pause, 3));
        assert_eq!(ok(&[0xF2, 0xF3, 0x90], mode), (I::Pause, 3));
        assert_eq!(ok(&[0xF3, 0x2E, 0x90], mode), (I::Pause, 3));
        for bad in [
            &[0x90][..],
            &[0xF2, 0x90],
            &[0xF3, 0xF2, 0x90],
            &[0x66, 0x90],
        ] {
            assert_eq!(
                decode(bad, mode),
                Err(DecodeError::Unsupported(Opcode::OneByte(0x90)))
            );
        }
        assert_eq!(ok(&[0xF2, 0x0F, 0x09], mode), (I::Wbinvd, 3));
        assert_eq!(ok(&[0x66, 0xF3, 0x0F, 0x09], mode), (I::Wbnoinvd, 4));
    }
}

#[test]
fn rex_prefixes_in_64_bit_mode() {
    for (bytes, insn) in plain() {
        for rex in 0x40..=0x4F_u8 {
            let v = cat(&[rex], bytes);
            let expect = match insn {
                // REX.B turns F3 90 into XCHG r8, rAX. (The REX here is not next to the
                // opcode for F3 90, so it is ignored: test the right order too.)
                I::Pause => I::Pause,
                I::MovToCr { .. } | I::MovFromCr { .. } if rex & 4 != 0 => {
                    // CR11/CR12 do not exist.
                    let reg = ((bytes[2] >> 3) & 7) | 8;
                    assert_eq!(
                        decode(&v, Bits64),
                        Err(DecodeError::BadControlRegister(reg))
                    );
                    continue;
                }
                I::MovToDr { .. } | I::MovFromDr { .. } if rex & 4 != 0 => {
                    let reg = ((bytes[2] >> 3) & 7) | 8;
                    assert_eq!(decode(&v, Bits64), Err(DecodeError::BadDebugRegister(reg)));
                    continue;
                }
                I::MovToCr { cr, gpr } => I::MovToCr {
                    cr,
                    gpr: gpr | (rex & 1) << 3,
                },
                I::MovFromCr { cr, gpr } => I::MovFromCr {
                    cr,
                    gpr: gpr | (rex & 1) << 3,
                },
                I::MovToDr { dr, gpr } => I::MovToDr {
                    dr,
                    gpr: gpr | (rex & 1) << 3,
                },
                I::MovFromDr { dr, gpr } => I::MovFromDr {
                    dr,
                    gpr: gpr | (rex & 1) << 3,
                },
                I::Lmsw(Operand::Register(r)) => I::Lmsw(Operand::Register(r | (rex & 1) << 3)),
                I::Smsw(Operand::Register(r)) => I::Smsw(Operand::Register(r | (rex & 1) << 3)),
                other => other,
            };
            assert_eq!(ok(&v, Bits64), (expect, bytes.len() + 1), "{v:02X?}");
            // Outside 64-bit mode 40-4F are INC/DEC.
            for mode in [Bits16, Bits32] {
                assert_eq!(
                    decode(&v, mode),
                    Err(DecodeError::Unsupported(Opcode::OneByte(rex)))
                );
            }
        }
    }
    // PAUSE with REX between F3 and 90.
    assert_eq!(ok(&[0xF3, 0x48, 0x90], Bits64), (I::Pause, 3));
    assert_eq!(
        decode(&[0xF3, 0x41, 0x90], Bits64),
        Err(DecodeError::Unsupported(Opcode::OneByte(0x90)))
    );
    // A REX followed by a legacy prefix is ignored; of two REX prefixes the last counts.
    assert_eq!(
        ok(&[0x45, 0x66, 0x0F, 0x20, 0xC1], Bits64),
        (I::MovFromCr { cr: 0, gpr: 1 }, 5)
    );
    assert_eq!(
        ok(&[0x41, 0x44, 0x0F, 0x22, 0xC1], Bits64),
        (I::MovToCr { cr: 8, gpr: 1 }, 5)
    );
    assert_eq!(
        ok(&[0x44, 0x41, 0x0F, 0x22, 0xC1], Bits64),
        (I::MovToCr { cr: 0, gpr: 9 }, 5)
    );
}

#[test]
fn mov_cr_and_dr_every_modrm() {
    for mode in MODES {
        for opcode in 0x20..=0x23_u8 {
            for modrm in 0..=255_u8 {
                let reg = (modrm >> 3) & 7;
                let rm = modrm & 7;
                // The mod bits are ignored: always a register operand, always 3 bytes.
                let r = decode(&[0x0F, opcode, modrm, 0xFF, 0xFF, 0xFF, 0xFF], mode);
                let expect = match opcode {
                    0x20 | 0x22 if !matches!(reg, 0 | 2 | 3 | 4) => {
                        Err(DecodeError::BadControlRegister(reg))
                    }
                    0x20 => Ok(I::MovFromCr { cr: reg, gpr: rm }),
                    0x22 => Ok(I::MovToCr { cr: reg, gpr: rm }),
                    0x21 => Ok(I::MovFromDr { dr: reg, gpr: rm }),
                    _ => Ok(I::MovToDr { dr: reg, gpr: rm }),
                };
                assert_eq!(r.map(|d| (d.instruction, d.len)), expect.map(|i| (i, 3)));
            }
        }
    }
    // CR8 through REX.R, in 64-bit mode only; REX.B selects R8-R15; REX.W changes nothing.
    for rex in 0x40..=0x4F_u8 {
        let (r, b) = ((rex >> 2) & 1, rex & 1);
        for modrm in [0xC0, 0x00, 0x47, 0xFF] {
            let reg = ((modrm >> 3) & 7) | r << 3;
            let gpr = (modrm & 7) | b << 3;
            let d = decode(&[rex, 0x0F, 0x22, modrm], Bits64);
            if matches!(reg, 0 | 2 | 3 | 4 | 8) {
                assert_eq!(d.unwrap().instruction, I::MovToCr { cr: reg, gpr });
            } else {
                assert_eq!(d, Err(DecodeError::BadControlRegister(reg)));
            }
        }
    }
}

#[test]
fn lock_prefix() {
    for mode in MODES {
        for (bytes, insn) in plain() {
            let r = decode(&cat(&[0xF0], bytes), mode);
            match insn {
                // AMD: LOCK MOV CR0 is MOV CR8, in every mode.
                I::MovToCr { .. } | I::MovFromCr { .. } => {
                    assert!(matches!(
                        r,
                        Err(DecodeError::Lock(Opcode::TwoByte(0x20 | 0x22)))
                    ))
                }
                _ => assert!(
                    matches!(r, Err(DecodeError::Lock(_))),
                    "{bytes:02X?}: {r:?}"
                ),
            }
        }
        assert_eq!(
            decode(&[0xF0, 0x0F, 0xA2], mode),
            Err(DecodeError::Lock(Opcode::TwoByte(0xA2)))
        );
        assert_eq!(
            decode(&[0xF0, 0xF4], mode),
            Err(DecodeError::Lock(Opcode::OneByte(0xF4)))
        );
        assert_eq!(
            decode(&[0xF0, 0x0F, 0x01, 0xD9], mode),
            Err(DecodeError::Lock(Opcode::Group7(0xD9)))
        );
        assert_eq!(
            ok(&[0xF0, 0x0F, 0x22, 0xC3], mode),
            (I::MovToCr { cr: 8, gpr: 3 }, 4)
        );
        assert_eq!(
            ok(&[0x66, 0xF0, 0x0F, 0x20, 0xC7], mode),
            (I::MovFromCr { cr: 8, gpr: 7 }, 5)
        );
        assert_eq!(
            decode(&[0xF0, 0x0F, 0x21, 0xC0], mode),
            Err(DecodeError::Lock(Opcode::TwoByte(0x21)))
        );
    }
    // LOCK with REX.R (a real CR8 in 64-bit mode) is #UD.
    assert_eq!(
        decode(&[0xF0, 0x44, 0x0F, 0x22, 0xC0], Bits64),
        Err(DecodeError::Lock(Opcode::TwoByte(0x22)))
    );
    assert_eq!(
        ok(&[0xF0, 0x41, 0x0F, 0x22, 0xC0], Bits64),
        (I::MovToCr { cr: 8, gpr: 8 }, 5)
    );
}

#[test]
fn fifteen_byte_limit() {
    for mode in MODES {
        for (bytes, insn) in plain() {
            let room = MAX_INSTRUCTION_LEN - bytes.len();
            let mut v: Vec<u8> = (0..room).map(|i| NEUTRAL[i % NEUTRAL.len()]).collect();
            v.extend_from_slice(bytes);
            assert_eq!(ok(&v, mode), (insn, 15));
            v.push(0x90);
            assert_eq!(ok(&v, mode), (insn, 15));
            v.insert(0, 0x3E);
            assert_eq!(decode(&v, mode), Err(DecodeError::TooLong), "{v:02X?}");
            // Too long is known before the input runs out.
            assert_eq!(decode(&v[..15], mode), Err(DecodeError::TooLong));
        }
        assert_eq!(decode(&[0x66; 40], mode), Err(DecodeError::TooLong));
        assert_eq!(
            decode(&[0x66; 14], mode),
            Err(DecodeError::Truncated { have: 14 })
        );
    }
    // REX counts too.
    let mut v = vec![0x48; 12];
    v.extend_from_slice(&[0x0F, 0x01, 0xD9]);
    assert_eq!(ok(&v, Bits64), (I::Vmmcall, 15));
    v.insert(0, 0x48);
    assert_eq!(decode(&v, Bits64), Err(DecodeError::TooLong));
    // A 15-byte LMSW with a memory operand: 6 prefixes, 0F 01 /6, SIB and disp32.
    let v = [
        0x66, 0x67, 0x2E, 0x3E, 0xF2, 0x48, 0x0F, 0x01, 0xB4, 0x88, 0x78, 0x56, 0x34, 0x12,
    ];
    assert_eq!(decode(&v, Bits64).unwrap().len, 14);
    assert_eq!(decode(&cat(&[0x26], &v), Bits64).unwrap().len, 15);
    assert_eq!(
        decode(&cat(&[0x26, 0x26], &v), Bits64),
        Err(DecodeError::TooLong)
    );
}

#[test]
fn truncated_input() {
    let mut cases: Vec<(Vec<u8>, CodeMode)> = Vec::new();
    for mode in MODES {
        for (bytes, _) in plain() {
            cases.push((bytes.to_vec(), mode));
            cases.push((cat(&[0x66, 0x2E], bytes), mode));
        }
    }
    for mode in [Bits32, Bits64] {
        cases.push((vec![0x0F, 0x01, 0xB4, 0x88, 0x78, 0x56, 0x34, 0x12], mode));
        cases.push((vec![0x0F, 0x01, 0x3D, 0x78, 0x56, 0x34, 0x12], mode));
        cases.push((vec![0x0F, 0x01, 0x7C, 0x24, 0xF0], mode));
    }
    cases.push((vec![0x41, 0x0F, 0x01, 0xF0], Bits64));
    cases.push((vec![0x0F, 0x01, 0x36, 0x34, 0x12], Bits16));
    for (bytes, mode) in cases {
        assert_eq!(decode(&bytes, mode).unwrap().len, bytes.len());
        for n in 0..bytes.len() {
            assert_eq!(
                decode(&bytes[..n], mode),
                Err(DecodeError::Truncated { have: n }),
                "{:02X?} {mode:?}",
                &bytes[..n]
            );
        }
    }
}

#[test]
fn unsupported_instructions_are_named() {
    for mode in MODES {
        for (bytes, op) in [
            (&[0x90][..], Opcode::OneByte(0x90)),
            (&[0xE4, 0x60], Opcode::OneByte(0xE4)),
            (&[0xCC], Opcode::OneByte(0xCC)),
            (&[0xC4, 0xE2, 0x79], Opcode::OneByte(0xC4)),
            (&[0x0F, 0x05], Opcode::TwoByte(0x05)),
            (&[0x0F, 0x0B], Opcode::TwoByte(0x0B)),
            (&[0x0F, 0x38, 0x00], Opcode::TwoByte(0x38)),
            (&[0x0F, 0x01, 0xD0], Opcode::Group7(0xD0)),
            (&[0x0F, 0x01, 0xF8], Opcode::Group7(0xF8)),
            (&[0x0F, 0x01, 0xE8], Opcode::Group7(0xE8)),
            (&[0x0F, 0x01, 0xC2], Opcode::Group7(0xC2)),
            (&[0x0F, 0x01, 0x10], Opcode::Group7(0x10)),
            (&[0x0F, 0x01, 0x2C, 0x24], Opcode::Group7(0x2C)),
        ] {
            assert_eq!(decode(bytes, mode), Err(DecodeError::Unsupported(op)));
        }
    }
    assert_eq!(
        alloc::format!("{}", DecodeError::Unsupported(Opcode::Group7(0xD0))),
        "instruction 0F 01 D0 is not handled"
    );
    assert_eq!(decode(&[], Bits64), Err(DecodeError::Truncated { have: 0 }));
}

#[test]
fn sizes_and_segment_overrides() {
    let d = decode(&[0x0F, 0x01, 0xC8], Bits16).unwrap();
    assert_eq!(
        (d.operand_size, d.address_size, d.segment_override),
        (2, 2, None)
    );
    let d = decode(&[0x66, 0x67, 0x0F, 0x01, 0xC8], Bits16).unwrap();
    assert_eq!((d.operand_size, d.address_size), (4, 4));
    let d = decode(&[0x0F, 0x01, 0xC8], Bits32).unwrap();
    assert_eq!((d.operand_size, d.address_size), (4, 4));
    let d = decode(&[0x66, 0x67, 0x26, 0x0F, 0x01, 0xC8], Bits32).unwrap();
    assert_eq!((d.operand_size, d.address_size), (2, 2));
    assert_eq!(d.segment_override, Some(Segment::Es));
    let d = decode(&[0x0F, 0x01, 0xC8], Bits64).unwrap();
    assert_eq!((d.operand_size, d.address_size), (4, 8));
    let d = decode(&[0x64, 0x65, 0x67, 0x66, 0x0F, 0x01, 0xC8], Bits64).unwrap();
    assert_eq!((d.operand_size, d.address_size), (2, 4));
    assert_eq!(d.segment_override, Some(Segment::Gs));
    // REX.W wins over 66.
    let d = decode(&[0x66, 0x48, 0x0F, 0x01, 0xE0], Bits64).unwrap();
    assert_eq!(d.operand_size, 8);
    assert_eq!(d.instruction, I::Smsw(Operand::Register(0)));
}

fn mem(bytes: &[u8], mode: CodeMode) -> (Instruction, MemOperand, usize) {
    let d = decode(bytes, mode).unwrap();
    let m = match d.instruction {
        I::Lmsw(Operand::Memory(m)) | I::Smsw(Operand::Memory(m)) | I::Invlpg(m) => m,
        other => panic!("{other:?}"),
    };
    (d.instruction, m, d.len)
}

#[test]
fn memory_operands_16_bit() {
    let (i, m, len) = mem(&[0x0F, 0x01, 0x30], Bits16);
    assert!(matches!(i, I::Lmsw(_)));
    assert_eq!(len, 3);
    assert_eq!(
        (m.base, m.index, m.segment),
        (Some(Base::Gpr(3)), Some(6), Segment::Ds)
    );
    // [disp16]
    let (_, m, len) = mem(&[0x0F, 0x01, 0x36, 0x34, 0x12], Bits16);
    assert_eq!(len, 5);
    assert_eq!((m.base, m.index, m.displacement), (None, None, 0x1234));
    // [bp-2]: SS.
    let (_, m, len) = mem(&[0x0F, 0x01, 0x76, 0xFE], Bits16);
    assert_eq!(len, 4);
    assert_eq!(
        (m.base, m.displacement, m.segment),
        (Some(Base::Gpr(5)), -2, Segment::Ss)
    );
    // [bx+0x8000] wraps.
    let (i, m, len) = mem(&[0x0F, 0x01, 0xA7, 0x00, 0x80], Bits16);
    assert!(matches!(i, I::Smsw(_)));
    assert_eq!(len, 5);
    let mut gprs = [0u64; 16];
    gprs[3] = 0x9000;
    assert_eq!(m.effective_address(&gprs, 0), 0x1000);
    // [bp+di+5] with an ES override.
    let (_, m, len) = mem(&[0x26, 0x0F, 0x01, 0x7B, 0x05], Bits16);
    assert_eq!(len, 5);
    assert_eq!(
        (m.base, m.index, m.segment),
        (Some(Base::Gpr(5)), Some(7), Segment::Es)
    );
    // 67: 32-bit addressing in 16-bit code, [esp] via SIB.
    let (_, m, len) = mem(&[0x67, 0x0F, 0x01, 0x34, 0x24], Bits16);
    assert_eq!(len, 5);
    assert_eq!(
        (m.base, m.index, m.address_size),
        (Some(Base::Gpr(4)), None, 4)
    );
    assert_eq!(m.segment, Segment::Ss);
}

#[test]
fn memory_operands_32_bit() {
    // INVLPG [eax]
    let (_, m, len) = mem(&[0x0F, 0x01, 0x38], Bits32);
    assert_eq!(len, 3);
    assert_eq!(m.base, Some(Base::Gpr(0)));
    // [disp32]
    let (_, m, len) = mem(&[0x0F, 0x01, 0x3D, 0x78, 0x56, 0x34, 0x12], Bits32);
    assert_eq!(len, 7);
    assert_eq!((m.base, m.displacement), (None, 0x1234_5678));
    // [ebp+ecx*4-16]
    let (_, m, len) = mem(&[0x0F, 0x01, 0x7C, 0x8D, 0xF0], Bits32);
    assert_eq!(len, 5);
    assert_eq!(
        (m.base, m.index, m.scale, m.displacement, m.segment),
        (Some(Base::Gpr(5)), Some(1), 4, -16, Segment::Ss)
    );
    let mut gprs = [0u64; 16];
    gprs[5] = 0x1000;
    gprs[1] = 3;
    assert_eq!(m.effective_address(&gprs, 0), 0x1000 + 12 - 16);
    // [esi+edi*8+0x80000000] wraps at 4 GiB.
    let (_, m, len) = mem(&[0x0F, 0x01, 0xB4, 0xFE, 0x00, 0x00, 0x00, 0x80], Bits32);
    assert_eq!(len, 8);
    gprs[6] = 0x8000_0000;
    gprs[7] = 1;
    assert_eq!(m.effective_address(&gprs, 0), 8);
    // SIB without base: [ecx*2+disp32]; SIB index 100 = none.
    let (_, m, len) = mem(&[0x0F, 0x01, 0x3C, 0x4D, 0x00, 0x10, 0x00, 0x00], Bits32);
    assert_eq!(len, 8);
    assert_eq!(
        (m.base, m.index, m.scale, m.displacement),
        (None, Some(1), 2, 0x1000)
    );
    let (_, m, _) = mem(&[0x0F, 0x01, 0x3C, 0xE0], Bits32);
    assert_eq!((m.base, m.index), (Some(Base::Gpr(0)), None));
    // disp32 with mod = 10.
    let (_, m, len) = mem(&[0x0F, 0x01, 0xB0, 0xFF, 0xFF, 0xFF, 0xFF], Bits32);
    assert_eq!((len, m.displacement), (7, -1));
    // 67 in 32-bit code: 16-bit addressing.
    let (_, m, len) = mem(&[0x67, 0x0F, 0x01, 0x3E, 0x34, 0x12], Bits32);
    assert_eq!((len, m.address_size, m.displacement), (6, 2, 0x1234));
}

#[test]
fn memory_operands_64_bit() {
    // INVLPG [rip+0x100]: RIP-relative whatever REX.B says.
    for rex in [&[][..], &[0x41], &[0x49]] {
        let (_, m, len) = mem(
            &cat(rex, &[0x0F, 0x01, 0x3D, 0x00, 0x01, 0x00, 0x00]),
            Bits64,
        );
        assert_eq!(len, 7 + rex.len());
        assert_eq!((m.base, m.displacement), (Some(Base::Rip), 0x100));
        assert_eq!(
            m.effective_address(&[0; 16], 0xFFFF_FFFF_FFFF_F000),
            0xFFFF_FFFF_FFFF_F100
        );
    }
    // [eip+disp] with 67 wraps at 32 bits.
    let (_, m, _) = mem(&[0x67, 0x0F, 0x01, 0x3D, 0x00, 0x01, 0x00, 0x00], Bits64);
    assert_eq!(m.effective_address(&[0; 16], 0x1_FFFF_FF80), 0x80);
    // [r12] needs a SIB; [r12+r12*1] with REX.X.
    let (_, m, len) = mem(&[0x41, 0x0F, 0x01, 0x3C, 0x24], Bits64);
    assert_eq!(len, 5);
    assert_eq!(
        (m.base, m.index, m.segment),
        (Some(Base::Gpr(12)), None, Segment::Ds)
    );
    let (_, m, _) = mem(&[0x43, 0x0F, 0x01, 0x3C, 0x24], Bits64);
    assert_eq!((m.base, m.index), (Some(Base::Gpr(12)), Some(12)));
    // [r13+0x10] needs a displacement.
    let (_, m, len) = mem(&[0x41, 0x0F, 0x01, 0x7D, 0x10], Bits64);
    assert_eq!(len, 5);
    assert_eq!((m.base, m.displacement), (Some(Base::Gpr(13)), 0x10));
    // SIB base 101 with mod 00 and REX.B: no base, disp32.
    let (_, m, len) = mem(
        &[0x41, 0x0F, 0x01, 0x3C, 0x25, 0x00, 0x20, 0x00, 0x00],
        Bits64,
    );
    assert_eq!(len, 9);
    assert_eq!((m.base, m.index, m.displacement), (None, None, 0x2000));
    // A negative disp32 is sign-extended to 64 bits.
    let (_, m, _) = mem(&[0x0F, 0x01, 0xB8, 0x00, 0x00, 0x00, 0x80], Bits64);
    let mut gprs = [0u64; 16];
    gprs[0] = 0xFFFF_FFFF_0000_0000;
    assert_eq!(m.effective_address(&gprs, 0), 0xFFFF_FFFE_8000_0000);
    // LMSW and SMSW register forms with REX.B.
    assert_eq!(
        ok(&[0x41, 0x0F, 0x01, 0xF7], Bits64),
        (I::Lmsw(Operand::Register(15)), 4)
    );
    assert_eq!(
        ok(&[0x49, 0x0F, 0x01, 0xE1], Bits64),
        (I::Smsw(Operand::Register(9)), 4)
    );
}

#[test]
fn code_modes() {
    assert_eq!(
        CodeMode::from_state(false, false, false, false, false),
        Bits16
    );
    assert_eq!(
        CodeMode::from_state(false, false, false, false, true),
        Bits16
    );
    assert_eq!(
        CodeMode::from_state(true, false, false, false, false),
        Bits16
    );
    assert_eq!(CodeMode::from_state(true, true, false, false, true), Bits16);
    assert_eq!(
        CodeMode::from_state(true, false, false, false, true),
        Bits32
    );
    assert_eq!(CodeMode::from_state(true, false, true, false, true), Bits32);
    assert_eq!(
        CodeMode::from_state(true, false, true, false, false),
        Bits16
    );
    assert_eq!(CodeMode::from_state(true, false, true, true, false), Bits64);
    assert_eq!(CodeMode::from_state(true, false, false, true, true), Bits32);
    assert_eq!(Bits16.linear_ip(0xF_0000, 0x1_FFF0), 0xF_FFF0);
    assert_eq!(Bits32.linear_ip(0xFFFF_0000, 0x2_0000), 0x1_0000);
    assert_eq!(
        Bits64.linear_ip(0x1234, 0xFFFF_8000_0000_0000),
        0xFFFF_8000_0000_0000
    );
    assert_eq!(Bits16.next_ip(0xFFFE, 3), 1);
    assert_eq!(Bits32.next_ip(0xFFFF_FFFE, 3), 1);
    assert_eq!(Bits64.next_ip(0xFFFF_FFFE, 3), 0x1_0000_0001);
}

/// Random byte strings (biased towards prefixes and the opcodes decoded here): never a panic,
/// and every success is consistent.
#[test]
fn random_bytes_never_panic() {
    const ALPHABET: [u8; 28] = [
        0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65, 0x40, 0x44, 0x41, 0x48,
        0x4F, 0x0F, 0x01, 0x20, 0x22, 0x21, 0x23, 0xF4, 0x90, 0xD9, 0xA2, 0x09, 0xC8,
    ];
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let (mut oks, mut errs) = (0u32, 0u32);
    for _ in 0..200_000 {
        let len = rng.below(20) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(2) == 0 {
                    ALPHABET[rng.below(ALPHABET.len() as u64) as usize]
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        let mode = MODES[rng.below(3) as usize];
        match decode(&bytes, mode) {
            Ok(d) => {
                oks += 1;
                assert!((1..=MAX_INSTRUCTION_LEN).contains(&d.len) && d.len <= bytes.len());
                assert_eq!(decode(&bytes[..d.len], mode), Ok(d));
                assert_eq!(
                    decode(&bytes[..d.len - 1], mode),
                    Err(DecodeError::Truncated { have: d.len - 1 })
                );
                assert!(matches!(d.operand_size, 2 | 4 | 8));
                assert!(matches!(d.address_size, 2 | 4 | 8));
                if let I::Lmsw(Operand::Memory(m)) | I::Smsw(Operand::Memory(m)) | I::Invlpg(m) =
                    d.instruction
                {
                    let _ = m.effective_address(&[u64::MAX; 16], u64::MAX);
                }
            }
            Err(DecodeError::Truncated { have }) => {
                errs += 1;
                assert_eq!(have, bytes.len());
                assert!(have < MAX_INSTRUCTION_LEN);
            }
            Err(_) => errs += 1,
        }
    }
    assert!(oks > 2000 && errs > 2000, "ok {oks}, errors {errs}");
}
