// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the page-table logic, and the fake physical memory they (and the EPT and NPT tests) map into.

use super::*;
use std::collections::HashMap;
use std::vec::Vec;

/// Simulated physical memory holding tables.
#[derive(Default)]
pub struct FakeMemory {
    pub tables: HashMap<u64, Vec<u64>>,
    pub next: u64,
    pub limit: Option<usize>,
}

impl TableMemory for FakeMemory {
    fn alloc_table(&mut self) -> Option<u64> {
        if self.limit.is_some_and(|l| self.tables.len() >= l) {
            return None;
        }
        self.next += 0x1000;
        let phys = 0x4000_0000 + self.next;
        self.tables.insert(phys, std::vec![0; ENTRIES]);
        Some(phys)
    }
    fn read(&self, table: u64, i: usize) -> u64 {
        self.tables[&table][i]
    }
    fn write(&mut self, table: u64, i: usize, e: u64) {
        self.tables.get_mut(&table).unwrap()[i] = e;
    }
    fn free_table(&mut self, table: u64) {
        assert!(
            self.tables.remove(&table).is_some(),
            "double free of table {table:#x}"
        );
    }
}

type Host = PageTable<HostFormat, FakeMemory>;

#[test]
fn maps_and_translates_every_size() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    t.map(0x1000, 0x5000, 1, Attrs::READ_EXEC).unwrap();
    t.map(0x20_0000, 0x60_0000, 2, Attrs::READ_WRITE).unwrap();
    t.map(0x4000_0000, 0x8000_0000, 3, Attrs::DEVICE).unwrap();
    let tr = t.translate(0x1234).unwrap();
    assert_eq!((tr.phys, tr.level, tr.attrs), (0x5234, 1, Attrs::READ_EXEC));
    let tr = t.translate(0x2f_ffff).unwrap();
    assert_eq!(
        (tr.phys, tr.level, tr.attrs),
        (0x6f_ffff, 2, Attrs::READ_WRITE)
    );
    assert_eq!(t.translate(0x4000_1000).unwrap().attrs, Attrs::DEVICE);
    assert_eq!(t.translate(0x2000), None);
    assert_eq!(t.translate(0xffff_8000_0000_0000), None);
}

#[test]
fn refuses_overlaps_and_misalignment() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    t.map(0x20_0000, 0x20_0000, 2, Attrs::READ).unwrap();
    assert_eq!(
        t.map(0x20_1000, 0, 1, Attrs::READ),
        Err(MapError::AlreadyMapped(0x20_1000))
    );
    assert_eq!(
        t.map(0x20_0000, 0, 2, Attrs::READ),
        Err(MapError::AlreadyMapped(0x20_0000))
    );
    assert_eq!(
        t.map(0x1000, 0x800, 1, Attrs::READ),
        Err(MapError::Misaligned)
    );
    assert_eq!(
        t.map(0x1000, 0x1000, 2, Attrs::READ),
        Err(MapError::Misaligned)
    );
    assert_eq!(t.map(0, 0, 4, Attrs::READ), Err(MapError::Misaligned));
}

#[test]
fn out_of_table_memory_is_an_error() {
    let mem = FakeMemory {
        limit: Some(2),
        ..Default::default()
    };
    let mut t = Host::new(mem).unwrap();
    assert_eq!(
        t.map(0x1000, 0x1000, 1, Attrs::READ),
        Err(MapError::OutOfMemory)
    );
}

#[test]
fn map_range_uses_large_pages_where_aligned() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    t.map_range(0x1f_f000, 0x1f_f000, 0x40_2000, Attrs::READ_WRITE, 3)
        .unwrap();
    let mut sizes = Vec::new();
    t.for_each_leaf(|v, tr| sizes.push((v, tr.level)));
    assert_eq!(
        sizes,
        [
            (0x1f_f000, 1),
            (0x20_0000, 2),
            (0x40_0000, 2),
            (0x60_0000, 1)
        ]
    );
}

#[test]
fn audit_finds_writable_executable_mappings_and_protect_fixes_them() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    t.map_range(0x10_0000, 0x10_0000, 0x4000, Attrs::READ_EXEC, 1)
        .unwrap();
    t.map_range(0x20_0000, 0x20_0000, 0x20_0000, Attrs::READ_WRITE, 2)
        .unwrap();
    assert_eq!(
        audit_wx(&t),
        WxAudit {
            mappings: 5,
            violations: 0,
            first_violation: None
        }
    );
    let rwx = Attrs {
        write: true,
        exec: true,
        uncached: false,
    };
    t.map(0xffff_8000_0000_0000, 0x9000, 1, rwx).unwrap();
    let a = audit_wx(&t);
    assert_eq!((a.mappings, a.violations), (6, 1));
    assert_eq!(
        a.first_violation,
        Some(0xffff_8000_0000_0000),
        "canonical address reported"
    );
    assert!(t.protect(0xffff_8000_0000_0000, 1, Attrs::READ_EXEC));
    assert_eq!(audit_wx(&t).violations, 0);
    assert!(!t.protect(0x30_0000, 1, Attrs::READ));
    assert!(t.set_raw_leaf(0xffff_8000_0000_0000, 1, 0));
    assert_eq!(t.translate(0xffff_8000_0000_0000), None);
    assert!(
        !t.set_raw_leaf(0xffff_8000_0000_0000, 1, 0),
        "no leaf there any more"
    );
}

#[test]
fn release_frees_every_table_once() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    t.map_range(0, 0, 0x40_0000, Attrs::READ_WRITE, 1).unwrap();
    t.map(0x80_0000_0000, 0, 3, Attrs::READ).unwrap();
    assert_eq!(
        t.mem.tables.len(),
        6,
        "pml4, pdpt, pd, 2 pt, and a second pdpt"
    );
    t.release();
    assert!(t.mem.tables.is_empty());
    t.release();
}

/// Sets the dirty flag in the leaf mapping `virt`, as the processor does on a write.
fn hardware_write<F: Format>(t: &mut PageTable<F, FakeMemory>, virt: u64) {
    let (table, i, _) = t.find_leaf(virt).expect("mapped");
    let e = t.mem.read(table, i);
    t.mem.write(table, i, e | F::DIRTY_BIT);
}

#[test]
fn take_dirty_visits_dirty_leaves_in_order_and_clears_them() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    t.map_range(0, 0x100_0000, 0x40_0000, Attrs::READ_WRITE, 1)
        .unwrap();
    t.map(0x8000_0000, 0x20_0000, 2, Attrs::READ_WRITE).unwrap();
    for virt in [0x3f_f000, 0x1000, 0x8000_0000, 0x20_0000, 0x1000] {
        hardware_write(&mut t, virt);
    }
    let mut seen = Vec::new();
    t.take_dirty(|v, level| seen.push((v, level)));
    assert_eq!(
        seen,
        [
            (0x1000, 1),
            (0x20_0000, 1),
            (0x3f_f000, 1),
            (0x8000_0000, 2)
        ]
    );
    let mut again = Vec::new();
    t.take_dirty(|v, level| again.push((v, level)));
    assert!(again.is_empty(), "flags cleared: {again:?}");
    // Only the flag changed: address and rights are as mapped.
    let tr = t.translate(0x3f_f123).unwrap();
    assert_eq!((tr.phys, tr.attrs), (0x13f_f123, Attrs::READ_WRITE));
}

#[test]
fn clear_dirty_reports_and_clears_one_leaf() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    t.map_range(0, 0, 0x4000, Attrs::READ_WRITE, 1).unwrap();
    hardware_write(&mut t, 0x2000);
    hardware_write(&mut t, 0x3000);
    assert_eq!(t.clear_dirty(0x2fff), Some(true));
    assert_eq!(t.clear_dirty(0x2000), Some(false));
    assert_eq!(t.clear_dirty(0x5000), None, "not mapped");
    let mut seen = Vec::new();
    t.take_dirty(|v, _| seen.push(v));
    assert_eq!(seen, [0x3000]);
}

#[test]
fn set_writable_keeps_dirty_flag_and_address() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    t.map_range(0, 0x50_0000, 0x4000, Attrs::READ_WRITE, 1)
        .unwrap();
    t.map(0x20_0000, 0x60_0000, 2, Attrs::READ_WRITE).unwrap();
    hardware_write(&mut t, 0x1000);
    assert_eq!(t.set_writable(0x1000, 1, false), Some(true));
    assert_eq!(t.set_writable(0x1000, 1, false), Some(false), "already");
    assert_eq!(t.translate(0x1008).unwrap().attrs, Attrs::READ);
    assert_eq!(t.translate(0x1008).unwrap().phys, 0x50_1008);
    assert_eq!(
        t.translate(0x2008).unwrap().attrs,
        Attrs::READ_WRITE,
        "neighbour untouched"
    );
    let (entry, level) = t.leaf_entry(0x1000).unwrap();
    assert_eq!(level, 1);
    assert_ne!(entry & HostFormat::DIRTY_BIT, 0, "dirty flag kept");
    assert_eq!(t.set_writable(0x1000, 1, true), Some(false));
    assert_eq!(t.translate(0x1008).unwrap().attrs, Attrs::READ_WRITE);
    // Only a leaf of the level asked for: a 2 MiB page is not split or changed.
    assert_eq!(t.set_writable(0x20_1000, 1, false), None);
    assert_eq!(t.translate(0x20_1000).unwrap().attrs, Attrs::READ_WRITE);
    assert_eq!(t.set_writable(0x9000, 1, false), None, "not mapped");
    let mut seen = Vec::new();
    t.take_dirty(|v, _| seen.push(v));
    assert_eq!(seen, [0x1000], "the harvest still sees the write");
}

#[test]
fn effective_rights_combine_levels() {
    let mut mem = FakeMemory::default();
    let root = mem.alloc_table().unwrap();
    let mut t = PageTable::<HostFormat, _>::from_root(root, mem);
    t.map(
        0x1000,
        0x1000,
        1,
        Attrs {
            write: true,
            exec: true,
            uncached: false,
        },
    )
    .unwrap();
    // Clear the write bit and set NX in the PML4 entry: the leaf stays RWX, the walk is R.
    let e = t.mem.read(root, 0);
    t.mem
        .write(root, 0, (e & !HostFormat::WRITE) | HostFormat::NX);
    assert_eq!(t.translate(0x1000).unwrap().attrs, Attrs::READ);
    assert_eq!(audit_wx(&t).violations, 0);
}
