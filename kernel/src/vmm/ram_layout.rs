// SPDX-License-Identifier: MIT OR Apache-2.0
//! The one size of a guest's RAM: what the nested page table maps, what the guest is told
//! (Multiboot `mem_upper` and memory map, CMOS) and what a checkpoint covers are all
//! [`RamLayout::size`], the configured size itself. Host frames are allocated in whole, aligned
//! 2 MiB runs so that RAM can be mapped with 2 MiB pages; a size that is not a multiple of
//! 2 MiB (`guest_ram=63`) maps its tail with 4 KiB pages and leaves the rest of the last run
//! unmapped, so the guest can never write memory that a checkpoint does not cover.

use crate::mm::pagetable::{Attrs, Format, MapError, PageTable, TableMemory, level_size};

/// Size of a guest page.
const PAGE: u64 = 4096;

/// Most guest RAM: everything below the 32-bit PCI hole at 3 GiB, so RAM never reaches the
/// device pages above it (the I/O APIC at 0xFEC00000, the local APIC at 0xFEE00000), which the
/// nested page table leaves unmapped so that accesses exit and are emulated. (RAM above 4 GiB
/// is not offered.)
pub const MAX_RAM: u64 = 0xC000_0000;

/// Guest RAM: read, write and execute for the guest, write-back.
const GUEST_RAM: Attrs = Attrs {
    write: true,
    exec: true,
    uncached: false,
};

/// How a guest's RAM is laid out in host memory and in its nested page table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamLayout {
    /// Bytes of guest RAM, from guest-physical 0: mapped, told, checkpointed.
    pub size: u64,
    /// Bytes of host memory to allocate (2 MiB aligned) to hold it.
    pub allocated: u64,
}

impl RamLayout {
    /// The layout for `bytes` of RAM (rounded up to a whole 4 KiB page).
    pub const fn new(bytes: u64) -> Self {
        let size = bytes.next_multiple_of(PAGE);
        Self {
            size,
            allocated: size.next_multiple_of(level_size(2)),
        }
    }

    /// Maps exactly [`RamLayout::size`] bytes at guest-physical 0 onto host memory at
    /// `host_base` (2 MiB aligned), with leaves no larger than `leaf_level` (1: 4 KiB pages
    /// throughout; 2: 2 MiB pages, and 4 KiB pages for a tail that is not a whole 2 MiB). A size above
    /// [`MAX_RAM`] is refused ([`MapError::AlreadyMapped`] at [`MAX_RAM`]: device pages lie
    /// beyond it).
    pub fn map<F: Format, M: TableMemory>(
        &self,
        table: &mut PageTable<F, M>,
        host_base: u64,
        leaf_level: u8,
    ) -> Result<(), MapError> {
        if self.size > MAX_RAM {
            return Err(MapError::AlreadyMapped(MAX_RAM));
        }
        table.map_range(0, host_base, self.size, GUEST_RAM, leaf_level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::pagetable::tests::FakeMemory;
    use crate::vmm::svm::npt::NptFormat;
    use crate::vmm::vmx::ept::EptFormat;

    const MIB: u64 = 1 << 20;

    fn check<F: Format>(leaf_level: u8) {
        let layout = RamLayout::new(63 * MIB);
        assert_eq!(
            layout,
            RamLayout {
                size: 63 * MIB,
                allocated: 64 * MIB
            }
        );
        let mut t = PageTable::<F, _>::new(FakeMemory::default()).unwrap();
        let host = 0x4000_0000;
        layout.map(&mut t, host, leaf_level).unwrap();
        let last = t
            .translate(63 * MIB - PAGE)
            .expect("the last page of RAM is mapped");
        assert_eq!((last.phys, last.level), (host + 63 * MIB - PAGE, 1));
        assert!(last.attrs.write);
        assert_eq!(
            t.translate(63 * MIB),
            None,
            "the allocation's unused last MiB is not guest RAM"
        );
        assert_eq!(t.translate(62 * MIB - 1).map(|t| t.level), Some(leaf_level));
    }

    #[test]
    fn odd_sizes_map_exactly_the_configured_size() {
        check::<EptFormat>(1);
        check::<EptFormat>(2);
        check::<NptFormat>(1);
        check::<NptFormat>(2);
        assert_eq!(RamLayout::new(64 * MIB).allocated, 64 * MIB);
        assert_eq!(RamLayout::new(2 * MIB + 1).size, 2 * MIB + PAGE);
    }

    #[test]
    fn ram_never_reaches_the_apic_pages() {
        let mut t = PageTable::<EptFormat, _>::new(FakeMemory::default()).unwrap();
        assert_eq!(
            RamLayout::new(MAX_RAM + PAGE).map(&mut t, 0x4000_0000, 2),
            Err(MapError::AlreadyMapped(MAX_RAM))
        );
        const { assert!(MAX_RAM <= crate::vmm::devices::ioapic::BASE) };
        const { assert!(MAX_RAM >> 20 >= 3072, "guest_ram's largest value fits") };
    }
}
