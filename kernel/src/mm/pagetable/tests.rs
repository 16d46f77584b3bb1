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
    /// Entries read so far.
    pub reads: core::cell::Cell<usize>,
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
        self.reads.set(self.reads.get() + 1);
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

/// A walk to `virt` as the processor makes one: the accessed flag set in every entry it uses,
/// and for a write the dirty flag in the leaf.
pub fn hardware_access<F: Format, M: TableMemory>(t: &mut PageTable<F, M>, virt: u64, write: bool) {
    let mut table = t.root;
    for level in (1..=4).rev() {
        let i = index(virt, level);
        let e = t.mem.read(table, i);
        match F::decode(e, level) {
            Decoded::Table(next, _) if level > 1 => {
                t.mem.write(table, i, e | F::ACCESSED_BIT);
                table = next;
            }
            Decoded::Leaf(..) => {
                let dirty = if write { F::DIRTY_BIT } else { 0 };
                t.mem.write(table, i, e | F::ACCESSED_BIT | dirty);
                return;
            }
            _ => panic!("{virt:#x} not mapped"),
        }
    }
}

/// A write to `virt` (see [`hardware_access`]).
fn hardware_write<F: Format>(t: &mut PageTable<F, FakeMemory>, virt: u64) {
    hardware_access(t, virt, true);
}

#[test]
fn take_dirty_below_a_limit_reads_only_the_entries_under_it() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    // 32 MiB at 0 in 2 MiB pages, the whole of what the table maps.
    t.map_range(0, 0x1_0000_0000, 32 << 20, Attrs::READ_WRITE, 2)
        .unwrap();
    let write_both = |t: &mut Host| {
        for virt in [0x1f_f000, (32 << 20) - 1] {
            hardware_write(t, virt);
        }
    };
    write_both(&mut t);
    t.mem.reads.set(0);
    let mut seen = Vec::new();
    assert!(t.take_dirty_below(32 << 20, |v, level| seen.push((v, level))));
    assert_eq!(seen, [(0, 2), ((32 << 20) - 0x20_0000, 2)]);
    // One entry at each of the top two levels, 16 at the third.
    assert_eq!(t.mem.reads.get(), 1 + 1 + 16);
    // The same harvest without the limit reads every entry of the three tables.
    write_both(&mut t);
    t.mem.reads.set(0);
    let mut again = Vec::new();
    assert!(t.take_dirty(|v, level| again.push((v, level))));
    assert_eq!(again, seen);
    assert_eq!(t.mem.reads.get(), 3 * ENTRIES);
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
    assert!(
        !t.take_dirty(|v, level| again.push((v, level))),
        "nothing left to clear"
    );
    assert!(again.is_empty(), "flags cleared: {again:?}");
    // Only the flag changed: address and rights are as mapped.
    let tr = t.translate(0x3f_f123).unwrap();
    assert_eq!((tr.phys, tr.attrs), (0x13f_f123, Attrs::READ_WRITE));
}

/// Clearing a log's pages in one call clears exactly what clearing them one by one would, in
/// any order, with a 2 MiB leaf and an unmapped address among them; ascending, it reads one
/// walk's entries per last-level table and then one entry per page.
#[test]
fn clear_dirty_many_clears_what_one_by_one_would_with_fewer_reads() {
    let pages: Vec<u64> = (0..64).map(|i| 0x1000 * ((i * 37) % 64)).collect();
    let build = || {
        let mut t = Host::new(FakeMemory::default()).unwrap();
        t.map_range(0, 0, 0x4_0000, Attrs::READ_WRITE, 1).unwrap();
        t.map(0x20_0000, 0x20_0000, 2, Attrs::READ_WRITE).unwrap();
        for &p in pages.iter().step_by(3) {
            hardware_write(&mut t, p);
        }
        hardware_write(&mut t, 0x20_0000);
        t
    };
    let mut one = build();
    let mut many = build();
    let mut expected = false;
    let extra = [0x20_1000, 0x9_0000];
    for &v in pages.iter().chain(&extra) {
        expected |= one.clear_dirty(v) == Some(true);
    }
    assert!(many.clear_dirty_many(pages.iter().copied().chain(extra)));
    assert!(expected);
    let dirty = |t: &mut Host| {
        let mut seen = Vec::new();
        t.take_dirty(|v, l| seen.push((v, l)));
        seen
    };
    assert_eq!(dirty(&mut many), dirty(&mut one));
    assert!(
        !many.clear_dirty_many(pages.iter().copied()),
        "nothing left to clear"
    );
    // Ascending: one walk (4 reads) for the one table, then a read per page.
    let mut sorted = pages.clone();
    sorted.sort_unstable();
    let mut t = build();
    t.mem.reads.set(0);
    t.clear_dirty_many(sorted.iter().copied());
    assert_eq!(t.mem.reads.get(), 4 + sorted.len());
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

/// Counts the entries read, to tell which tables a harvest looked at.
struct CountingMemory {
    inner: FakeMemory,
    reads: std::cell::Cell<usize>,
}

impl TableMemory for CountingMemory {
    fn alloc_table(&mut self) -> Option<u64> {
        self.inner.alloc_table()
    }
    fn read(&self, table: u64, i: usize) -> u64 {
        self.reads.set(self.reads.get() + 1);
        self.inner.read(table, i)
    }
    fn write(&mut self, table: u64, i: usize, e: u64) {
        self.inner.write(table, i, e)
    }
    fn free_table(&mut self, table: u64) {
        self.inner.free_table(table)
    }
}

/// A harvest reads the tables the guest walked through since the last one, not all of them:
/// 64 MiB mapped with 4 KiB pages (32 last-level tables), writes in 2 MiB regions 0 and 17.
#[test]
fn take_dirty_reads_only_tables_walked_since_the_last_harvest() {
    let mem = CountingMemory {
        inner: FakeMemory::default(),
        reads: std::cell::Cell::new(0),
    };
    let mut t = PageTable::<HostFormat, _>::new(mem).unwrap();
    t.map_range(0, 0x1000_0000, 64 << 20, Attrs::READ_WRITE, 1)
        .unwrap();
    let walk = |t: &mut PageTable<HostFormat, CountingMemory>, virt: u64, write: bool| {
        let mut table = t.root;
        for level in (1..=4).rev() {
            let i = index(virt, level);
            let e = t.mem.inner.read(table, i);
            let flags = if level == 1 && write {
                HostFormat::ACCESSED_BIT | HostFormat::DIRTY_BIT
            } else {
                HostFormat::ACCESSED_BIT
            };
            t.mem.inner.write(table, i, e | flags);
            if let Decoded::Table(next, _) = HostFormat::decode(e, level) {
                table = next;
            }
        }
    };
    // The first harvest after mapping has nothing to do: no entry was used.
    t.mem.reads.set(0);
    let mut seen = Vec::new();
    assert!(!t.take_dirty(|v, _| seen.push(v)));
    assert_eq!(t.mem.reads.get(), 512, "the root only");
    for virt in [0x1000, 0x22_3000, 0x22_4000] {
        walk(&mut t, virt, true);
    }
    walk(&mut t, 0x40_0000, false);
    t.mem.reads.set(0);
    assert!(t.take_dirty(|v, _| seen.push(v)), "flags cleared: flush");
    assert_eq!(seen, [0x1000, 0x22_3000, 0x22_4000]);
    // Root, PDPT, PD, and the three last-level tables walked (one only read).
    assert_eq!(t.mem.reads.get(), 6 * 512);
    // Nothing walked since: only the root is read, and no flush is asked for.
    t.mem.reads.set(0);
    seen.clear();
    assert!(!t.take_dirty(|v, _| seen.push(v)));
    assert!(seen.is_empty());
    assert_eq!(t.mem.reads.get(), 512);
    // A read walk clears flags (a flush) but reports nothing.
    walk(&mut t, 0x3F_F000, false);
    assert!(t.take_dirty(|v, _| seen.push(v)));
    assert!(seen.is_empty());
}

/// Why the flush matters: a write through a translation cached before the harvest sets no
/// accessed flag, and the harvest after it cannot see it. With the TLB flushed, the write
/// walks again and is seen.
#[test]
fn a_write_without_a_walk_is_invisible_so_harvests_ask_for_a_flush() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    t.map_range(0, 0x100_0000, 0x40_0000, Attrs::READ_WRITE, 1)
        .unwrap();
    hardware_write(&mut t, 0x5000);
    let mut seen = Vec::new();
    assert!(t.take_dirty(|v, _| seen.push(v)), "the caller must flush");
    // A stale TLB entry: the processor sets the leaf's dirty flag without walking.
    let (table, i, _) = t.find_leaf(0x5000).unwrap();
    let e = t.mem.read(table, i);
    t.mem.write(table, i, e | HostFormat::DIRTY_BIT);
    seen.clear();
    t.take_dirty(|v, _| seen.push(v));
    assert!(seen.is_empty(), "missed: what the flush prevents");
    // After the flush the write walks.
    hardware_write(&mut t, 0x5000);
    t.take_dirty(|v, _| seen.push(v));
    assert_eq!(seen, [0x5000]);
}

/// Memory whose walker (another processor) sets `flag` in the entry at `target` between any
/// read of it and the next change: a plain read-modify-write loses the flag, an atomic one
/// keeps it.
struct RacingWalker {
    inner: FakeMemory,
    target: Option<(u64, usize)>,
    flag: u64,
    raced: std::cell::Cell<bool>,
}

impl TableMemory for RacingWalker {
    fn alloc_table(&mut self) -> Option<u64> {
        self.inner.alloc_table()
    }
    fn read(&self, table: u64, i: usize) -> u64 {
        if self.target == Some((table, i)) {
            self.raced.set(true);
        }
        self.inner.read(table, i)
    }
    fn write(&mut self, table: u64, i: usize, e: u64) {
        // The walker's flag landed after the read this write is based on: it is overwritten.
        self.inner.write(table, i, e);
    }
    fn fetch_or(&mut self, table: u64, i: usize, bits: u64) -> u64 {
        // Atomic: the walker's flag is in the entry when the OR applies.
        if self.raced.get() && self.target == Some((table, i)) {
            let e = self.inner.read(table, i);
            self.inner.write(table, i, e | self.flag);
        }
        let e = self.inner.read(table, i);
        self.inner.write(table, i, e | bits);
        e
    }
    fn free_table(&mut self, table: u64) {
        self.inner.free_table(table);
    }
}

#[test]
fn an_atomic_grant_keeps_the_flags_a_walker_sets_meanwhile() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    t.map_range(0, 0x50_0000, 0x4000, Attrs::READ, 1).unwrap();
    let (table, i, _) = t.find_leaf(0x1000).unwrap();
    let mem = RacingWalker {
        inner: core::mem::take(&mut t.mem),
        target: Some((table, i)),
        flag: HostFormat::ACCESSED_BIT,
        raced: std::cell::Cell::new(false),
    };
    let mut t = PageTable::<HostFormat, _>::from_root(t.root, mem);
    assert_eq!(t.grant_write_atomic(0x1000, 1), Some(false));
    let (entry, _) = t.leaf_entry(0x1000).unwrap();
    assert_ne!(entry & HostFormat::WRITE_BIT, 0, "writable");
    assert_ne!(
        entry & HostFormat::ACCESSED_BIT,
        0,
        "the walker's flag kept"
    );
    assert_eq!(t.translate(0x1008).unwrap().phys, 0x50_1008);
    assert_eq!(t.grant_write_atomic(0x1000, 1), Some(true), "already");
    assert_eq!(
        t.grant_write_atomic(0x1000, 2),
        None,
        "not a leaf of that level"
    );
    assert_eq!(t.grant_write_atomic(0x9000, 1), None, "not mapped");
    assert_eq!(
        t.translate(0x2000).unwrap().attrs,
        Attrs::READ,
        "neighbour untouched"
    );
}

#[test]
fn withdrawing_write_from_many_pages_matches_one_at_a_time() {
    let build = || {
        let mut t = Host::new(FakeMemory::default()).unwrap();
        // Two 2 MiB regions of 4 KiB pages, and a 2 MiB page after them.
        t.map_range(0, 0x80_0000, 0x40_0000, Attrs::READ_WRITE, 1)
            .unwrap();
        t.map(0x40_0000, 0x60_0000, 2, Attrs::READ_WRITE).unwrap();
        t
    };
    // Ascending across the region boundary, a page already read-only, one not mapped, one
    // under the 2 MiB page (skipped, not split), and one out of order.
    let virts = [
        0x1000,
        0x2000,
        0x1f_f000,
        0x20_0000,
        0x20_1000,
        0x3f_f000,
        0x40_1000,
        0x9000_0000,
        0x5000,
    ];
    let mut one = build();
    one.set_writable(0x2000, 1, false);
    let mut many = build();
    many.set_writable(0x2000, 1, false);
    let expected = virts
        .iter()
        .filter(|&&v| one.set_writable(v, 1, false) == Some(true))
        .count();
    assert_eq!(many.withdraw_write_many(&virts, 1), expected);
    assert_eq!(expected, 6);
    for v in (0..0x60_0000).step_by(0x1000) {
        assert_eq!(many.leaf_entry(v), one.leaf_entry(v), "{v:#x}");
    }
    assert_eq!(many.translate(0x40_1000).unwrap().attrs, Attrs::READ_WRITE);
    assert_eq!(many.translate(0x6000).unwrap().attrs, Attrs::READ_WRITE);
}

/// A guard page inside a 1 GiB page: the page is split down to 4 KiB around it, the guard alone
/// is gone, and every other address translates as before, with the same rights.
#[test]
fn unmap_page_splits_the_large_pages_around_it_and_nothing_else_moves() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    let gib = level_size(3);
    t.map(gib, 0x8000_0000, 3, Attrs::READ_WRITE).unwrap();
    t.map(4 * gib, 4 * gib, 2, Attrs::READ_EXEC).unwrap();
    let guard = gib + 5 * level_size(2) + 7 * level_size(1);
    let before: Vec<_> = [gib, guard - 4096, guard + 4096, gib + gib - 4096, 4 * gib]
        .iter()
        .map(|&v| (v, t.translate(v)))
        .collect();
    t.unmap_page(guard).unwrap();
    assert_eq!(t.translate(guard), None, "the guard page is unmapped");
    assert_eq!(t.translate(guard + 4095), None);
    for (v, was) in before {
        let now = t.translate(v).unwrap();
        let was = was.unwrap();
        assert_eq!(now.phys, was.phys, "{v:#x} still maps the same frame");
        assert_eq!(now.attrs, was.attrs, "{v:#x} keeps its rights");
    }
    assert_eq!(
        t.translate(guard + 4096).unwrap().level,
        1,
        "split down to 4 KiB pages"
    );
    assert_eq!(
        t.translate(gib).unwrap().level,
        2,
        "the rest of the 1 GiB page as 2 MiB ones"
    );
    // Again, and an unmapped address: nothing to do.
    t.unmap_page(guard).unwrap();
    t.unmap_page(9 * gib).unwrap();
    assert_eq!(t.unmap_page(guard + 1), Err(MapError::Misaligned));
}

#[test]
fn unmap_page_without_table_memory_changes_nothing() {
    let mut t = Host::new(FakeMemory::default()).unwrap();
    t.map(0x20_0000, 0x20_0000, 2, Attrs::READ_WRITE).unwrap();
    t.mem.limit = Some(t.mem.tables.len());
    assert_eq!(t.unmap_page(0x20_1000), Err(MapError::OutOfMemory));
    assert_eq!(
        t.translate(0x20_1000).unwrap().level,
        2,
        "still the large page"
    );
}
