// SPDX-License-Identifier: MIT OR Apache-2.0
//! Boot modules for a Multiboot guest (Multiboot Specification 0.6.96, section 3.3, flag 3):
//! `mods_count` entries at `mods_addr`, each `mod_start`, `mod_end` (exclusive), `string` (a
//! NUL-terminated string, here the module's arguments) and a reserved 0.
//!
//! Placement, as QEMU's `-initrd "a args,b"` does it: the modules one after the other above
//! the kernel image (and above 1 MiB), each on a page boundary (which also meets header flag 0,
//! "page-align modules"), then the module table, then the strings; all of it must be guest RAM
//! below 4 GiB.

use super::super::{GuestModule, GuestPhys};
use super::{HIGH_MEMORY, LIMIT_4G, LoadError, write};

/// Bytes of one module table entry.
pub const ENTRY_SIZE: u64 = 16;
/// Modules start on page boundaries.
const PAGE: u64 = 4096;

/// Where the modules, their table and their strings go (checked before anything is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Where the first module goes.
    first: u64,
    /// The module table (0 when there are no modules).
    table: u64,
}

impl Layout {
    /// Places `modules` above `image_end` in `ram` bytes of guest RAM, or says why they do not
    /// fit (or have a string with a NUL in it).
    pub fn new(modules: &[GuestModule<'_>], image_end: u64, ram: u64) -> Result<Self, LoadError> {
        if let Some(index) = modules.iter().position(|m| m.args.as_bytes().contains(&0)) {
            return Err(LoadError::ModuleArgsContainNul { index });
        }
        let first = image_end.max(HIGH_MEMORY).next_multiple_of(PAGE);
        if modules.is_empty() {
            return Ok(Self { first, table: 0 });
        }
        let table = modules.iter().fold(first, |at, m| {
            at.saturating_add(m.data.len() as u64)
                .next_multiple_of(PAGE)
        });
        let strings: u64 = modules.iter().map(|m| m.args.len() as u64 + 1).sum();
        let end = table
            .saturating_add(ENTRY_SIZE * modules.len() as u64)
            .saturating_add(strings);
        let limit = ram.min(LIMIT_4G);
        if end > limit {
            return Err(LoadError::ModulesBeyondRam {
                count: modules.len(),
                end,
                limit,
            });
        }
        Ok(Self { first, table })
    }

    /// Copies `modules` (the ones [`Layout::new`] placed) into `mem` with their table and
    /// strings; returns `(mods_count, mods_addr)` for the boot information, or `None` without
    /// modules.
    pub fn write(
        &self,
        mem: &mut impl GuestPhys,
        modules: &[GuestModule<'_>],
    ) -> Result<Option<(u32, u32)>, LoadError> {
        if modules.is_empty() {
            return Ok(None);
        }
        let mut at = self.first;
        let mut string = self.table + ENTRY_SIZE * modules.len() as u64;
        for (i, m) in modules.iter().enumerate() {
            let end = at + m.data.len() as u64;
            write(mem, at, m.data)?;
            write(mem, string, m.args.as_bytes())?;
            write(mem, string + m.args.len() as u64, &[0])?;
            // Everything is below 4 GiB (checked by new()).
            let mut entry = [0u8; ENTRY_SIZE as usize];
            entry[0..4].copy_from_slice(&(at as u32).to_le_bytes());
            entry[4..8].copy_from_slice(&(end as u32).to_le_bytes());
            entry[8..12].copy_from_slice(&(string as u32).to_le_bytes());
            write(mem, self.table + ENTRY_SIZE * i as u64, &entry)?;
            string += m.args.len() as u64 + 1;
            at = end.next_multiple_of(PAGE);
        }
        Ok(Some((modules.len() as u32, self.table as u32)))
    }
}
