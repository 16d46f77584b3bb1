// SPDX-License-Identifier: MIT OR Apache-2.0
//! Four-level page tables, generic over the entry format.
//!
//! The walk, map and audit logic is written once; a [`Format`] supplies only how permissions,
//! caching and the large-page bit are encoded. The kernel's own paging uses [`HostFormat`]
//! (Intel SDM Vol. 3A, 5.5 "4-Level Paging"); EPT and AMD NPT supply their own formats later and
//! reuse the same code. Table memory is reached through [`TableMemory`], so host unit tests can
//! run the real code over simulated physical memory.

/// Entries per table.
pub const ENTRIES: usize = 512;

/// Size of the region one entry maps at `level` (1 = 4 KiB page, 2 = 2 MiB, 3 = 1 GiB, 4 = 512 GiB).
pub const fn level_size(level: u8) -> u64 {
    1 << (12 + 9 * (level as u64 - 1))
}

const fn index(virt: u64, level: u8) -> usize {
    ((virt >> (12 + 9 * (level as u64 - 1))) & 0x1FF) as usize
}

/// Access rights and caching of a mapping. Present mappings are always readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    /// Writes allowed.
    pub write: bool,
    /// Instruction fetches allowed.
    pub exec: bool,
    /// Uncached (device memory) instead of write-back.
    pub uncached: bool,
}

impl Attrs {
    /// Read-only, not executable, write-back.
    pub const READ: Attrs = Attrs {
        write: false,
        exec: false,
        uncached: false,
    };
    /// Read + write, not executable, write-back.
    pub const READ_WRITE: Attrs = Attrs {
        write: true,
        exec: false,
        uncached: false,
    };
    /// Read + execute, write-back.
    pub const READ_EXEC: Attrs = Attrs {
        write: false,
        exec: true,
        uncached: false,
    };
    /// Read + write, not executable, uncached (MMIO).
    pub const DEVICE: Attrs = Attrs {
        write: true,
        exec: false,
        uncached: true,
    };
}

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// Nothing mapped.
    Absent,
    /// Points to the next-level table at this physical address; `Attrs` are the rights it
    /// grants to everything below (combined with AND along the walk).
    Table(u64, Attrs),
    /// Maps a page (of the size of its level) at this physical address.
    Leaf(u64, Attrs),
}

/// An entry encoding.
pub trait Format {
    /// Entry pointing to a next-level table, granting every right (leaves restrict).
    fn table_entry(table_phys: u64) -> u64;
    /// Leaf entry at `level` (1..=3).
    fn leaf_entry(phys: u64, attrs: Attrs, level: u8) -> u64;
    /// Decodes an entry found at `level`.
    fn decode(entry: u64, level: u8) -> Decoded;
    /// The bit of a leaf entry that grants writes: cleared to write-protect a page, with the
    /// rest of the entry (address, other rights, accessed/dirty flags) left as it is.
    const WRITE_BIT: u64;
    /// The dirty flag of a leaf entry, which the processor sets when it writes through the leaf
    /// (host paging: SDM Vol. 3A, 5.8; EPT: Vol. 3C, 29.3.5; NPT: APM Vol. 2, 15.25.x).
    const DIRTY_BIT: u64;
    /// The accessed flag of an entry, which the processor sets in every entry a walk uses
    /// (host paging: SDM Vol. 3A, 5.8; EPT with accessed and dirty flags enabled: Vol. 3C,
    /// 29.3.5; NPT, like host paging: APM Vol. 2, 15.25.5). [`PageTable::take_dirty`] skips
    /// tables below an entry whose flag stayed clear.
    const ACCESSED_BIT: u64;
}

/// Access to the physical memory holding the tables.
pub trait TableMemory {
    /// A zeroed, 4 KiB aligned frame for a new table.
    fn alloc_table(&mut self) -> Option<u64>;
    /// Reads entry `index` of the table at `table_phys`.
    fn read(&self, table_phys: u64, index: usize) -> u64;
    /// Writes entry `index` of the table at `table_phys`.
    fn write(&mut self, table_phys: u64, index: usize, entry: u64);
    /// Sets `bits` in entry `index` in one atomic read-modify-write, so that flags a processor
    /// sets in the same entry meanwhile (accessed, dirty) are kept; returns the entry before.
    /// The default, for memories no processor walks, reads and writes.
    fn fetch_or(&mut self, table_phys: u64, index: usize, bits: u64) -> u64 {
        let entry = self.read(table_phys, index);
        self.write(table_phys, index, entry | bits);
        entry
    }
    /// Returns a table frame obtained from [`TableMemory::alloc_table`].
    fn free_table(&mut self, table_phys: u64);
}

/// Why a mapping was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// Address not aligned to the page size, or level not 1..=3.
    Misaligned,
    /// Something is already mapped there (a page, or a larger page covering it).
    AlreadyMapped(u64),
    /// No memory for a new table.
    OutOfMemory,
}

/// A translation found by a walk, with the rights in effect after combining every level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// Physical address of the start of the page.
    pub phys: u64,
    /// Level of the leaf (page size = `level_size(level)`).
    pub level: u8,
    /// Effective rights.
    pub attrs: Attrs,
}

fn combine(a: Attrs, b: Attrs) -> Attrs {
    Attrs {
        write: a.write && b.write,
        exec: a.exec && b.exec,
        uncached: b.uncached,
    }
}

/// A four-level table rooted at `root` (physical address of the top-level table).
pub struct PageTable<F: Format, M: TableMemory> {
    root: u64,
    mem: M,
    _format: core::marker::PhantomData<F>,
}

impl<F: Format, M: TableMemory> PageTable<F, M> {
    /// A new, empty table.
    pub fn new(mut mem: M) -> Option<Self> {
        let root = mem.alloc_table()?;
        Some(Self::from_root(root, mem))
    }

    /// A view of an existing table.
    pub fn from_root(root: u64, mem: M) -> Self {
        Self {
            root,
            mem,
            _format: core::marker::PhantomData,
        }
    }

    /// Physical address of the top-level table.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Maps the page of `level_size(level)` bytes at `virt` to `phys`.
    pub fn map(&mut self, virt: u64, phys: u64, level: u8, attrs: Attrs) -> Result<(), MapError> {
        if !(1..=3).contains(&level) || !(virt | phys).is_multiple_of(level_size(level)) {
            return Err(MapError::Misaligned);
        }
        let mut table = self.root;
        for l in (level + 1..=4).rev() {
            let i = index(virt, l);
            table = match F::decode(self.mem.read(table, i), l) {
                Decoded::Table(next, _) => next,
                Decoded::Leaf(..) => return Err(MapError::AlreadyMapped(virt)),
                Decoded::Absent => {
                    let next = self.mem.alloc_table().ok_or(MapError::OutOfMemory)?;
                    self.mem.write(table, i, F::table_entry(next));
                    next
                }
            };
        }
        let i = index(virt, level);
        if F::decode(self.mem.read(table, i), level) != Decoded::Absent {
            return Err(MapError::AlreadyMapped(virt));
        }
        self.mem.write(table, i, F::leaf_entry(phys, attrs, level));
        Ok(())
    }

    /// Maps `[virt, virt + len)` to `[phys, ...)` with the largest pages alignment allows (up to
    /// `max_level`).
    pub fn map_range(
        &mut self,
        virt: u64,
        phys: u64,
        len: u64,
        attrs: Attrs,
        max_level: u8,
    ) -> Result<(), MapError> {
        let mut off = 0;
        while off < len {
            let level = (1..=max_level.min(3))
                .rev()
                .find(|&l| {
                    let size = level_size(l);
                    (virt + off).is_multiple_of(size)
                        && (phys + off).is_multiple_of(size)
                        && len - off >= size
                })
                .ok_or(MapError::Misaligned)?;
            self.map(virt + off, phys + off, level, attrs)?;
            off += level_size(level);
        }
        Ok(())
    }

    /// Rewrites the existing leaf that maps exactly `virt` at `level` with `entry(phys)`.
    /// Returns false if there is no such leaf.
    fn update_leaf(&mut self, virt: u64, level: u8, entry: impl FnOnce(u64) -> u64) -> bool {
        let mut table = self.root;
        for l in (level + 1..=4).rev() {
            match F::decode(self.mem.read(table, index(virt, l)), l) {
                Decoded::Table(next, _) => table = next,
                _ => return false,
            }
        }
        let i = index(virt, level);
        match F::decode(self.mem.read(table, i), level) {
            Decoded::Leaf(phys, _) => {
                self.mem.write(table, i, entry(phys));
                true
            }
            _ => false,
        }
    }

    /// Changes the rights of the existing leaf that maps exactly `virt` at `level`.
    /// Returns false if there is no such leaf. The caller must invalidate the TLB.
    pub fn protect(&mut self, virt: u64, level: u8, attrs: Attrs) -> bool {
        self.update_leaf(virt, level, |phys| F::leaf_entry(phys, attrs, level))
    }

    /// Replaces the existing leaf that maps exactly `virt` at `level` with a raw, format-specific
    /// `entry` — for tests of how the hardware and Castor react to a malformed entry (e.g. an
    /// EPT misconfiguration). Returns false if there is no such leaf.
    pub fn set_raw_leaf(&mut self, virt: u64, level: u8, entry: u64) -> bool {
        self.update_leaf(virt, level, |_| entry)
    }

    /// Unmaps the 4 KiB page at `virt` (a guard page), first splitting a larger page that
    /// covers it into pages of the next size down with the same frames and rights, as often as
    /// it takes. Everything else stays mapped as it was. The caller must invalidate the TLB
    /// (INVLPG of `virt` drops a larger page's entry too: SDM Vol. 3A, 4.10.4.1).
    ///
    /// # Errors
    /// [`MapError::Misaligned`] if `virt` is not page aligned; [`MapError::OutOfMemory`] if a
    /// split needs a table there is no memory for (nothing has changed then).
    pub fn unmap_page(&mut self, virt: u64) -> Result<(), MapError> {
        if !virt.is_multiple_of(level_size(1)) {
            return Err(MapError::Misaligned);
        }
        let mut table = self.root;
        for level in (1..=4).rev() {
            let i = index(virt, level);
            match F::decode(self.mem.read(table, i), level) {
                Decoded::Absent => return Ok(()),
                Decoded::Leaf(..) if level == 1 => {
                    self.mem.write(table, i, 0);
                    return Ok(());
                }
                Decoded::Leaf(phys, attrs) => {
                    // The smaller pages, written in full before the entry points at them.
                    let next = self.mem.alloc_table().ok_or(MapError::OutOfMemory)?;
                    let size = level_size(level - 1);
                    for k in 0..ENTRIES {
                        let entry = F::leaf_entry(phys + k as u64 * size, attrs, level - 1);
                        self.mem.write(next, k, entry);
                    }
                    self.mem.write(table, i, F::table_entry(next));
                    table = next;
                }
                Decoded::Table(next, _) => table = next,
            }
        }
        Ok(())
    }

    /// [`find_leaf`](Self::find_leaf) through `cache`: the last-level (4 KiB) table of the last
    /// such leaf found, and the 2 MiB it covers. An address there is looked up in that table
    /// without a walk (its entry may then be absent: the caller decodes it), so addresses in
    /// ascending order cost one walk per last-level table. Larger leaves are not cached: their
    /// table's other entries may point to tables.
    fn find_leaf_cached(
        &self,
        virt: u64,
        cache: &mut Option<(u64, u64)>,
    ) -> Option<(u64, usize, u8)> {
        let region = virt & !(level_size(2) - 1);
        if let Some((base, table)) = *cache
            && region == base
        {
            return Some((table, index(virt, 1), 1));
        }
        let (table, i, level) = self.find_leaf(virt)?;
        if level == 1 {
            *cache = Some((region, table));
        }
        Some((table, i, level))
    }

    /// The table frame, index and level of the leaf entry that maps `virt`, if one does.
    fn find_leaf(&self, virt: u64) -> Option<(u64, usize, u8)> {
        let mut table = self.root;
        for level in (1..=4).rev() {
            let i = index(virt, level);
            match F::decode(self.mem.read(table, i), level) {
                Decoded::Table(next, _) if level > 1 => table = next,
                Decoded::Leaf(..) => return Some((table, i, level)),
                _ => return None,
            }
        }
        None
    }

    /// The raw entry of the leaf that maps `virt`, and its level.
    pub fn leaf_entry(&self, virt: u64) -> Option<(u64, u8)> {
        let (table, i, level) = self.find_leaf(virt)?;
        Some((self.mem.read(table, i), level))
    }

    /// Grants or withdraws write access in the leaf of `level` that maps `virt`, changing
    /// nothing else in the entry (the accessed and dirty flags survive). Returns whether the leaf
    /// was writable before, or `None` if `virt` is not mapped by a leaf of that level. The
    /// caller must invalidate the TLB after withdrawing write access.
    ///
    /// The update is a plain read-modify-write: nothing may set flags in this table (no CPU may
    /// run through it, e.g. no vCPU of the guest it translates for) while it runs.
    pub fn set_writable(&mut self, virt: u64, level: u8, writable: bool) -> Option<bool> {
        let (table, i, found) = self.find_leaf(virt)?;
        if found != level {
            return None;
        }
        let entry = self.mem.read(table, i);
        let updated = if writable {
            entry | F::WRITE_BIT
        } else {
            entry & !F::WRITE_BIT
        };
        if updated != entry {
            self.mem.write(table, i, updated);
        }
        Some(entry & F::WRITE_BIT != 0)
    }

    /// Withdraws write access from the leaves of `level` that map each of `virts` (best in
    /// ascending order), as [`PageTable::set_writable`] does one at a time, walking from the
    /// root only when a page lies under another table than the one before it: a run of pages
    /// in one region costs one walk. Addresses not mapped by a leaf of that level are skipped.
    /// Returns how many leaves were writable and now are not. Same precondition, and the
    /// caller must invalidate the TLB after it.
    pub fn withdraw_write_many(&mut self, virts: &[u64], level: u8) -> usize {
        let mut cache = None;
        let mut changed = 0;
        for &virt in virts {
            let Some((table, i, found)) = self.find_leaf_cached(virt, &mut cache) else {
                continue;
            };
            if found != level {
                continue;
            }
            let entry = self.mem.read(table, i);
            if !matches!(F::decode(entry, level), Decoded::Leaf(..)) || entry & F::WRITE_BIT == 0 {
                continue;
            }
            self.mem.write(table, i, entry & !F::WRITE_BIT);
            changed += 1;
        }
        changed
    }

    /// Grants write access in the leaf of `level` that maps `virt` with one atomic OR
    /// ([`TableMemory::fetch_or`]): unlike [`PageTable::set_writable`] it may run while a
    /// processor walks the table and sets flags in that leaf. Returns whether the leaf was
    /// writable before, or `None` if `virt` is not mapped by a leaf of that level. Needs no TLB
    /// invalidation: a write through a translation still cached read-only faults spuriously
    /// (Intel SDM Vol. 3C, 29.4.3.3; AMD APM Vol. 2, 15.25.7), and the fault's handler sees the
    /// page writable.
    pub fn grant_write_atomic(&mut self, virt: u64, level: u8) -> Option<bool> {
        let (table, i, found) = self.find_leaf(virt)?;
        if found != level {
            return None;
        }
        Some(self.mem.fetch_or(table, i, F::WRITE_BIT) & F::WRITE_BIT != 0)
    }

    /// Clears the dirty flag of the leaf that maps `virt`. Returns whether it was set, or `None`
    /// if `virt` is not mapped. The caller must invalidate the TLB if it was set (else the
    /// processor may go on writing through a cached translation without setting it again).
    /// Same precondition as [`PageTable::set_writable`].
    pub fn clear_dirty(&mut self, virt: u64) -> Option<bool> {
        let (table, i, _) = self.find_leaf(virt)?;
        let entry = self.mem.read(table, i);
        let dirty = entry & F::DIRTY_BIT != 0;
        if dirty {
            self.mem.write(table, i, entry & !F::DIRTY_BIT);
        }
        Some(dirty)
    }

    /// [`clear_dirty`](Self::clear_dirty) for each of `virts` (ascending is cheapest: pages
    /// under one last-level table cost one walk); whether any flag was cleared.
    pub fn clear_dirty_many(&mut self, virts: impl IntoIterator<Item = u64>) -> bool {
        let mut cache = None;
        let mut cleared = false;
        for virt in virts {
            let Some((table, i, level)) = self.find_leaf_cached(virt, &mut cache) else {
                continue;
            };
            let entry = self.mem.read(table, i);
            if matches!(F::decode(entry, level), Decoded::Leaf(..)) && entry & F::DIRTY_BIT != 0 {
                self.mem.write(table, i, entry & !F::DIRTY_BIT);
                cleared = true;
            }
        }
        cleared
    }

    /// Calls `visit(address, level)` for every leaf whose dirty flag is set, in address order,
    /// and clears that flag. Addresses are bits 47:0 as the table indexes them (not
    /// sign-extended: for nested tables they are guest-physical).
    ///
    /// A table below an entry whose accessed flag is clear is not read: no walk used the entry
    /// since the last harvest cleared that flag, so nothing below was written since then (the
    /// processor sets the flags of every entry of a walk before it sets a leaf's dirty flag, and
    /// a table starts with every flag clear). The flags of the entries it goes through are
    /// cleared, so the cost follows the tables the guest used since, not what the table maps.
    ///
    /// Returns whether it cleared any flag: then the caller must invalidate the TLB, and the
    /// cached paging structures with it, before the table is used again, or the processor could
    /// write through a cached walk without setting the flags this relies on (SDM Vol. 3A,
    /// 4.10.4; APM Vol. 2, 15.16). Same precondition as [`PageTable::set_writable`].
    pub fn take_dirty(&mut self, visit: impl FnMut(u64, u8)) -> bool {
        self.take_dirty_below(u64::MAX, visit)
    }

    /// [`PageTable::take_dirty`] for a table that maps nothing at or above `limit`: the
    /// entries beyond it are not read (for a guest of 32 MiB, one entry of each of the top two
    /// levels and 16 of the next rather than 512 of each). A page mapped above `limit` would
    /// be missed for good: the walk clears the accessed flags of the entries it passes.
    pub fn take_dirty_below(&mut self, limit: u64, mut visit: impl FnMut(u64, u8)) -> bool {
        self.root != 0 && self.take_dirty_in(self.root, 4, 0, limit, &mut visit)
    }

    fn take_dirty_in(
        &mut self,
        table: u64,
        level: u8,
        base: u64,
        limit: u64,
        visit: &mut impl FnMut(u64, u8),
    ) -> bool {
        let mut cleared = false;
        // Entries from `base` up to `limit`, rounded up to whole entries.
        let entries = match limit.checked_sub(base) {
            Some(span) => span.div_ceil(level_size(level)).min(ENTRIES as u64) as usize,
            None => 0,
        };
        // Only an entry with its accessed (a table) or dirty (a leaf) flag set needs decoding,
        // and every entry of a level-1 table is a leaf: most entries cost one test.
        let wanted = match level {
            1 => F::DIRTY_BIT,
            _ => F::ACCESSED_BIT | F::DIRTY_BIT,
        };
        for i in 0..entries {
            let entry = self.mem.read(table, i);
            if entry & wanted == 0 {
                continue;
            }
            let addr = base + i as u64 * level_size(level);
            match F::decode(entry, level) {
                Decoded::Table(next, _) if level > 1 && entry & F::ACCESSED_BIT != 0 => {
                    self.mem.write(table, i, entry & !F::ACCESSED_BIT);
                    self.take_dirty_in(next, level - 1, addr, limit, visit);
                    cleared = true;
                }
                Decoded::Leaf(..) if entry & F::DIRTY_BIT != 0 => {
                    self.mem.write(table, i, entry & !F::DIRTY_BIT);
                    visit(addr, level);
                    cleared = true;
                }
                _ => {}
            }
        }
        cleared
    }

    /// Frees every table frame (not the mapped pages) and leaves the table empty and unusable.
    /// Whatever used it (CR3, an EPTP) must have stopped doing so.
    pub fn release(&mut self) {
        if self.root != 0 {
            self.free_subtables(self.root, 4);
            self.mem.free_table(self.root);
            self.root = 0;
        }
    }

    fn free_subtables(&mut self, table: u64, level: u8) {
        for i in 0..ENTRIES {
            if let Decoded::Table(next, _) = F::decode(self.mem.read(table, i), level) {
                if level > 2 {
                    self.free_subtables(next, level - 1);
                }
                self.mem.free_table(next);
            }
        }
    }

    /// Translates `virt`, combining rights along the walk.
    pub fn translate(&self, virt: u64) -> Option<Translation> {
        let mut table = self.root;
        let mut rights = Attrs {
            write: true,
            exec: true,
            uncached: false,
        };
        for level in (1..=4).rev() {
            match F::decode(self.mem.read(table, index(virt, level)), level) {
                Decoded::Absent => return None,
                Decoded::Table(next, a) => {
                    table = next;
                    rights = combine(rights, a);
                }
                Decoded::Leaf(phys, a) => {
                    let offset = virt & (level_size(level) - 1);
                    return Some(Translation {
                        phys: phys + offset,
                        level,
                        attrs: combine(rights, a),
                    });
                }
            }
        }
        None
    }

    /// Calls `visit(virt, translation)` for every leaf, in address order, with effective rights.
    pub fn for_each_leaf(&self, mut visit: impl FnMut(u64, Translation)) {
        let all = Attrs {
            write: true,
            exec: true,
            uncached: false,
        };
        self.walk(self.root, 4, 0, all, &mut visit);
    }

    fn walk(
        &self,
        table: u64,
        level: u8,
        base: u64,
        rights: Attrs,
        visit: &mut impl FnMut(u64, Translation),
    ) {
        for i in 0..ENTRIES {
            let virt = canonical(base + i as u64 * level_size(level));
            match F::decode(self.mem.read(table, i), level) {
                Decoded::Absent => {}
                Decoded::Table(next, a) if level > 1 => {
                    self.walk(next, level - 1, virt, combine(rights, a), visit)
                }
                Decoded::Table(..) => {}
                Decoded::Leaf(phys, a) => visit(
                    virt,
                    Translation {
                        phys,
                        level,
                        attrs: combine(rights, a),
                    },
                ),
            }
        }
    }
}

/// Sign-extends bit 47 (canonical addresses, SDM Vol. 1, 3.3.7.1).
const fn canonical(virt: u64) -> u64 {
    (((virt << 16) as i64) >> 16) as u64
}

/// Result of a W^X audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WxAudit {
    /// Leaf mappings examined.
    pub mappings: u64,
    /// Mappings both writable and executable.
    pub violations: u64,
    /// First offending virtual address, if any.
    pub first_violation: Option<u64>,
}

/// Checks that no mapping is both writable and executable (effective rights).
pub fn audit_wx<F: Format, M: TableMemory>(table: &PageTable<F, M>) -> WxAudit {
    let mut audit = WxAudit::default();
    table.for_each_leaf(|virt, t| {
        audit.mappings += 1;
        if t.attrs.write && t.attrs.exec {
            audit.violations += 1;
            audit.first_violation.get_or_insert(virt);
        }
    });
    audit
}

/// x86-64 4-level paging entries (SDM Vol. 3A, 5.5, Tables 5-15 to 5-20).
pub struct HostFormat;

impl HostFormat {
    const PRESENT: u64 = 1 << 0;
    const WRITE: u64 = 1 << 1;
    const PWT: u64 = 1 << 3;
    const PCD: u64 = 1 << 4;
    const LARGE: u64 = 1 << 7;
    const NX: u64 = 1 << 63;
    const ADDR: u64 = 0x000F_FFFF_FFFF_F000;
}

impl Format for HostFormat {
    const WRITE_BIT: u64 = Self::WRITE;
    /// Bit 6 of a leaf (SDM Vol. 3A, 5.8 "Accessed and Dirty Flags").
    const DIRTY_BIT: u64 = 1 << 6;
    /// Bit 5 of every entry (SDM Vol. 3A, 5.8).
    const ACCESSED_BIT: u64 = 1 << 5;

    fn table_entry(table_phys: u64) -> u64 {
        (table_phys & Self::ADDR) | Self::PRESENT | Self::WRITE
    }

    fn leaf_entry(phys: u64, attrs: Attrs, level: u8) -> u64 {
        let mut e = (phys & Self::ADDR) | Self::PRESENT;
        if attrs.write {
            e |= Self::WRITE;
        }
        if !attrs.exec {
            e |= Self::NX;
        }
        if attrs.uncached {
            e |= Self::PCD | Self::PWT;
        }
        if level > 1 {
            e |= Self::LARGE;
        }
        e
    }

    fn decode(entry: u64, level: u8) -> Decoded {
        if entry & Self::PRESENT == 0 {
            return Decoded::Absent;
        }
        let attrs = Attrs {
            write: entry & Self::WRITE != 0,
            exec: entry & Self::NX == 0,
            uncached: entry & Self::PCD != 0,
        };
        if level == 1 || (level <= 3 && entry & Self::LARGE != 0) {
            // Large pages keep the PAT bit at bit 12: mask the address to the page size.
            Decoded::Leaf(entry & Self::ADDR & !(level_size(level) - 1), attrs)
        } else {
            Decoded::Table(entry & Self::ADDR, attrs)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
