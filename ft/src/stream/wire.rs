// SPDX-License-Identifier: MIT OR Apache-2.0
//! Little-endian field reading with bounds checks, and the 8-byte record alignment rule.

use super::error::{DecodeError, DecodeErrorKind};

/// Every record starts on this alignment; bodies are zero-padded up to it.
pub const RECORD_ALIGN: usize = 8;

/// Zero bytes used for padding.
pub(crate) const ZEROS: [u8; RECORD_ALIGN] = [0; RECORD_ALIGN];

/// Padding bytes that follow a body of `len` bytes.
pub(crate) const fn padding_len(len: usize) -> usize {
    (RECORD_ALIGN - len % RECORD_ALIGN) % RECORD_ALIGN
}

/// A bounds-checked little-endian reader over a byte slice whose first byte sits at stream
/// offset `base`. Every read either succeeds or returns [`DecodeErrorKind::Truncated`]; none
/// panics.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(buf: &'a [u8], base: u64) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Stream offset of the next byte to be read.
    pub(crate) fn offset(&self) -> u64 {
        self.base.saturating_add(self.pos as u64)
    }

    /// Bytes left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let slice = self
            .pos
            .checked_add(n)
            .and_then(|end| self.buf.get(self.pos..end));
        match slice {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(DecodeError::new(
                self.offset(),
                DecodeErrorKind::Truncated {
                    needed: n as u64,
                    available: self.remaining() as u64,
                },
            )),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let at = self.offset();
        let available = self.remaining() as u64;
        self.take(N)?.try_into().map_err(|_| {
            DecodeError::new(
                at,
                DecodeErrorKind::Truncated {
                    needed: N as u64,
                    available,
                },
            )
        })
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    pub(crate) fn u128(&mut self) -> Result<u128, DecodeError> {
        self.array().map(u128::from_le_bytes)
    }

    /// Reads a reserved `u32` that must be zero.
    pub(crate) fn reserved_u32(&mut self) -> Result<(), DecodeError> {
        let at = self.offset();
        match self.u32()? {
            0 => Ok(()),
            _ => Err(DecodeError::new(at, DecodeErrorKind::ReservedNotZero)),
        }
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        rest
    }
}
