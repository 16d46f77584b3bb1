// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading and decoding the guest instruction that caused an exit.
//!
//! AMD SVM without NRIPS (CPUID Fn8000_000A EDX bit 3; QEMU 7.2's TCG offers SVM without it)
//! leaves the next-RIP field of the VMCB at 0 (AMD64 APM Vol. 2, 15.7.1), and without decode
//! assists (EDX bit 7) it gives no operands either: after an intercepted instruction the
//! hypervisor fetches the bytes at the guest's CS:RIP through the guest's page tables and
//! decodes them itself.
//!
//! - [`walk`]: guest linear → guest-physical translation in every x86 paging mode, and reads of
//!   guest linear memory ([`read_linear`]).
//! - [`length`]: decoding of the intercepted instructions ([`decode`]): their length and, for
//!   MOV CR/DR, LMSW, SMSW and INVLPG, their operands.
//! - [`fetch_and_decode`] puts the two together; [`fetch_bytes`] only reads the bytes;
//!   [`cache::DecodeCache`] remembers recent decodes and reuses them while every read they
//!   made still returns the same.
//! - [`mmio`]: decoding and emulation of the instructions that access MMIO pages, whose
//!   exits (EPT violation, nested page fault) give only the guest-physical address.
//!
//! Everything here is pure: it works on any [`GuestRead`], so it is unit tested on the host
//! against a `Vec`-backed memory. In the kernel, [`GuestRead`] is implemented for
//! [`GuestMemory`](crate::vmm::guest_mem::GuestMemory).

pub mod cache;
pub mod length;
pub mod mmio;
mod prefixes;
#[cfg(test)]
mod tests;
pub mod walk;

pub use length::{
    Base, CodeMode, DecodeError, Decoded, Instruction, MAX_INSTRUCTION_LEN, MemOperand, Opcode,
    Operand, Segment, decode,
};
pub use walk::{
    GuestRead, PagingMode, PagingState, Translation, WalkError, Word, read_linear, translate,
};

#[cfg(target_os = "none")]
use crate::vmm::guest_mem::GuestMemory;

#[cfg(target_os = "none")]
impl<F: crate::mm::pagetable::Format> GuestRead for GuestMemory<F> {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        match self.slice_mut(gpa, buf.len()) {
            Some(s) => {
                buf.copy_from_slice(s);
                true
            }
            None => false,
        }
    }

    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        self.read_u64_at(gpa)
    }
}

/// Why [`fetch_and_decode`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchError {
    /// The instruction bytes could not be read (the guest's page tables changed since it
    /// executed them, or the instruction runs into a page that is not mapped).
    Walk(WalkError),
    /// The bytes are not an instruction Castor handles.
    Decode(DecodeError),
}

impl core::fmt::Display for FetchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FetchError::Walk(e) => write!(f, "instruction fetch: {e}"),
            FetchError::Decode(e) => write!(f, "instruction decode: {e}"),
        }
    }
}

/// Up to 15 instruction bytes read at a guest linear address ([`fetch_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstructionBytes {
    buf: [u8; MAX_INSTRUCTION_LEN],
    have: usize,
    stopped_by: Option<WalkError>,
}

impl InstructionBytes {
    /// The bytes read: 15, or fewer if they ran into a page that could not be read.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.have]
    }

    /// Why fewer than 15 bytes were read, if so. A decoder that finds the bytes truncated
    /// reports this instead.
    pub fn stopped_by(&self) -> Option<WalkError> {
        self.stopped_by
    }
}

/// Reads the instruction bytes at guest linear address `linear` (see [`CodeMode::linear_ip`]).
///
/// Up to 15 bytes are read; the bytes up to the end of the first 4 KiB page must read, the rest
/// are kept up to the first page that cannot be read (its walk error is in
/// [`InstructionBytes::stopped_by`], to report only if the instruction needs those bytes).
pub fn fetch_bytes<M: GuestRead + ?Sized>(
    state: &PagingState,
    mem: &mut M,
    linear: u64,
) -> Result<InstructionBytes, WalkError> {
    let mut buf = [0u8; MAX_INSTRUCTION_LEN];
    // Bytes up to the end of the first 4 KiB page (the smallest page size): these must read.
    let first = usize::try_from(4096 - (linear & 0xFFF))
        .map_or(MAX_INSTRUCTION_LEN, |n| n.min(MAX_INSTRUCTION_LEN));
    read_linear(state, mem, linear, &mut buf[..first])?;
    let mut have = first;
    let mut stopped_by = None;
    if first < MAX_INSTRUCTION_LEN {
        match read_linear(
            state,
            mem,
            linear.wrapping_add(first as u64),
            &mut buf[first..],
        ) {
            Ok(()) => have = MAX_INSTRUCTION_LEN,
            Err(e) => stopped_by = Some(e),
        }
    }
    Ok(InstructionBytes {
        buf,
        have,
        stopped_by,
    })
}

/// Reads the instruction at guest linear address `linear` (see [`CodeMode::linear_ip`]) and
/// decodes it for `mode`.
///
/// Up to 15 bytes are read; if they run into a page that cannot be read, only the bytes before
/// it are decoded, and the walk error is reported only if the instruction needs more of them.
pub fn fetch_and_decode<M: GuestRead + ?Sized>(
    state: &PagingState,
    mem: &mut M,
    linear: u64,
    mode: CodeMode,
) -> Result<Decoded, FetchError> {
    let fetched = fetch_bytes(state, mem, linear).map_err(FetchError::Walk)?;
    match (decode(fetched.bytes(), mode), fetched.stopped_by()) {
        (Err(DecodeError::Truncated { .. }), Some(e)) => Err(FetchError::Walk(e)),
        (r, _) => r.map_err(FetchError::Decode),
    }
}
