// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests of the page walker and the instruction decoder, over a `Vec`-backed guest memory.

use alloc::vec;
use alloc::vec::Vec;

use super::GuestRead;

mod cache;
mod fetch;
mod length;
mod walk;

/// Guest RAM backed by a `Vec`, with a bump allocator of zeroed 4 KiB pages for page tables.
struct Ram {
    bytes: Vec<u8>,
    next: u64,
}

impl Ram {
    /// `size` bytes of zeroed RAM; tables are allocated from `tables_from` upwards.
    fn new(size: usize, tables_from: u64) -> Self {
        Self {
            bytes: vec![0; size],
            next: tables_from,
        }
    }

    /// A fresh zeroed page.
    fn page(&mut self) -> u64 {
        let p = self.next;
        self.next += 4096;
        assert!(self.next as usize <= self.bytes.len(), "fake RAM too small");
        p
    }

    fn w32(&mut self, gpa: u64, v: u32) {
        let g = gpa as usize;
        self.bytes[g..g + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn w64(&mut self, gpa: u64, v: u64) {
        let g = gpa as usize;
        self.bytes[g..g + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn r64(&self, gpa: u64) -> u64 {
        let g = gpa as usize;
        u64::from_le_bytes(self.bytes[g..g + 8].try_into().unwrap())
    }

    fn put(&mut self, gpa: u64, data: &[u8]) {
        let g = gpa as usize;
        self.bytes[g..g + data.len()].copy_from_slice(data);
    }
}

impl GuestRead for Ram {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        let Some(end) = gpa.checked_add(buf.len() as u64) else {
            return false;
        };
        if end > self.bytes.len() as u64 {
            return false;
        }
        buf.copy_from_slice(&self.bytes[gpa as usize..end as usize]);
        true
    }
}
