// SPDX-License-Identifier: MIT OR Apache-2.0
//! Carrying out a decoded [`MmioInstruction`] against an [`MmioDevice`] and the guest's
//! registers.
//!
//! Register writes follow Intel SDM Vol. 1, 3.4.1.1 (AMD APM Vol. 1, 3.1.2.3): a 64-bit result
//! replaces the register, a 32-bit result is zero-extended to 64 bits, an 8- or 16-bit result
//! replaces only its bits and leaves the rest. (Outside 64-bit mode the upper half of a register
//! cannot be seen; zero-extending there too is what the CPU does.)

use super::alu::{self, DF, mask, sign_extend};
use super::insn::{AluForm, AluOp, BitOp, Extend, MmioInstruction, Op, Reg, Source};
use super::{Completed, MmioDevice, MmioError};
use crate::vmm::vcpu::{GuestRegs, Width};

/// The guest registers an MMIO instruction may read or change: the general registers the back
/// end keeps in [`GuestRegs`], and RSP and RFLAGS, which live in the VMCS/VMCB.
pub struct Registers<'a> {
    /// RAX … R15 except RSP.
    pub gprs: &'a mut GuestRegs,
    /// RSP.
    pub rsp: &'a mut u64,
    /// RFLAGS.
    pub rflags: &'a mut u64,
}

impl Registers<'_> {
    /// The storage of register `number` (0 = RAX … 15 = R15, SDM Vol. 2A, Table 2-2): RSP is
    /// ours, the rest [`GuestRegs::by_number_mut`]'s.
    fn slot(&mut self, number: u8) -> &mut u64 {
        match self.gprs.by_number_mut(number) {
            Some(slot) => slot,
            None => &mut *self.rsp,
        }
    }

    /// The low `width` bytes of `reg` (for AH/CH/DH/BH, bits 15:8).
    pub fn read(&mut self, reg: Reg, width: Width) -> u64 {
        let v = *self.slot(reg.number);
        if reg.high_byte {
            (v >> 8) & 0xFF
        } else {
            v & mask(width)
        }
    }

    /// Writes `value` (its low `width` bytes) to `reg` with the width rules of the module
    /// documentation.
    pub fn write(&mut self, reg: Reg, width: Width, value: u64) {
        let slot = self.slot(reg.number);
        *slot = if reg.high_byte {
            (*slot & !0xFF00) | ((value & 0xFF) << 8)
        } else {
            merge(*slot, value, width)
        };
    }

    /// The value of an instruction's second operand.
    fn source(&mut self, src: Source, width: Width) -> u64 {
        match src {
            Source::Reg(r) => self.read(r, width),
            Source::Imm(v) => v & mask(width),
        }
    }
}

/// `old` with a `width`-byte result written into it: 8 bytes replace, 4 bytes zero-extend,
/// 1 and 2 bytes keep the upper bits.
fn merge(old: u64, value: u64, width: Width) -> u64 {
    match width {
        1 | 2 => (old & !mask(width)) | (value & mask(width)),
        4 => value & mask(4),
        _ => value,
    }
}

impl MmioInstruction {
    /// Carries out the instruction, whose memory operand is the `width` bytes at guest-physical
    /// address `gpa` (what the EPT violation or nested page fault reports; the effective
    /// address is not recomputed): reads and writes `device` (a read-modify-write reads, then
    /// writes), updates the registers and RFLAGS, and says how far RIP moves.
    ///
    /// An access that would run past the end of `gpa`'s 4 KiB page is refused: it straddles two
    /// pages, and the reported address need not be where it starts.
    pub fn execute(
        &self,
        gpa: u64,
        regs: &mut Registers<'_>,
        device: &mut dyn MmioDevice,
    ) -> Result<Completed, MmioError> {
        let width = self.width;
        if (gpa & 0xFFF) + u64::from(width) > 0x1000 {
            return Err(MmioError::CrossesPage { gpa, width });
        }
        let mut advance = self.len;
        match self.op {
            Op::Load { dst, size, extend } => {
                let v = device.read(gpa, width) & mask(width);
                let v = match extend {
                    Extend::Zero => v,
                    Extend::Sign => sign_extend(v, width),
                };
                regs.write(dst, size, v);
            }
            Op::Store(src) => {
                let v = regs.source(src, width);
                device.write(gpa, width, v);
            }
            Op::Stos { rep } => {
                if !self.stos(gpa, rep, regs, device) {
                    advance = 0;
                }
            }
            Op::Alu { op, form } => self.alu(gpa, op, form, regs, device),
            Op::Xchg(reg) => {
                let old = device.read(gpa, width) & mask(width);
                let v = regs.read(reg, width);
                device.write(gpa, width, v);
                regs.write(reg, width, old);
            }
            Op::Bit { op, bit } => {
                let old = device.read(gpa, width) & mask(width);
                let (new, flags) = alu::bit_test(op, old, bit, width, *regs.rflags);
                *regs.rflags = flags;
                if op != BitOp::Bt {
                    device.write(gpa, width, new);
                }
            }
        }
        Ok(Completed { advance })
    }

    /// An ALU instruction: read memory, compute, set the flags, write the destination.
    fn alu(
        &self,
        gpa: u64,
        op: AluOp,
        form: AluForm,
        regs: &mut Registers<'_>,
        device: &mut dyn MmioDevice,
    ) {
        let width = self.width;
        let mem = device.read(gpa, width) & mask(width);
        let (a, b) = match form {
            AluForm::MemoryDestination(src) => (mem, regs.source(src, width)),
            AluForm::RegisterDestination(reg) => (regs.read(reg, width), mem),
        };
        let (result, flags) = alu::alu(op, a, b, width, *regs.rflags);
        *regs.rflags = flags;
        if op.writes_result() {
            match form {
                AluForm::MemoryDestination(_) => device.write(gpa, width, result),
                AluForm::RegisterDestination(reg) => regs.write(reg, width, result),
            }
        }
    }

    /// One STOS iteration (SDM Vol. 2B, "STOS"; "REP"): stores rAX and moves rDI (at the
    /// address size) by the width, down if RFLAGS.DF. With REP, rCX (at the address size)
    /// counts the iterations: none if it is 0, else one. Returns whether the instruction is
    /// finished (false: rCX is not 0 yet, and the guest executes it again).
    fn stos(
        &self,
        gpa: u64,
        rep: bool,
        regs: &mut Registers<'_>,
        device: &mut dyn MmioDevice,
    ) -> bool {
        let (width, asize) = (self.width, self.memory.address_size);
        let count = regs.gprs.rcx & mask(asize);
        if rep && count == 0 {
            return true;
        }
        device.write(gpa, width, regs.gprs.rax & mask(width));
        let step = if *regs.rflags & DF != 0 {
            u64::from(width).wrapping_neg()
        } else {
            u64::from(width)
        };
        regs.gprs.rdi = merge(regs.gprs.rdi, regs.gprs.rdi.wrapping_add(step), asize);
        if !rep {
            return true;
        }
        regs.gprs.rcx = merge(regs.gprs.rcx, count - 1, asize);
        count == 1
    }
}
