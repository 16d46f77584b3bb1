// SPDX-License-Identifier: MIT OR Apache-2.0
//! Tests of the nested page table format and its use through `PageTable`.

use super::*;
use crate::mm::pagetable::tests::{FakeMemory, hardware_access};
use crate::mm::pagetable::{PageTable, TableMemory, audit_wx};
use std::cell::RefCell;
use std::rc::Rc;

const RWX: Attrs = Attrs {
    write: true,
    exec: true,
    uncached: false,
};

/// Fake memory the test can still inspect (and write, as the hardware would) while a
/// `PageTable` owns it.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<FakeMemory>>);

impl TableMemory for Shared {
    fn alloc_table(&mut self) -> Option<u64> {
        self.0.borrow_mut().alloc_table()
    }
    fn read(&self, table: u64, i: usize) -> u64 {
        self.0.borrow().read(table, i)
    }
    fn write(&mut self, table: u64, i: usize, e: u64) {
        self.0.borrow_mut().write(table, i, e)
    }
    fn free_table(&mut self, table: u64) {
        self.0.borrow_mut().free_table(table)
    }
}

#[test]
fn guest_ram_mapping_round_trips() {
    let mut t = PageTable::<NptFormat, _>::new(FakeMemory::default()).unwrap();
    t.map_range(0, 0x800_0000, 0x40_0000, RWX, 2).unwrap();
    t.map(0xfee0_0000, 0xfee0_0000, 1, Attrs::DEVICE).unwrap();
    let tr = t.translate(0x12_3456).unwrap();
    assert_eq!((tr.phys, tr.level, tr.attrs), (0x812_3456, 2, RWX));
    let tr = t.translate(0x3f_ffff).unwrap();
    assert_eq!((tr.phys, tr.level), (0x83f_ffff, 2));
    assert_eq!(t.translate(0xfee0_0010).unwrap().attrs, Attrs::DEVICE);
    assert_eq!(t.translate(0x40_0000), None);
    // Guest RAM is writable and executable by design: the audit counts it.
    let audit = audit_wx(&t);
    assert_eq!((audit.mappings, audit.violations), (3, 2));
    assert_eq!(audit.first_violation, Some(0));
}

#[test]
fn every_level_is_present_and_user() {
    let mem = Shared::default();
    let mut t = PageTable::<NptFormat, _>::new(mem.clone()).unwrap();
    t.map_range(0, 0, 0x40_0000, Attrs::READ_WRITE, 2).unwrap();
    t.map(0x4000_0000, 0x4000_0000, 3, Attrs::READ).unwrap();
    t.map(0x8000_0000, 0x9000, 1, Attrs::READ_EXEC).unwrap();
    let mut entries = 0;
    for (phys, table) in &mem.0.borrow().tables {
        for (i, &e) in table.iter().enumerate() {
            if e != 0 {
                entries += 1;
                assert_eq!(
                    e & (PRESENT | USER),
                    PRESENT | USER,
                    "entry {i} of table {phys:#x}: {e:#x}"
                );
            }
        }
    }
    // PML4: 1 table; PDPT: 1 GiB leaf + 2 tables; PD at 0: 2 leaves; PD at 2 GiB: 1
    // table; PT: 1 leaf.
    assert_eq!(entries, 8);
    t.release();
    assert!(mem.0.borrow().tables.is_empty());
}

#[test]
fn entry_bits_follow_the_apm() {
    // Table entries: present, writable, user, executable (NX clear).
    assert_eq!(NptFormat::table_entry(0x5000), 0x5007);
    // A 2 MiB read-only, executable leaf.
    assert_eq!(
        NptFormat::leaf_entry(0x20_0000, Attrs::READ_EXEC, 2),
        0x20_0000 | PRESENT | USER | LARGE
    );
    // A 4 KiB read-write, non-executable leaf: no PS bit (bit 7 is PAT there).
    assert_eq!(
        NptFormat::leaf_entry(0x7000, Attrs::READ_WRITE, 1),
        0x8000_0000_0000_7007
    );
    // Device memory: uncached through PCD|PWT.
    assert_eq!(
        NptFormat::leaf_entry(0xfee0_0000, Attrs::DEVICE, 1),
        0x8000_0000_fee0_001f
    );
    // A 1 GiB leaf.
    assert_eq!(NptFormat::leaf_entry(0x4000_0000, RWX, 3), 0x4000_0087);
    assert_eq!((ACCESSED, DIRTY), (0x20, 0x40));
    assert_eq!(ncr3(0x1234_5000), 0x1234_5000);
}

#[test]
fn decode_ignores_accessed_dirty_and_pat_bits() {
    assert_eq!(NptFormat::decode(0, 1), Decoded::Absent);
    assert_eq!(NptFormat::decode(0x5006, 4), Decoded::Absent, "P clear");
    let leaf = NptFormat::leaf_entry(0x20_0000, Attrs::READ_WRITE, 2) | ACCESSED | DIRTY;
    assert_eq!(
        NptFormat::decode(leaf, 2),
        Decoded::Leaf(0x20_0000, Attrs::READ_WRITE)
    );
    // The PAT bit (12) of a large page is not part of the address.
    assert_eq!(
        NptFormat::decode(leaf | (1 << 12), 2),
        Decoded::Leaf(0x20_0000, Attrs::READ_WRITE)
    );
    // Bit 7 of a PML4 entry is reserved, not a page size: still a table.
    assert!(matches!(
        NptFormat::decode(0x5000 | PRESENT | USER | LARGE, 4),
        Decoded::Table(0x5000, _)
    ));
    let table = NptFormat::table_entry(0x9000) | ACCESSED;
    assert_eq!(NptFormat::decode(table, 3), Decoded::Table(0x9000, RWX));
}

#[test]
fn write_protect_and_harvest_keep_the_rest_of_the_entry() {
    let mem = Shared::default();
    let mut t = PageTable::<NptFormat, _>::new(mem.clone()).unwrap();
    t.map_range(0, 0x100_0000, 0x4000, RWX, 1).unwrap();
    let (fresh, level) = t.leaf_entry(0x2000).unwrap();
    assert_eq!((fresh, level), (0x100_2000 | PRESENT | WRITE | USER, 1));
    let pt = *mem
        .0
        .borrow()
        .tables
        .iter()
        .find(|(_, e)| e[2] & ADDR == 0x100_2000)
        .unwrap()
        .0;
    // The guest writes the page: the processor sets A and D in the nested leaf.
    hardware_access(&mut t, 0x2000, true);
    assert_eq!(t.set_writable(0x2000, 1, false), Some(true));
    assert_eq!(mem.read(pt, 2), (fresh & !WRITE) | ACCESSED | DIRTY);
    assert_eq!(t.translate(0x2000).unwrap().attrs, Attrs::READ_EXEC);
    let mut dirty = std::vec::Vec::new();
    t.take_dirty(|gpa, _| dirty.push(gpa));
    assert_eq!(dirty, [0x2000]);
    assert_eq!(mem.read(pt, 2), (fresh & !WRITE) | ACCESSED, "A stays");
    assert_eq!(t.set_writable(0x2000, 1, true), Some(false));
    assert_eq!(mem.read(pt, 2), fresh | ACCESSED);
    assert_eq!(
        (NptFormat::WRITE_BIT, NptFormat::DIRTY_BIT),
        (1 << 1, 1 << 6)
    );
}

#[test]
fn protect_clears_hardware_set_accessed_and_dirty() {
    let mem = Shared::default();
    let mut t = PageTable::<NptFormat, _>::new(mem.clone()).unwrap();
    t.map_range(0, 0x100_0000, 0x4000, RWX, 1).unwrap();
    // Find the page table and set A/D in the leaf for 0x1000 as the hardware would.
    let pt = *mem
        .0
        .borrow()
        .tables
        .iter()
        .find(|(_, e)| e[1] & ADDR == 0x100_1000)
        .unwrap()
        .0;
    let e = mem.read(pt, 1);
    mem.clone().write(pt, 1, e | ACCESSED | DIRTY);
    assert_eq!(
        t.translate(0x1abc).unwrap().attrs,
        RWX,
        "A/D change no rights"
    );
    // A dirty-page harvest write-protects by rewriting the leaf: A/D start over.
    assert!(t.protect(0x1000, 1, Attrs::READ_EXEC));
    assert_eq!(mem.read(pt, 1) & (ACCESSED | DIRTY | WRITE), 0);
    assert_eq!(t.translate(0x1abc).unwrap().attrs, Attrs::READ_EXEC);
    assert_eq!(
        t.translate(0x2abc).unwrap().attrs,
        RWX,
        "neighbour untouched"
    );
}
