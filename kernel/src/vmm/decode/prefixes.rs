// SPDX-License-Identifier: MIT OR Apache-2.0
//! Instruction prefixes and the byte cursor, shared by the decoder of intercepted instructions
//! ([`super::length`]) and the decoder of MMIO accesses ([`super::mmio`]).
//!
//! Encoding references: Intel SDM Vol. 2A, 2.1.1 "Instruction Prefixes" and 2.2.1 "REX
//! Prefixes"; AMD APM Vol. 3, 1.2 "Instruction Prefixes" and 1.2.7 "REX Prefixes".

use super::length::{CodeMode, DecodeError, MAX_INSTRUCTION_LEN, Segment};

/// Legacy and REX prefixes seen before the opcode.
#[derive(Default)]
pub(super) struct Prefixes {
    /// Operand-size override 66.
    pub(super) opsize: bool,
    /// Address-size override 67.
    pub(super) addrsize: bool,
    /// LOCK F0.
    pub(super) lock: bool,
    /// The last of F2/F3.
    pub(super) rep: Option<u8>,
    /// The last segment override.
    pub(super) segment: Option<Segment>,
    /// The REX byte immediately before the opcode (64-bit mode only), else 0.
    pub(super) rex: u8,
}

impl Prefixes {
    /// Reads the prefixes at the cursor and returns them with the opcode byte after them.
    pub(super) fn read(c: &mut Cursor<'_>, mode: CodeMode) -> Result<(Self, u8), DecodeError> {
        let mut p = Prefixes::default();
        let opcode = loop {
            let b = c.next()?;
            match b {
                0x66 => p.opsize = true,
                0x67 => p.addrsize = true,
                0xF0 => p.lock = true,
                0xF2 | 0xF3 => p.rep = Some(b),
                0x26 => p.segment = Some(Segment::Es),
                0x2E => p.segment = Some(Segment::Cs),
                0x36 => p.segment = Some(Segment::Ss),
                0x3E => p.segment = Some(Segment::Ds),
                0x64 => p.segment = Some(Segment::Fs),
                0x65 => p.segment = Some(Segment::Gs),
                0x40..=0x4F if mode == CodeMode::Bits64 => {
                    p.rex = b;
                    continue;
                }
                _ => break b,
            }
            // A legacy prefix after a REX makes the REX ignored.
            p.rex = 0;
        };
        Ok((p, opcode))
    }

    /// Address size in bytes (2, 4 or 8) from the mode and 67.
    pub(super) fn address_size(&self, mode: CodeMode) -> u8 {
        match (mode, self.addrsize) {
            (CodeMode::Bits16, false) | (CodeMode::Bits32, true) => 2,
            (CodeMode::Bits16, true) | (CodeMode::Bits32, false) | (CodeMode::Bits64, true) => 4,
            (CodeMode::Bits64, false) => 8,
        }
    }

    /// Operand size in bytes (2, 4 or 8) from the mode, 66 and REX.W (which wins over 66).
    pub(super) fn operand_size(&self, mode: CodeMode) -> u8 {
        match (mode, self.opsize) {
            (CodeMode::Bits64, _) if self.rex_w() => 8,
            (CodeMode::Bits16, false) | (CodeMode::Bits32 | CodeMode::Bits64, true) => 2,
            _ => 4,
        }
    }

    /// REX.W.
    pub(super) fn rex_w(&self) -> bool {
        self.rex & 8 != 0
    }
    /// REX.R as the value to OR into ModRM.reg.
    pub(super) fn rex_r(&self) -> u8 {
        (self.rex >> 2 & 1) << 3
    }
    /// REX.X as the value to OR into SIB.index.
    pub(super) fn rex_x(&self) -> u8 {
        (self.rex >> 1 & 1) << 3
    }
    /// REX.B as the value to OR into ModRM.r/m or SIB.base.
    pub(super) fn rex_b(&self) -> u8 {
        (self.rex & 1) << 3
    }
}

/// Reads instruction bytes, enforcing the 15-byte limit before running out of input.
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// The next byte.
    pub(super) fn next(&mut self) -> Result<u8, DecodeError> {
        if self.pos >= MAX_INSTRUCTION_LEN {
            return Err(DecodeError::TooLong);
        }
        let b = *self.bytes.get(self.pos).ok_or(DecodeError::Truncated {
            have: self.bytes.len(),
        })?;
        self.pos += 1;
        Ok(b)
    }

    /// The next `N` bytes.
    pub(super) fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        for b in &mut out {
            *b = self.next()?;
        }
        Ok(out)
    }
}
