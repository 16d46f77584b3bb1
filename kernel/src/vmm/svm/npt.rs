// SPDX-License-Identifier: MIT OR Apache-2.0
//! Nested page tables (AMD64 APM Vol. 2, 15.25 "Nested Paging").
//!
//! Nested tables use the ordinary long-mode entry format (APM Vol. 2, 5.3 "Long-Mode Page
//! Translation"), with these rules from 15.25:
//! - every nested access counts as a **user** access, so every level must have U/S = 1 or the
//!   access faults (#VMEXIT(NPF)); Castor sets U/S on tables and leaves alike;
//! - the walk uses the host's paging mode at VMRUN, so NX (bit 63) is honoured because Castor
//!   runs with EFER.NXE set (with NXE clear, bit 63 would be a reserved-bit fault);
//! - the hardware sets the accessed and dirty bits ([`ACCESSED`], [`DIRTY`]) in nested entries
//!   like in host paging; there is no enable bit as with EPT.
//!
//! Only the encoding lives here: walking, mapping and auditing are the generic code in
//! `mm::pagetable`, shared with host paging and EPT. The table root goes into the VMCB's N_CR3.

use crate::mm::pagetable::{Attrs, Decoded, Format, level_size};

/// Present.
const PRESENT: u64 = 1 << 0;
/// Read/write: writes allowed.
const WRITE: u64 = 1 << 1;
/// User/supervisor: must be 1 at every level for nested accesses.
const USER: u64 = 1 << 2;
/// Page-level write-through.
const PWT: u64 = 1 << 3;
/// Page-level cache disable.
const PCD: u64 = 1 << 4;
/// Accessed: set by the hardware when a nested walk uses the entry (every level).
pub const ACCESSED: u64 = 1 << 5;
/// Dirty: set by the hardware in a leaf when the guest writes the page.
pub const DIRTY: u64 = 1 << 6;
/// Page size: a 2 MiB (level 2) or 1 GiB (level 3) leaf.
const LARGE: u64 = 1 << 7;
/// No-execute (honoured because the host runs with EFER.NXE).
const NX: u64 = 1 << 63;
/// Physical address bits 51:12.
const ADDR: u64 = 0x000F_FFFF_FFFF_F000;

/// The nested page table entry format.
pub struct NptFormat;

impl Format for NptFormat {
    const WRITE_BIT: u64 = WRITE;
    const DIRTY_BIT: u64 = DIRTY;
    const ACCESSED_BIT: u64 = ACCESSED;

    fn table_entry(table_phys: u64) -> u64 {
        (table_phys & ADDR) | PRESENT | WRITE | USER
    }

    fn leaf_entry(phys: u64, attrs: Attrs, level: u8) -> u64 {
        let mut e = (phys & ADDR) | PRESENT | USER;
        if attrs.write {
            e |= WRITE;
        }
        if !attrs.exec {
            e |= NX;
        }
        if attrs.uncached {
            // PAT entry 3: UC with the default host PAT. The guest's own memory type (through
            // G_PAT) combines with it.
            e |= PCD | PWT;
        }
        if level > 1 {
            e |= LARGE;
        }
        e
    }

    fn decode(entry: u64, level: u8) -> Decoded {
        if entry & PRESENT == 0 {
            return Decoded::Absent;
        }
        // An entry without U/S grants nothing to nested accesses; Castor never writes one, and
        // it still decodes as present so `map` cannot silently overwrite it.
        let attrs = Attrs {
            write: entry & WRITE != 0,
            exec: entry & NX == 0,
            uncached: entry & PCD != 0,
        };
        if level == 1 || (level <= 3 && entry & LARGE != 0) {
            // Large pages keep the PAT bit at bit 12: mask the address to the page size.
            Decoded::Leaf(entry & ADDR & !(level_size(level) - 1), attrs)
        } else {
            Decoded::Table(
                entry & ADDR,
                Attrs {
                    uncached: false,
                    ..attrs
                },
            )
        }
    }
}

/// The N_CR3 value for a table rooted at `root` (APM Vol. 2, 15.25): the root's physical
/// address; the PWT/PCD bits (write-back table walks) are left clear.
pub const fn ncr3(root: u64) -> u64 {
    root & ADDR
}

#[cfg(test)]
mod tests;
