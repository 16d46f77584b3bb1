// SPDX-License-Identifier: MIT OR Apache-2.0
//! Decoding of the instructions that compilers emit for device register access, into an
//! [`MmioInstruction`]: what it reads and writes, at which width, and what it does with the
//! value.
//!
//! Encoding references: Intel SDM Vol. 2A, chapter 2 (2.1.1 prefixes, 2.1.3 ModR/M and SIB,
//! 2.2.1 REX) and Appendix A (Table A-2 one-byte opcodes, Table A-3 two-byte opcodes, Table A-6
//! groups 1, 3, 8 and 11); the instruction pages in Vol. 2A/2B (MOV, MOVZX, MOVSX/MOVSXD, ADD,
//! ADC, SUB, SBB, AND, OR, XOR, CMP, TEST, XCHG, BT/BTS/BTR/BTC, STOS); AMD APM Vol. 3, chapter 1
//! and Appendix A.
//!
//! Prefixes:
//! - 66, 67, REX and segment overrides change the operand size, address size, registers and the
//!   memory operand as the CPU does (in 64-bit mode REX.W wins over 66).
//! - LOCK is accepted where the SDM allows it (the memory-destination forms of ADD, OR, ADC,
//!   SBB, AND, SUB, XOR, XCHG, BTS, BTR, BTC; SDM Vol. 3A, 9.1.2.2 and the LOCK page in
//!   Vol. 2A) and refused elsewhere ([`DecodeError::Lock`]: the CPU raises #UD).
//! - F3 is REP on STOS; F2/F3 are accepted as the XACQUIRE/XRELEASE hints where the SDM defines
//!   them (with LOCK, on XCHG, and F3 on the MOV stores 88/89/C6/C7; SDM Vol. 1, 16.3.1). Any
//!   other use is reserved and refused: on MOVZX/MOVSX, for one, they would be a mandatory
//!   prefix selecting another instruction (as `F3 0F B8` is POPCNT).

use super::super::length::{Base, CodeMode, DecodeError, MemOperand, Opcode, Segment, memory};
use super::super::prefixes::{Cursor, Prefixes};
use super::MmioError;
use crate::vmm::vcpu::Width;

/// A general-purpose register operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg {
    /// The register (0 = rAX … 15 = R15, SDM Vol. 2A, Table 2-2).
    pub number: u8,
    /// Bits 15:8 of register `number` (0–3): AH, CH, DH or BH, which byte instructions without
    /// a REX prefix encode as 4–7 (SDM Vol. 1, 3.4.1.1; Vol. 2A, 2.2.1.2).
    pub high_byte: bool,
}

/// The second operand of a store or of an ALU instruction that writes memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A register.
    Reg(Reg),
    /// An immediate, sign-extended to 64 bits (only the access width counts).
    Imm(u64),
}

/// The arithmetic and logic operations (ModRM.reg of group 1 and bits 5:3 of opcodes 00–3B,
/// SDM Vol. 2A, Tables ), and TEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AluOp {
    /// ADD.
    Add,
    /// OR.
    Or,
    /// ADC: add with carry.
    Adc,
    /// SBB: subtract with borrow.
    Sbb,
    /// AND.
    And,
    /// SUB.
    Sub,
    /// XOR.
    Xor,
    /// CMP: SUB without writing the result.
    Cmp,
    /// TEST: AND without writing the result.
    Test,
}

impl AluOp {
    /// The operation numbered `n` (0–7) in the opcode map.
    fn from_number(n: u8) -> Self {
        [
            AluOp::Add,
            AluOp::Or,
            AluOp::Adc,
            AluOp::Sbb,
            AluOp::And,
            AluOp::Sub,
            AluOp::Xor,
            AluOp::Cmp,
        ][usize::from(n & 7)]
    }

    /// Whether the result is written to the destination (all but CMP and TEST).
    pub fn writes_result(self) -> bool {
        !matches!(self, AluOp::Cmp | AluOp::Test)
    }
}

/// Which operand of an ALU instruction is its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AluForm {
    /// `op [mem], src`: memory is the first operand (and the destination).
    MemoryDestination(Source),
    /// `op reg, [mem]`: the register is the first operand (and the destination).
    RegisterDestination(Reg),
}

/// The bit-test operations of group 8 (`0F BA /4–/7 ib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOp {
    /// BT: copy the bit to CF.
    Bt,
    /// BTS: and set it.
    Bts,
    /// BTR: and clear it.
    Btr,
    /// BTC: and complement it.
    Btc,
}

/// How a load widens the value read to the destination size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extend {
    /// MOV and MOVZX.
    Zero,
    /// MOVSX and MOVSXD.
    Sign,
}

/// What the instruction does with its memory operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `dst ← [mem]`, widened to `size` bytes (MOV 8A/8B/A0/A1, MOVZX, MOVSX, MOVSXD).
    Load {
        /// Destination register.
        dst: Reg,
        /// Destination size in bytes.
        size: Width,
        /// Zero or sign extension from the access width.
        extend: Extend,
    },
    /// `[mem] ← src` (MOV 88/89/A2/A3/C6/C7).
    Store(Source),
    /// STOS (AA/AB): `[ES:rDI] ← rAX`, then rDI moves by the width (down if RFLAGS.DF).
    /// With REP, one iteration: rCX counts down and the instruction repeats until it is 0.
    Stos {
        /// F3 (REP) prefix.
        rep: bool,
    },
    /// An ALU instruction with a memory operand.
    Alu {
        /// The operation.
        op: AluOp,
        /// Which operand is the destination, and the other one.
        form: AluForm,
    },
    /// XCHG `[mem], reg` (86/87).
    Xchg(Reg),
    /// BT/BTS/BTR/BTC `[mem], imm8`.
    Bit {
        /// The operation.
        op: BitOp,
        /// The bit offset as encoded (the CPU takes it modulo the operand size in bits).
        bit: u8,
    },
}

/// A decoded instruction that accesses memory once (STOS: once per iteration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioInstruction {
    /// What it does.
    pub op: Op,
    /// Width of the memory access in bytes (1, 2, 4 or 8).
    pub width: Width,
    /// Its length in bytes, prefixes included (1..=15).
    pub len: usize,
    /// The memory operand, for reports or for callers that check the effective address (the
    /// emulation itself uses the guest-physical address the exit reports).
    pub memory: MemOperand,
    /// The LOCK prefix is present (and allowed).
    pub lock: bool,
}

impl MmioInstruction {
    /// Whether the instruction reads its memory operand.
    pub fn reads_memory(&self) -> bool {
        !matches!(self.op, Op::Store(_) | Op::Stos { .. })
    }

    /// Whether the instruction writes its memory operand.
    pub fn writes_memory(&self) -> bool {
        match self.op {
            Op::Load { .. } => false,
            Op::Store(_) | Op::Stos { .. } | Op::Xchg(_) => true,
            Op::Alu { op, form } => {
                op.writes_result() && matches!(form, AluForm::MemoryDestination(_))
            }
            Op::Bit { op, .. } => op != BitOp::Bt,
        }
    }

    /// Decodes the instruction at the start of `bytes` (the guest's bytes at its RIP; more
    /// than 15 are ignored) executed in `mode`. Never panics: anything but the forms listed in
    /// the module documentation, with a memory operand, is an error.
    pub fn decode(bytes: &[u8], mode: CodeMode) -> Result<Self, MmioError> {
        let mut c = Cursor::new(bytes);
        let (p, opcode) = Prefixes::read(&mut c, mode)?;
        let mut d = Decoder {
            operand_size: p.operand_size(mode),
            address_size: p.address_size(mode),
            cursor: c,
            prefixes: p,
            mode,
        };
        let (op, width, memory, code) = if opcode == 0x0F {
            d.two_byte()?
        } else {
            let (op, width, memory) = d.one_byte(opcode)?;
            (op, width, memory, Opcode::OneByte(opcode))
        };
        if d.prefixes.lock && !lock_allowed(op) {
            return Err(DecodeError::Lock(code).into());
        }
        if let Some(rep) = d.prefixes.rep
            && !rep_allowed(op, rep, d.prefixes.lock, opcode)
        {
            return Err(DecodeError::Unsupported(code).into());
        }
        Ok(Self {
            op,
            width,
            len: d.cursor.pos(),
            memory,
            lock: d.prefixes.lock,
        })
    }
}

/// Whether LOCK may prefix `op` (SDM Vol. 2A, "LOCK—Assert LOCK# Signal Prefix").
fn lock_allowed(op: Op) -> bool {
    match op {
        Op::Alu { op, form } => op.writes_result() && matches!(form, AluForm::MemoryDestination(_)),
        Op::Xchg(_) => true,
        Op::Bit { op, .. } => op != BitOp::Bt,
        Op::Load { .. } | Op::Store(_) | Op::Stos { .. } => false,
    }
}

/// Whether F2/F3 (`rep`) is defined on `op` (REP STOS; XACQUIRE/XRELEASE, SDM Vol. 1, 16.3.1).
/// Two-byte opcodes never get here with F2/F3.
fn rep_allowed(op: Op, rep: u8, lock: bool, opcode: u8) -> bool {
    match op {
        Op::Stos { .. } => rep == 0xF3,
        Op::Xchg(_) => true,
        Op::Store(_) => rep == 0xF3 && matches!(opcode, 0x88 | 0x89 | 0xC6 | 0xC7),
        _ => lock,
    }
}

/// Decoding state after the prefixes.
struct Decoder<'a> {
    cursor: Cursor<'a>,
    prefixes: Prefixes,
    mode: CodeMode,
    operand_size: u8,
    address_size: u8,
}

impl Decoder<'_> {
    /// The access width of an opcode whose bit 0 selects byte (0) or full size (1).
    fn size_bit(&self, opcode: u8) -> Width {
        if opcode & 1 == 0 {
            1
        } else {
            self.operand_size
        }
    }

    /// The memory operand of `modrm`; a register operand is an error (no memory access).
    fn memory(&mut self, modrm: u8, code: Opcode) -> Result<MemOperand, MmioError> {
        if modrm >> 6 == 3 {
            return Err(MmioError::RegisterOperand(code));
        }
        Ok(memory(
            &mut self.cursor,
            &self.prefixes,
            self.mode,
            modrm,
            self.address_size,
        )?)
    }

    /// The register named by ModRM.reg for an operand of `width` bytes.
    fn reg(&self, modrm: u8, width: Width) -> Reg {
        let field = (modrm >> 3) & 7;
        if width == 1 && self.prefixes.rex == 0 && field >= 4 {
            Reg {
                number: field - 4,
                high_byte: true,
            }
        } else {
            Reg {
                number: field | self.prefixes.rex_r(),
                high_byte: false,
            }
        }
    }

    /// An immediate of `size` bytes (1, 2 or 4), sign-extended to 64 bits.
    fn imm(&mut self, size: Width) -> Result<u64, DecodeError> {
        Ok(match size {
            1 => i64::from(self.cursor.next()? as i8) as u64,
            2 => i64::from(i16::from_le_bytes(self.cursor.take()?)) as u64,
            _ => i64::from(i32::from_le_bytes(self.cursor.take()?)) as u64,
        })
    }

    /// ModRM, memory operand and register operand of an `op r/m, reg` form.
    fn modrm_reg(&mut self, width: Width, code: Opcode) -> Result<(Reg, MemOperand), MmioError> {
        let modrm = self.cursor.next()?;
        let memory = self.memory(modrm, code)?;
        Ok((self.reg(modrm, width), memory))
    }

    /// Decodes a one-byte opcode.
    fn one_byte(&mut self, opcode: u8) -> Result<(Op, Width, MemOperand), MmioError> {
        let code = Opcode::OneByte(opcode);
        let width = self.size_bit(opcode);
        Ok(match opcode {
            // ADD, OR, ADC, SBB, AND, SUB, XOR, CMP: r/m,reg (bit 1 = 0) and reg,r/m.
            0x00..=0x3F if opcode & 7 < 4 => {
                let (reg, memory) = self.modrm_reg(width, code)?;
                let form = if opcode & 2 == 0 {
                    AluForm::MemoryDestination(Source::Reg(reg))
                } else {
                    AluForm::RegisterDestination(reg)
                };
                let op = AluOp::from_number(opcode >> 3);
                (Op::Alu { op, form }, width, memory)
            }
            // MOVSXD reg, r/m32 (64-bit mode only; elsewhere ARPL).
            0x63 if self.mode == CodeMode::Bits64 => {
                let (dst, memory) = self.modrm_reg(self.operand_size, code)?;
                let op = Op::Load {
                    dst,
                    size: self.operand_size,
                    extend: Extend::Sign,
                };
                (op, self.operand_size.min(4), memory)
            }
            // Group 1: r/m8,imm8 / r/m,imm16/32 / r/m,imm8 sign-extended.
            0x80 | 0x81 | 0x83 => {
                let modrm = self.cursor.next()?;
                let memory = self.memory(modrm, code)?;
                let imm = self.imm(if opcode == 0x81 { width.min(4) } else { 1 })?;
                let op = AluOp::from_number(modrm >> 3);
                let form = AluForm::MemoryDestination(Source::Imm(imm));
                (Op::Alu { op, form }, width, memory)
            }
            0x84 | 0x85 => {
                let (reg, memory) = self.modrm_reg(width, code)?;
                let form = AluForm::MemoryDestination(Source::Reg(reg));
                let op = AluOp::Test;
                (Op::Alu { op, form }, width, memory)
            }
            0x86 | 0x87 => {
                let (reg, memory) = self.modrm_reg(width, code)?;
                (Op::Xchg(reg), width, memory)
            }
            0x88 | 0x89 => {
                let (reg, memory) = self.modrm_reg(width, code)?;
                (Op::Store(Source::Reg(reg)), width, memory)
            }
            0x8A | 0x8B => {
                let (dst, memory) = self.modrm_reg(width, code)?;
                let extend = Extend::Zero;
                (
                    Op::Load {
                        dst,
                        size: width,
                        extend,
                    },
                    width,
                    memory,
                )
            }
            0xA0..=0xA3 => self.moffs(opcode, width)?,
            0xAA | 0xAB => {
                let memory = MemOperand {
                    segment: Segment::Es,
                    base: Some(Base::Gpr(7)),
                    index: None,
                    scale: 1,
                    displacement: 0,
                    address_size: self.address_size,
                };
                let rep = self.prefixes.rep == Some(0xF3);
                (Op::Stos { rep }, width, memory)
            }
            // Group 11 /0: MOV r/m,imm; group 3 /0: TEST r/m,imm.
            0xC6 | 0xC7 | 0xF6 | 0xF7 => {
                let modrm = self.cursor.next()?;
                if (modrm >> 3) & 7 != 0 {
                    return Err(DecodeError::Unsupported(code).into());
                }
                let memory = self.memory(modrm, code)?;
                let imm = Source::Imm(self.imm(width.min(4))?);
                let op = if opcode < 0xF6 {
                    Op::Store(imm)
                } else {
                    let form = AluForm::MemoryDestination(imm);
                    let op = AluOp::Test;
                    Op::Alu { op, form }
                };
                (op, width, memory)
            }
            _ => return Err(DecodeError::Unsupported(code).into()),
        })
    }

    /// MOV AL/rAX, moffs (A0/A1) and MOV moffs, AL/rAX (A2/A3): the offset has the address
    /// size (SDM Vol. 2A, "MOV", note on moffs).
    fn moffs(&mut self, opcode: u8, width: Width) -> Result<(Op, Width, MemOperand), MmioError> {
        let offset = match self.address_size {
            2 => u64::from(u16::from_le_bytes(self.cursor.take()?)),
            4 => u64::from(u32::from_le_bytes(self.cursor.take()?)),
            _ => u64::from_le_bytes(self.cursor.take()?),
        };
        let memory = MemOperand {
            segment: self.prefixes.segment.unwrap_or(Segment::Ds),
            base: None,
            index: None,
            scale: 1,
            displacement: offset as i64,
            address_size: self.address_size,
        };
        let rax = Reg {
            number: 0,
            high_byte: false,
        };
        let op = if opcode < 0xA2 {
            let extend = Extend::Zero;
            Op::Load {
                dst: rax,
                size: width,
                extend,
            }
        } else {
            Op::Store(Source::Reg(rax))
        };
        Ok((op, width, memory))
    }

    /// Decodes after the `0F` escape: MOVZX, MOVSX and group 8 with an immediate.
    fn two_byte(&mut self) -> Result<(Op, Width, MemOperand, Opcode), MmioError> {
        let b = self.cursor.next()?;
        let code = Opcode::TwoByte(b);
        let (op, width, memory) = match b {
            0xB6 | 0xB7 | 0xBE | 0xBF => {
                let size = self.operand_size;
                let (dst, memory) = self.modrm_reg(size, code)?;
                let extend = if b < 0xBE { Extend::Zero } else { Extend::Sign };
                let width = if b & 1 == 0 { 1 } else { 2 };
                (Op::Load { dst, size, extend }, width, memory)
            }
            0xBA => {
                let modrm = self.cursor.next()?;
                let op = match (modrm >> 3) & 7 {
                    4 => BitOp::Bt,
                    5 => BitOp::Bts,
                    6 => BitOp::Btr,
                    7 => BitOp::Btc,
                    _ => return Err(DecodeError::Unsupported(code).into()),
                };
                let memory = self.memory(modrm, code)?;
                let bit = self.cursor.next()?;
                (Op::Bit { op, bit }, self.operand_size, memory)
            }
            _ => return Err(DecodeError::Unsupported(code).into()),
        };
        Ok((op, width, memory, code))
    }
}
