// SPDX-License-Identifier: MIT OR Apache-2.0
//! Extended page tables (Intel SDM Vol. 3C, 29.3 "The Extended Page Table Mechanism").
//!
//! Only the entry encoding lives here: walking, mapping and auditing are the generic code in
//! `mm::pagetable`, shared with the kernel's own paging.

use crate::mm::pagetable::{Attrs, Decoded, Format, level_size};

/// EPT entry bits (SDM Vol. 3C, 29.3.2, Tables 29-1 to 29-6).
const READ: u64 = 1 << 0;
const WRITE: u64 = 1 << 1;
const EXEC: u64 = 1 << 2;
const MEMTYPE_SHIFT: u64 = 3;
const MEMTYPE_UC: u64 = 0;
const MEMTYPE_WB: u64 = 6;
const IGNORE_PAT: u64 = 1 << 6;
const LARGE: u64 = 1 << 7;
/// Accessed flag (set by the CPU when EPTP bit 6 enables A/D flags).
pub const ACCESSED: u64 = 1 << 8;
/// Dirty flag of a leaf entry (same condition).
pub const DIRTY: u64 = 1 << 9;
const ADDR: u64 = 0x000F_FFFF_FFFF_F000;

/// The EPT entry format.
pub struct EptFormat;

impl Format for EptFormat {
    const WRITE_BIT: u64 = WRITE;
    /// Bit 9 of a leaf (SDM Vol. 3C, 29.3.5), set by the processor only while the EPTP enables
    /// accessed and dirty flags ([`eptp`]).
    const DIRTY_BIT: u64 = DIRTY;
    const ACCESSED_BIT: u64 = ACCESSED;

    fn table_entry(table_phys: u64) -> u64 {
        (table_phys & ADDR) | READ | WRITE | EXEC
    }

    fn leaf_entry(phys: u64, attrs: Attrs, level: u8) -> u64 {
        let memtype = if attrs.uncached {
            MEMTYPE_UC
        } else {
            MEMTYPE_WB
        };
        let mut e = (phys & ADDR) | READ | (memtype << MEMTYPE_SHIFT) | IGNORE_PAT;
        if attrs.write {
            e |= WRITE;
        }
        if attrs.exec {
            e |= EXEC;
        }
        if level > 1 {
            e |= LARGE;
        }
        e
    }

    fn decode(entry: u64, level: u8) -> Decoded {
        if entry & (READ | WRITE | EXEC) == 0 {
            return Decoded::Absent;
        }
        let attrs = Attrs {
            write: entry & WRITE != 0,
            exec: entry & EXEC != 0,
            uncached: (entry >> MEMTYPE_SHIFT) & 7 == MEMTYPE_UC,
        };
        if level == 1 || (level <= 3 && entry & LARGE != 0) {
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

/// Whether a CPU whose `IA32_VMX_EPT_VPID_CAP` reads `ept_vpid_cap` supports accessed and dirty
/// flags for EPT (bit 21, SDM Vol. 3D, A.10). Without them the processor never sets
/// [`DIRTY`]: dirty pages can only be learned by write protection
/// (`castor_ft::pair::primary::DirtySource`).
pub const fn has_dirty_flags(ept_vpid_cap: u64) -> bool {
    ept_vpid_cap & (1 << 21) != 0
}

/// The EPT pointer for a 4-level table at `root` (SDM Vol. 3C, 26.6.11): write-back paging
/// structures, walk length 4, accessed/dirty flags when `ad` is set.
pub const fn eptp(root: u64, ad: bool) -> u64 {
    (root & ADDR) | MEMTYPE_WB | (3 << 3) | if ad { 1 << 6 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::pagetable::tests::{FakeMemory, hardware_access};
    use crate::mm::pagetable::{PageTable, audit_wx};

    #[test]
    fn guest_ram_mapping_round_trips() {
        let mut t = PageTable::<EptFormat, _>::new(FakeMemory::default()).unwrap();
        let rwx = Attrs {
            write: true,
            exec: true,
            uncached: false,
        };
        t.map_range(0, 0x800_0000, 0x40_0000, rwx, 2).unwrap();
        t.map(0xfee0_0000, 0xfee0_0000, 1, Attrs::DEVICE).unwrap();
        let tr = t.translate(0x12_3456).unwrap();
        assert_eq!((tr.phys, tr.level, tr.attrs), (0x812_3456, 2, rwx));
        assert_eq!(t.translate(0xfee0_0010).unwrap().attrs, Attrs::DEVICE);
        assert_eq!(t.translate(0x40_0000), None);
        // Guest RAM is writable and executable by design: the audit counts it.
        assert_eq!(audit_wx(&t).violations, 2);
    }

    #[test]
    fn entry_bits_follow_the_sdm() {
        let leaf = EptFormat::leaf_entry(0x20_0000, Attrs::READ_EXEC, 2);
        assert_eq!(
            leaf,
            0x20_0000 | READ | EXEC | (6 << 3) | IGNORE_PAT | LARGE
        );
        assert_eq!(EptFormat::table_entry(0x5000), 0x5007);
        assert_eq!(EptFormat::decode(0, 1), Decoded::Absent);
        // Write-only is a misconfiguration in hardware; the decoder still sees it as present.
        assert!(matches!(
            EptFormat::decode(0x1000 | WRITE, 1),
            Decoded::Leaf(0x1000, _)
        ));
        assert_eq!(
            (EptFormat::WRITE_BIT, EptFormat::DIRTY_BIT),
            (WRITE, 1 << 9)
        );
        assert_eq!(eptp(0x1234_5000, true), 0x1234_505e);
        assert_eq!(eptp(0x1234_5000, false), 0x1234_501e);
    }

    #[test]
    fn a_cpu_without_ept_dirty_flags_is_tracked_by_write_protection() {
        use castor_ft::pair::primary::DirtySource;
        // 4-level walk, write-back, INVEPT (bits 6, 14, 20) and A/D flags (21): a Haswell.
        let haswell = (1 << 6) | (1 << 14) | (1 << 20) | (1 << 21);
        // The same without bit 21: Sandy/Ivy Bridge, or an L0 hypervisor hiding the flags.
        let ivy_bridge = haswell & !(1 << 21);
        assert!(has_dirty_flags(haswell) && !has_dirty_flags(ivy_bridge));
        // PML cannot be enabled without the flags (SDM 29.3.6), so there is no log either.
        let source = DirtySource::choose(has_dirty_flags(ivy_bridge), false);
        assert_eq!(source, DirtySource::Protection);
        assert!(source.tracks_writes());
        assert_eq!(
            DirtySource::choose(has_dirty_flags(haswell), false),
            DirtySource::Walk
        );
    }

    #[test]
    fn write_protect_and_harvest_keep_the_rest_of_the_entry() {
        let rwx = Attrs {
            write: true,
            exec: true,
            uncached: false,
        };
        let mut t = PageTable::<EptFormat, _>::new(FakeMemory::default()).unwrap();
        t.map_range(0, 0x800_0000, 0x4000, rwx, 1).unwrap();
        let fresh = t.leaf_entry(0x1000).unwrap().0;
        assert_eq!(
            fresh,
            0x800_1000 | READ | WRITE | EXEC | (6 << 3) | IGNORE_PAT
        );
        // The guest writes the page: the processor sets A and D (29.3.5).
        hardware_access(&mut t, 0x1000, true);
        assert_eq!(t.set_writable(0x1000, 1, false), Some(true));
        let protected = t.leaf_entry(0x1000).unwrap().0;
        assert_eq!(protected, (fresh | ACCESSED | DIRTY) & !WRITE);
        assert_eq!(t.translate(0x1000).unwrap().attrs, Attrs::READ_EXEC);
        let mut dirty = std::vec::Vec::new();
        t.take_dirty(|gpa, level| dirty.push((gpa, level)));
        assert_eq!(dirty, [(0x1000, 1)]);
        assert_eq!(
            t.leaf_entry(0x1000).unwrap().0,
            protected & !DIRTY,
            "A stays"
        );
        assert_eq!(t.set_writable(0x1000, 1, true), Some(false));
        assert_eq!(t.leaf_entry(0x1000).unwrap().0, fresh | ACCESSED);
    }
}
