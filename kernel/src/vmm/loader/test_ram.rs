// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest RAM for the loaders' host tests: a `Vec` filled with [`POISON`], so that loads can be
//! seen to write (and zero) bytes, with readers for the fields the tests check.

use alloc::vec;
use alloc::vec::Vec;

use super::GuestPhys;

/// What fresh fake RAM holds, so that loads can be seen to write (and zero) bytes.
pub const POISON: u8 = 0xAA;

/// Guest RAM backed by a `Vec`.
pub struct Ram(pub Vec<u8>);

impl Ram {
    /// `size` bytes of [`POISON`].
    pub fn new(size: u64) -> Self {
        Self(vec![POISON; size as usize])
    }

    fn range(&self, gpa: u64, len: u64) -> Option<core::ops::Range<usize>> {
        let end = gpa.checked_add(len)?;
        (end <= self.0.len() as u64).then_some(gpa as usize..end as usize)
    }

    /// The little-endian u16 at `gpa`.
    pub fn u16(&self, gpa: u64) -> u16 {
        let g = gpa as usize;
        u16::from_le_bytes(self.0[g..g + 2].try_into().unwrap())
    }

    /// The little-endian u32 at `gpa`.
    pub fn u32(&self, gpa: u64) -> u32 {
        let g = gpa as usize;
        u32::from_le_bytes(self.0[g..g + 4].try_into().unwrap())
    }

    /// The little-endian u64 at `gpa`.
    pub fn u64(&self, gpa: u64) -> u64 {
        let g = gpa as usize;
        u64::from_le_bytes(self.0[g..g + 8].try_into().unwrap())
    }

    /// `len` bytes at `gpa`.
    pub fn bytes(&self, gpa: u64, len: usize) -> &[u8] {
        &self.0[gpa as usize..gpa as usize + len]
    }

    /// The NUL-terminated string at `gpa`.
    pub fn cstr(&self, gpa: u64) -> &str {
        let s = &self.0[gpa as usize..];
        let n = s.iter().position(|&b| b == 0).expect("NUL terminated");
        core::str::from_utf8(&s[..n]).unwrap()
    }

    /// True if nothing was written.
    pub fn untouched(&self) -> bool {
        self.0.iter().all(|&b| b == POISON)
    }
}

impl GuestPhys for Ram {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
        match self.range(gpa, data.len() as u64) {
            Some(r) => {
                self.0[r].copy_from_slice(data);
                true
            }
            None => false,
        }
    }

    fn fill(&mut self, gpa: u64, len: u64, byte: u8) -> bool {
        match self.range(gpa, len) {
            Some(r) => {
                self.0[r].fill(byte);
                true
            }
            None => false,
        }
    }
}
