// SPDX-License-Identifier: MIT OR Apache-2.0
//! Decoding of the instructions Castor intercepts, to find their length (and, for MOV CR/DR,
//! LMSW, SMSW and INVLPG, their operands).
//!
//! Without NRIPS (AMD APM Vol. 2, chapter 15, "State Saved on Exit": the next sequential rIP in
//! VMCB offset C8h) and without decode assists (APM Vol. 2, chapter 15, "Decode Assists"), an
//! SVM hypervisor learns only the exit code and the rIP of the intercepted instruction. To skip or
//! emulate it, it decodes the instruction bytes itself.
//!
//! Encoding references: Intel SDM Vol. 2A, chapter 2 "Instruction Format" (2.1.1 prefixes,
//! 2.1.3 ModR/M and SIB, Tables 2-1 to 2-3 addressing forms, 2.2.1 REX prefixes, 2.2.1.6
//! RIP-relative addressing) and Appendix A (opcode map, Table A-6 group 7); AMD APM Vol. 3,
//! chapter 1 "Instruction Encoding" (1.1: at most 15 bytes, else #GP; 1.2 prefixes; 1.4 ModRM
//! and SIB; 1.7 RIP-relative addressing) and Appendix A.
//!
//! Rules followed:
//! - Legacy prefixes (66, 67, F0, F2, F3, 2E, 36, 3E, 26, 64, 65) may repeat and come in any
//!   order; each counts towards the length.
//! - In 64-bit mode a REX prefix (40–4F) counts only if it immediately precedes the opcode; a
//!   REX followed by a legacy prefix is ignored (but still counted). Outside 64-bit mode 40–4F
//!   are INC/DEC, which Castor does not intercept.
//! - An instruction longer than 15 bytes is [`DecodeError::TooLong`] (the CPU raises #GP).
//! - A LOCK prefix makes every instruction here #UD ([`DecodeError::Lock`]), except AMD's
//!   alternative encoding `LOCK MOV CR0` = `MOV CR8` (APM Vol. 3, "MOV CRn"; CPUID
//!   Fn8000_0001_ECX\[AltMovCr8\]).
//! - Other prefixes are accepted where they are merely ignored, so that the length is right
//!   whatever the guest wrote. Two change the instruction: `F3 90` is PAUSE (without REX.B, as
//!   `41 90` is XCHG), and `F3 0F 09` is WBNOINVD. `F3`/`F2 0F 01 D9` (VMGEXIT) is reported as
//!   [`Instruction::Vmmcall`]: outside an SEV-ES guest it is VMMCALL (APM Vol. 3, "VMGEXIT").
//!
//! Never panics: every byte sequence gives an instruction or an error.

use super::prefixes::{Cursor, Prefixes};

/// Longest instruction the CPU executes (SDM Vol. 2A, 2.1; APM Vol. 3, 1.1).
pub const MAX_INSTRUCTION_LEN: usize = 15;

/// The default operand and address size of the code being executed (SDM Vol. 3A, 3.4.5 "D/B
/// flag", 5.1.1; APM Vol. 2, 1.3 "Operating Modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMode {
    /// Real mode, virtual-8086 mode, or a code segment with CS.D = 0 (and not 64-bit).
    Bits16,
    /// Protected or compatibility mode with CS.D = 1.
    Bits32,
    /// 64-bit mode: EFER.LMA = 1 and CS.L = 1.
    Bits64,
}

impl CodeMode {
    /// The mode of a guest from its state: CR0.PE, RFLAGS.VM, EFER.LMA and the L and D bits of
    /// its CS descriptor.
    pub fn from_state(
        cr0_pe: bool,
        rflags_vm: bool,
        efer_lma: bool,
        cs_l: bool,
        cs_d: bool,
    ) -> Self {
        if efer_lma && cs_l {
            CodeMode::Bits64
        } else if !cr0_pe || rflags_vm || !cs_d {
            CodeMode::Bits16
        } else {
            CodeMode::Bits32
        }
    }

    /// Width of the instruction pointer: IP, EIP or RIP.
    pub fn ip_mask(self) -> u64 {
        match self {
            CodeMode::Bits16 => 0xFFFF,
            CodeMode::Bits32 => 0xFFFF_FFFF,
            CodeMode::Bits64 => u64::MAX,
        }
    }

    /// The linear address of the instruction at `rip` in a code segment based at `cs_base`
    /// (outside 64-bit mode linear addresses wrap at 4 GiB; in 64-bit mode the CS base is 0).
    pub fn linear_ip(self, cs_base: u64, rip: u64) -> u64 {
        match self {
            CodeMode::Bits64 => rip,
            _ => cs_base.wrapping_add(rip & self.ip_mask()) & 0xFFFF_FFFF,
        }
    }

    /// The instruction pointer after an instruction of `len` bytes at `rip` (wrapping at the
    /// width of IP/EIP/RIP).
    pub fn next_ip(self, rip: u64, len: usize) -> u64 {
        rip.wrapping_add(len as u64) & self.ip_mask()
    }
}

/// A segment register, for prefixes and memory operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// ES (prefix 26).
    Es,
    /// CS (prefix 2E).
    Cs,
    /// SS (prefix 36).
    Ss,
    /// DS (prefix 3E).
    Ds,
    /// FS (prefix 64).
    Fs,
    /// GS (prefix 65).
    Gs,
}

/// Base of a memory operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// A general-purpose register (0 = rAX … 15 = R15).
    Gpr(u8),
    /// RIP-relative (64-bit mode, ModRM mod = 00, r/m = 101): the address of the next
    /// instruction.
    Rip,
}

/// A memory operand decoded from ModRM (and SIB and displacement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemOperand {
    /// The segment: the override prefix, else DS, or SS for rBP/rSP bases.
    pub segment: Segment,
    /// Base register, if any.
    pub base: Option<Base>,
    /// Index register (0 = rAX … 15 = R15), if any.
    pub index: Option<u8>,
    /// Scale of the index: 1, 2, 4 or 8.
    pub scale: u8,
    /// The displacement, sign-extended.
    pub displacement: i64,
    /// Address size in bytes (2, 4 or 8): the effective address wraps at this width.
    pub address_size: u8,
}

impl MemOperand {
    /// The effective address (offset in [`MemOperand::segment`]) given the guest's
    /// general-purpose registers (index 0 = rAX … 15 = R15, as in the ModRM encoding) and the
    /// address of the next instruction (for RIP-relative operands).
    pub fn effective_address(&self, gprs: &[u64; 16], next_rip: u64) -> u64 {
        let mut ea = self.displacement as u64;
        match self.base {
            Some(Base::Gpr(r)) => ea = ea.wrapping_add(gprs[usize::from(r & 15)]),
            Some(Base::Rip) => ea = ea.wrapping_add(next_rip),
            None => {}
        }
        if let Some(i) = self.index {
            let shift = self.scale.trailing_zeros().min(3);
            ea = ea.wrapping_add(gprs[usize::from(i & 15)] << shift);
        }
        match self.address_size {
            2 => ea & 0xFFFF,
            4 => ea & 0xFFFF_FFFF,
            _ => ea,
        }
    }
}

/// A register or memory operand (ModRM r/m).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// A general-purpose register (0 = rAX … 15 = R15).
    Register(u8),
    /// A memory operand.
    Memory(MemOperand),
}

/// An instruction Castor intercepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instruction {
    /// CPUID `0F A2`.
    Cpuid,
    /// HLT `F4`.
    Hlt,
    /// AMD VMMCALL `0F 01 D9` (also VMGEXIT `F3 0F 01 D9` outside SEV-ES).
    Vmmcall,
    /// Intel VMCALL `0F 01 C1`. On AMD it raises #UD; a hypervisor that intercepts #UD can
    /// treat it as a hypercall.
    Vmcall,
    /// RDMSR `0F 32`.
    Rdmsr,
    /// WRMSR `0F 30`.
    Wrmsr,
    /// RDPMC `0F 33`.
    Rdpmc,
    /// RDTSC `0F 31`.
    Rdtsc,
    /// RDTSCP `0F 01 F9`.
    Rdtscp,
    /// XSETBV `0F 01 D1`.
    Xsetbv,
    /// PAUSE `F3 90`.
    Pause,
    /// INVD `0F 08`.
    Invd,
    /// WBINVD `0F 09`.
    Wbinvd,
    /// WBNOINVD `F3 0F 09`.
    Wbnoinvd,
    /// MONITOR `0F 01 C8` (address in DS:rAX, or the segment override).
    Monitor,
    /// MWAIT `0F 01 C9`.
    Mwait,
    /// CLTS `0F 06`.
    Clts,
    /// VMRUN `0F 01 D8`.
    Vmrun,
    /// VMLOAD `0F 01 DA`.
    Vmload,
    /// VMSAVE `0F 01 DB`.
    Vmsave,
    /// STGI `0F 01 DC`.
    Stgi,
    /// CLGI `0F 01 DD`.
    Clgi,
    /// SKINIT `0F 01 DE`.
    Skinit,
    /// INVLPGA `0F 01 DF`.
    Invlpga,
    /// MOV CRn, reg `0F 22 /r`: write general-purpose register `gpr` to control register `cr`
    /// (64 bits in 64-bit mode, else 32).
    MovToCr {
        /// Control register: 0, 2, 3, 4 or 8.
        cr: u8,
        /// Source register (0 = rAX … 15 = R15).
        gpr: u8,
    },
    /// MOV reg, CRn `0F 20 /r`: read control register `cr` into `gpr`.
    MovFromCr {
        /// Control register: 0, 2, 3, 4 or 8.
        cr: u8,
        /// Destination register (0 = rAX … 15 = R15).
        gpr: u8,
    },
    /// MOV DRn, reg `0F 23 /r`.
    MovToDr {
        /// Debug register 0–7 (4 and 5 alias 6 and 7 unless CR4.DE).
        dr: u8,
        /// Source register (0 = rAX … 15 = R15).
        gpr: u8,
    },
    /// MOV reg, DRn `0F 21 /r`.
    MovFromDr {
        /// Debug register 0–7 (4 and 5 alias 6 and 7 unless CR4.DE).
        dr: u8,
        /// Destination register (0 = rAX … 15 = R15).
        gpr: u8,
    },
    /// LMSW r/m16 `0F 01 /6`: loads CR0 bits 3:0 (PE cannot be cleared).
    Lmsw(Operand),
    /// SMSW r/m `0F 01 /4`: stores CR0 (16 bits to memory; [`Decoded::operand_size`] bytes to
    /// a register).
    Smsw(Operand),
    /// INVLPG m `0F 01 /7`.
    Invlpg(MemOperand),
}

/// The opcode of an instruction that was not recognized, for error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// A one-byte opcode.
    OneByte(u8),
    /// `0F xx`.
    TwoByte(u8),
    /// `0F 01` with this ModRM byte (group 7).
    Group7(u8),
}

impl core::fmt::Display for Opcode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Opcode::OneByte(b) => write!(f, "{b:02X}"),
            Opcode::TwoByte(b) => write!(f, "0F {b:02X}"),
            Opcode::Group7(m) => write!(f, "0F 01 {m:02X}"),
        }
    }
}

/// Why no intercepted instruction was decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end (after `have` bytes) before the instruction does.
    Truncated {
        /// Bytes available.
        have: usize,
    },
    /// The instruction would exceed 15 bytes (#GP).
    TooLong,
    /// Not an instruction Castor intercepts.
    Unsupported(Opcode),
    /// A LOCK prefix on an instruction that does not take one (#UD).
    Lock(Opcode),
    /// MOV to or from a control register that does not exist in this mode (#UD).
    BadControlRegister(u8),
    /// MOV to or from debug register 8–15 (#UD).
    BadDebugRegister(u8),
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            DecodeError::Truncated { have } => {
                write!(f, "instruction truncated after {have} bytes")
            }
            DecodeError::TooLong => f.write_str("instruction longer than 15 bytes"),
            DecodeError::Unsupported(op) => write!(f, "instruction {op} is not handled"),
            DecodeError::Lock(op) => write!(f, "LOCK prefix on {op}"),
            DecodeError::BadControlRegister(cr) => write!(f, "no control register CR{cr}"),
            DecodeError::BadDebugRegister(dr) => write!(f, "no debug register DR{dr}"),
        }
    }
}

/// A decoded instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// What it is.
    pub instruction: Instruction,
    /// Its length in bytes, prefixes included (1..=15).
    pub len: usize,
    /// Operand size in bytes (2, 4 or 8) from the mode, 66 and REX.W. MOV CR/DR ignore it
    /// (always 8 in 64-bit mode, else 4).
    pub operand_size: u8,
    /// Address size in bytes (2, 4 or 8) from the mode and 67 (for rAX-addressed MONITOR,
    /// VMRUN, VMLOAD, VMSAVE, INVLPGA).
    pub address_size: u8,
    /// The last segment-override prefix, if any (in 64-bit mode only FS and GS have effect).
    pub segment_override: Option<Segment>,
}

/// Decodes the instruction at the start of `bytes` (the guest's bytes at its RIP; more than 15
/// are ignored) executed in `mode`.
pub fn decode(bytes: &[u8], mode: CodeMode) -> Result<Decoded, DecodeError> {
    let mut c = Cursor::new(bytes);
    let (p, opcode) = Prefixes::read(&mut c, mode)?;
    let address_size = p.address_size(mode);
    let operand_size = p.operand_size(mode);
    let (instruction, op, lock_ok) = match opcode {
        0xF4 => (Instruction::Hlt, Opcode::OneByte(opcode), false),
        0x90 if p.rep == Some(0xF3) && p.rex_b() == 0 => {
            (Instruction::Pause, Opcode::OneByte(opcode), false)
        }
        0x0F => two_byte(&mut c, &p, mode, address_size)?,
        _ => return Err(DecodeError::Unsupported(Opcode::OneByte(opcode))),
    };
    if p.lock && !lock_ok {
        return Err(DecodeError::Lock(op));
    }
    Ok(Decoded {
        instruction,
        len: c.pos(),
        operand_size,
        address_size,
        segment_override: p.segment,
    })
}

/// Decodes after the `0F` escape; also says whether a LOCK prefix is allowed (AMD's
/// `LOCK MOV CR0` = `MOV CR8`).
fn two_byte(
    c: &mut Cursor<'_>,
    p: &Prefixes,
    mode: CodeMode,
    address_size: u8,
) -> Result<(Instruction, Opcode, bool), DecodeError> {
    let b = c.next()?;
    let op = Opcode::TwoByte(b);
    let insn = match b {
        0xA2 => Instruction::Cpuid,
        0x30 => Instruction::Wrmsr,
        0x31 => Instruction::Rdtsc,
        0x32 => Instruction::Rdmsr,
        0x33 => Instruction::Rdpmc,
        0x06 => Instruction::Clts,
        0x08 => Instruction::Invd,
        0x09 if p.rep == Some(0xF3) => Instruction::Wbnoinvd,
        0x09 => Instruction::Wbinvd,
        0x20..=0x23 => {
            // SDM Vol. 2B "MOV—Move to/from Control Registers" and "MOV—Move to/from Debug
            // Registers": the ModRM mod bits are ignored, r/m always names a register.
            let modrm = c.next()?;
            let reg = ((modrm >> 3) & 7) | p.rex_r();
            let gpr = (modrm & 7) | p.rex_b();
            if b & 1 == 0 {
                let cr = match reg {
                    0 if p.lock => 8,
                    0 | 2 | 3 | 4 => reg,
                    8 if mode == CodeMode::Bits64 => reg,
                    _ => return Err(DecodeError::BadControlRegister(reg)),
                };
                let insn = if b == 0x22 {
                    Instruction::MovToCr { cr, gpr }
                } else {
                    Instruction::MovFromCr { cr, gpr }
                };
                return Ok((insn, op, p.lock && reg == 0));
            } else {
                if reg > 7 {
                    return Err(DecodeError::BadDebugRegister(reg));
                }
                if b == 0x23 {
                    Instruction::MovToDr { dr: reg, gpr }
                } else {
                    Instruction::MovFromDr { dr: reg, gpr }
                }
            }
        }
        0x01 => {
            let (insn, op) = group7(c, p, mode, address_size)?;
            return Ok((insn, op, false));
        }
        _ => return Err(DecodeError::Unsupported(op)),
    };
    Ok((insn, op, false))
}

/// Decodes group 7 (`0F 01`, SDM Vol. 2A Table A-6; APM Vol. 3 Table A-7).
fn group7(
    c: &mut Cursor<'_>,
    p: &Prefixes,
    mode: CodeMode,
    address_size: u8,
) -> Result<(Instruction, Opcode), DecodeError> {
    let modrm = c.next()?;
    let op = Opcode::Group7(modrm);
    let insn = if modrm >= 0xC0 {
        let rm = (modrm & 7) | p.rex_b();
        match modrm {
            0xC1 => Instruction::Vmcall,
            0xC8 => Instruction::Monitor,
            0xC9 => Instruction::Mwait,
            0xD1 => Instruction::Xsetbv,
            0xD8 => Instruction::Vmrun,
            0xD9 => Instruction::Vmmcall,
            0xDA => Instruction::Vmload,
            0xDB => Instruction::Vmsave,
            0xDC => Instruction::Stgi,
            0xDD => Instruction::Clgi,
            0xDE => Instruction::Skinit,
            0xDF => Instruction::Invlpga,
            0xF9 => Instruction::Rdtscp,
            0xE0..=0xE7 => Instruction::Smsw(Operand::Register(rm)),
            0xF0..=0xF7 => Instruction::Lmsw(Operand::Register(rm)),
            _ => return Err(DecodeError::Unsupported(op)),
        }
    } else {
        match (modrm >> 3) & 7 {
            4 => Instruction::Smsw(Operand::Memory(memory(c, p, mode, modrm, address_size)?)),
            6 => Instruction::Lmsw(Operand::Memory(memory(c, p, mode, modrm, address_size)?)),
            7 => Instruction::Invlpg(memory(c, p, mode, modrm, address_size)?),
            _ => return Err(DecodeError::Unsupported(op)),
        }
    };
    Ok((insn, op))
}

/// Decodes the memory operand of `modrm` (mod ≠ 11): SIB and displacement bytes follow in `c`
/// (SDM Vol. 2A, Tables 2-1 to 2-3 and 2.2.1.6; APM Vol. 3, 1.4 and 1.7).
pub(super) fn memory(
    c: &mut Cursor<'_>,
    p: &Prefixes,
    mode: CodeMode,
    modrm: u8,
    address_size: u8,
) -> Result<MemOperand, DecodeError> {
    const BX: u8 = 3;
    const BP: u8 = 5;
    const SI: u8 = 6;
    const DI: u8 = 7;
    let md = modrm >> 6;
    let rm = modrm & 7;
    let mut op = MemOperand {
        segment: Segment::Ds,
        base: None,
        index: None,
        scale: 1,
        displacement: 0,
        address_size,
    };
    if address_size == 2 {
        let (base, index) = match rm {
            0 => (Some(BX), Some(SI)),
            1 => (Some(BX), Some(DI)),
            2 => (Some(BP), Some(SI)),
            3 => (Some(BP), Some(DI)),
            4 => (None, Some(SI)),
            5 => (None, Some(DI)),
            6 if md == 0 => (None, None),
            6 => (Some(BP), None),
            _ => (Some(BX), None),
        };
        if base == Some(BP) {
            op.segment = Segment::Ss;
        }
        op.base = base.map(Base::Gpr);
        op.index = index;
        op.displacement = match (md, rm) {
            (1, _) => i64::from(c.next()? as i8),
            (2, _) | (0, 6) => i64::from(i16::from_le_bytes(c.take()?)),
            _ => 0,
        };
    } else {
        let mut no_base_disp32 = false;
        if rm == 4 {
            let sib = c.next()?;
            let index = ((sib >> 3) & 7) | p.rex_x();
            if index != 4 {
                op.index = Some(index);
                op.scale = 1 << (sib >> 6);
            }
            if sib & 7 == 5 && md == 0 {
                no_base_disp32 = true;
            } else {
                op.base = Some(Base::Gpr((sib & 7) | p.rex_b()));
            }
        } else if rm == 5 && md == 0 {
            no_base_disp32 = true;
            if mode == CodeMode::Bits64 {
                op.base = Some(Base::Rip);
            }
        } else {
            op.base = Some(Base::Gpr(rm | p.rex_b()));
        }
        if matches!(op.base, Some(Base::Gpr(4 | 5))) {
            op.segment = Segment::Ss;
        }
        op.displacement = match md {
            1 => i64::from(c.next()? as i8),
            2 => i64::from(i32::from_le_bytes(c.take()?)),
            _ if no_base_disp32 => i64::from(i32::from_le_bytes(c.take()?)),
            _ => 0,
        };
    }
    if let Some(s) = p.segment {
        op.segment = s;
    }
    Ok(op)
}
