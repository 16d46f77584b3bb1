// SPDX-License-Identifier: MIT OR Apache-2.0
//! Emulation of guest instructions that access MMIO pages (the local APIC at 0xFEE00000, the
//! I/O APIC at 0xFEC00000, virtio devices).
//!
//! An access to a guest-physical page the nested page tables leave unmapped exits as an EPT
//! violation (Intel SDM Vol. 3C, 29.3.3.2, exit reason 48) or a nested page fault (AMD APM
//! Vol. 2, 15.25.6, exit code 400h). Neither gives the operand: VT-x reports only the
//! guest-physical (and possibly linear) address, and SVM without decode assists (QEMU's TCG)
//! not even the instruction bytes. So the monitor reads the instruction at CS:RIP
//! ([`fetch`]), decodes it ([`MmioInstruction::decode`]) and carries it out
//! ([`MmioInstruction::execute`]) against the device model ([`MmioDevice`]), then moves RIP by
//! [`Completed::advance`].
//!
//! The forms handled are those compilers emit for device access, in 16-, 32- and 64-bit code
//! with any prefixes the CPU accepts on them: MOV (88–8B, A0–A3, C6/C7), MOVZX/MOVSX (0F B6/B7/
//! BE/BF), MOVSXD (63), ADD/OR/ADC/SBB/AND/SUB/XOR/CMP (00–3B, group 1: 80/81/83), TEST
//! (84/85, F6/F7 /0), XCHG (86/87), BT/BTS/BTR/BTC with an immediate (0F BA), and STOS (AA/AB,
//! with REP one iteration at a time). Anything else is refused with an [`MmioError`]; nothing
//! here panics, whatever the bytes.
//!
//! The memory operand is the guest-physical address the exit reports: the effective address is
//! decoded (for the length, and kept in [`MmioInstruction::memory`]) but not recomputed, as the
//! exit already says where the access went. An access that would run past the end of that
//! 4 KiB page is refused ([`MmioError::CrossesPage`]): device registers are aligned, and for a
//! straddling access the reported address need not be its first byte.

mod alu;
mod exec;
mod insn;
#[cfg(test)]
mod tests;

pub use alu::{AF, CF, DF, OF, PF, SF, ZF};
pub use exec::Registers;
pub use insn::{AluForm, AluOp, BitOp, Extend, MmioInstruction, Op, Reg, Source};

use super::length::{CodeMode, DecodeError, Opcode};
use super::walk::{GuestRead, PagingState, WalkError};
use crate::vmm::vcpu::Width;

/// A device model behind MMIO pages.
pub trait MmioDevice {
    /// Reads `width` bytes (1, 2, 4 or 8) at guest-physical address `gpa`; only the low
    /// `width` bytes of the value count.
    fn read(&mut self, gpa: u64, width: Width) -> u64;
    /// Writes the low `width` bytes (1, 2, 4 or 8) of `value` at guest-physical address `gpa`.
    fn write(&mut self, gpa: u64, width: Width, value: u64);
}

/// An emulated instruction's effect on RIP.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// Bytes to move RIP by ([`CodeMode::next_ip`]): the instruction's length, or 0 for a REP
    /// STOS with iterations left (the guest executes it again).
    pub advance: usize,
}

/// Why an MMIO access could not be emulated. The guest cannot continue as it is: the monitor
/// reports it (or, for [`DecodeError::Lock`], may inject #UD as the CPU would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmioError {
    /// The instruction bytes could not be read.
    Fetch(WalkError),
    /// The bytes are not an instruction emulated here (or are invalid).
    Decode(DecodeError),
    /// The instruction's operand is a register: it makes no memory access (the code changed
    /// since it faulted).
    RegisterOperand(Opcode),
    /// The access would run past the end of the 4 KiB page of `gpa`.
    CrossesPage {
        /// The reported guest-physical address.
        gpa: u64,
        /// The access width.
        width: Width,
    },
}

impl From<DecodeError> for MmioError {
    fn from(e: DecodeError) -> Self {
        MmioError::Decode(e)
    }
}

impl core::fmt::Display for MmioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            MmioError::Fetch(e) => write!(f, "MMIO instruction fetch: {e}"),
            MmioError::Decode(e) => write!(f, "MMIO instruction decode: {e}"),
            MmioError::RegisterOperand(op) => {
                write!(
                    f,
                    "MMIO instruction {op} has a register operand, no memory access"
                )
            }
            MmioError::CrossesPage { gpa, width } => {
                write!(
                    f,
                    "{width}-byte MMIO access at {gpa:#x} crosses a page boundary"
                )
            }
        }
    }
}

/// Reads the instruction at guest linear address `linear` (see [`CodeMode::linear_ip`]) and
/// decodes it as an MMIO access in `mode`. If the bytes run into a page that cannot be read,
/// the walk error is reported only if the instruction needs those bytes.
pub fn fetch<M: GuestRead + ?Sized>(
    state: &PagingState,
    mem: &mut M,
    linear: u64,
    mode: CodeMode,
) -> Result<MmioInstruction, MmioError> {
    let fetched = super::fetch_bytes(state, mem, linear).map_err(MmioError::Fetch)?;
    match (
        MmioInstruction::decode(fetched.bytes(), mode),
        fetched.stopped_by(),
    ) {
        (Err(MmioError::Decode(DecodeError::Truncated { .. })), Some(e)) => {
            Err(MmioError::Fetch(e))
        }
        (r, _) => r,
    }
}

/// Decodes `bytes` as an MMIO access in `mode` and carries it out at `gpa`
/// ([`MmioInstruction::decode`], then [`MmioInstruction::execute`]).
pub fn emulate(
    bytes: &[u8],
    mode: CodeMode,
    gpa: u64,
    regs: &mut Registers<'_>,
    device: &mut dyn MmioDevice,
) -> Result<Completed, MmioError> {
    MmioInstruction::decode(bytes, mode)?.execute(gpa, regs, device)
}
