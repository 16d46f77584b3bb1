// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest-physical memory: one physically contiguous run of host frames mapped at guest-physical
//! 0 by the nested page tables (EPT or NPT), plus bounds-checked access for loaders and devices.
//! Exactly the configured size is RAM, whatever it is ([`RamLayout`]).
//!
//! A *tracked* guest ([`GuestMemory::new_tracked`]) is mapped with 4 KiB leaves, so that the
//! nested tables' dirty flags and write permissions work per 4 KiB page: checkpointing harvests
//! the pages written since the last harvest ([`GuestMemory::harvest_dirty`], or a hardware log
//! drained by the vCPU and then [`GuestMemory::clear_dirty`]) and write-protects pages so that a
//! guest write to them stops the guest ([`GuestMemory::write_protect`]). Every change that a TLB
//! may hold stale raises a flush request ([`GuestMemory::take_flush_request`]): each vCPU of
//! the guest must then flush its nested translations before it runs again (the rules are in
//! `vmx::invalidate` and `svm::invalidate`).
//!
//! These operations read and rewrite nested entries that the processor updates (accessed and
//! dirty flags) while the guest runs, with plain writes: they may only be used while no vCPU of
//! the guest is running, as at an epoch boundary.

use alloc::vec::Vec;
use core::marker::PhantomData;

use crate::mm::kmap::IdentityTables;
use crate::mm::pagetable::{Format, MapError, PageTable, level_size};
use crate::mm::{self, region::FRAME_SIZE};
use crate::vmm::ram_layout::RamLayout;
use crate::vmm::vcpu::Vcpu;

/// Size of a guest page (a guest frame number counts these).
pub const PAGE_SIZE: u64 = 4096;

/// A guest's RAM and its nested page table in format `F`.
pub struct GuestMemory<F: Format> {
    host_base: u64,
    /// Bytes of guest RAM (all mapped).
    size: u64,
    /// Bytes of host memory allocated for it (a whole number of 2 MiB runs).
    allocated: u64,
    table: PageTable<F, IdentityTables>,
    /// Level of the leaves mapping RAM: 1 (4 KiB, tracked) or 2 (2 MiB).
    leaf_level: u8,
    /// A change since the last [`GuestMemory::take_flush_request`] needs a TLB flush.
    flush_needed: bool,
    _format: PhantomData<F>,
}

impl<F: Format> GuestMemory<F> {
    /// Allocates `size` bytes (rounded up to 4 KiB) of zeroed guest RAM at guest-physical 0,
    /// mapped with 2 MiB pages (and 4 KiB pages for a tail that is not a whole 2 MiB).
    pub fn new(size: u64) -> Result<Self, MapError> {
        Self::with_leaves(size, 2)
    }

    /// As [`GuestMemory::new`], mapped with 4 KiB pages so that dirty tracking and write
    /// protection work per 4 KiB page (one more table level: 2 MiB of RAM costs a 4 KiB table).
    pub fn new_tracked(size: u64) -> Result<Self, MapError> {
        Self::with_leaves(size, 1)
    }

    fn with_leaves(size: u64, leaf_level: u8) -> Result<Self, MapError> {
        let layout = RamLayout::new(size);
        let frames = layout.allocated / FRAME_SIZE;
        let host_base =
            mm::alloc_frames_aligned(frames, level_size(2)).ok_or(MapError::OutOfMemory)?;
        // SAFETY: the frames were just allocated for this guest and are identity mapped.
        unsafe { core::ptr::write_bytes(host_base as *mut u8, 0, layout.allocated as usize) };
        let table = match PageTable::new(IdentityTables) {
            Some(t) => t,
            None => {
                let _ = mm::free_frames(host_base, frames);
                return Err(MapError::OutOfMemory);
            }
        };
        // On failure, dropping `memory` frees the RAM and whatever tables were built.
        let mut memory = Self {
            host_base,
            size: layout.size,
            allocated: layout.allocated,
            table,
            leaf_level,
            flush_needed: false,
            _format: PhantomData,
        };
        layout.map(&mut memory.table, host_base, leaf_level)?;
        Ok(memory)
    }

    /// Whether RAM is mapped with 4 KiB pages ([`GuestMemory::new_tracked`]).
    pub fn is_tracked(&self) -> bool {
        self.leaf_level == 1
    }

    /// Appends to `out`, in ascending order, the frame number of every guest page written since
    /// its dirty flag was last cleared, and clears those flags. With 2 MiB mappings a written
    /// 2 MiB page yields all of its 512 frames. Walks only the tables under entries the guest
    /// used since the last harvest ([`PageTable::take_dirty`](crate::mm::pagetable::PageTable::take_dirty)):
    /// the cost follows the 2 MiB regions the guest touched, not the size of guest RAM (a
    /// hardware log, [`Vcpu::drain_dirty_log`], followed by [`GuestMemory::clear_dirty`], costs
    /// what is dirty).
    ///
    /// Raises a flush request if any flag was cleared (accessed flags too: the next walks must
    /// set them again). No vCPU of the guest may be running.
    pub fn harvest_dirty(&mut self, out: &mut Vec<u64>) {
        let size = self.size;
        // Nothing but RAM, [0, size), is mapped: the walk reads no entry beyond it.
        let cleared = self.table.take_dirty_below(size, |gpa, level| {
            let end = (gpa + level_size(level)).min(size);
            out.extend((gpa / PAGE_SIZE)..(end / PAGE_SIZE));
        });
        self.flush_needed |= cleared;
    }

    /// Clears the dirty flags of the pages `gfns` (e.g. those a hardware log reported), so that
    /// their next write sets them again. Frames outside guest RAM are ignored. Costs in
    /// proportion to `gfns.len()`, least in ascending order (one walk per last-level table).
    ///
    /// Raises a flush request if any flag was cleared. No vCPU of the guest may be running.
    pub fn clear_dirty(&mut self, gfns: &[u64]) {
        let size = self.size;
        let gpas = gfns.iter().filter_map(|&gfn| gpa_in_ram(gfn, size));
        self.flush_needed |= self.table.clear_dirty_many(gpas);
    }

    /// Withdraws write access to guest page `gfn`, keeping its dirty flag: the guest's next write
    /// to it stops the guest with [`crate::vmm::vcpu::Exit::NestedPageFault`] (`write: true`)
    /// until [`GuestMemory::unprotect`]. Returns whether the page was writable and now is not;
    /// false if it was protected already, is not guest RAM, or RAM is not tracked (2 MiB
    /// mappings cannot protect one 4 KiB page).
    ///
    /// Raises a flush request when it changes the page. No vCPU of the guest may be running.
    pub fn write_protect(&mut self, gfn: u64) -> bool {
        let changed = self.set_writable(gfn, false);
        self.flush_needed |= changed;
        changed
    }

    /// [`GuestMemory::write_protect`] for each of `gfns` (ascending is cheapest: pages under one
    /// nested table cost one walk). Returns how many changed. Raises a flush request if any
    /// did. No vCPU of the guest may be running.
    pub fn write_protect_many(&mut self, gfns: &[u64]) -> usize {
        if !self.is_tracked() {
            return 0;
        }
        let gpas: Vec<u64> = gfns.iter().filter_map(|&gfn| self.ram_gpa(gfn)).collect();
        let changed = self.table.withdraw_write_many(&gpas, 1);
        self.flush_needed |= changed > 0;
        changed
    }

    /// Gives write access back to guest page `gfn`. Returns whether it was write-protected (so a
    /// monitor can tell a fault on a protected page from a bad access). Raises no flush
    /// request: a write through a translation still cached read-only faults *spuriously* (Intel
    /// SDM Vol. 3C, 29.4.3.3), and the monitor resumes the guest (`castor_ft::pair::primary::StaleTranslations`).
    pub fn unprotect(&mut self, gfn: u64) -> bool {
        self.set_writable(gfn, true)
    }

    /// Whether guest page `gfn` is guest RAM that the guest may not write.
    pub fn is_write_protected(&self, gfn: u64) -> bool {
        self.ram_gpa(gfn)
            .and_then(|gpa| self.table.translate(gpa))
            .is_some_and(|t| !t.attrs.write)
    }

    /// Whether the nested page table changed in a way that each vCPU of this guest must flush
    /// from its TLB before it runs again ([`Vcpu::flush_nested_tlb`]).
    pub fn flush_pending(&self) -> bool {
        self.flush_needed
    }

    /// Returns and clears the flush request; the caller must then call
    /// [`Vcpu::flush_nested_tlb`] on every vCPU of this guest before any runs again.
    pub fn take_flush_request(&mut self) -> bool {
        core::mem::take(&mut self.flush_needed)
    }

    /// For a guest with the single vCPU `vcpu`: flushes its nested TLB if a flush is pending.
    /// Returns whether it did.
    pub fn sync_tlb(&mut self, vcpu: &mut dyn Vcpu) -> bool {
        let flush = self.take_flush_request();
        if flush {
            vcpu.flush_nested_tlb();
        }
        flush
    }

    /// The guest-physical address of frame `gfn` if it is guest RAM.
    fn ram_gpa(&self, gfn: u64) -> Option<u64> {
        gpa_in_ram(gfn, self.size)
    }

    /// Sets the write permission of tracked page `gfn`; true if that changed it.
    fn set_writable(&mut self, gfn: u64, writable: bool) -> bool {
        if !self.is_tracked() {
            return false;
        }
        self.ram_gpa(gfn)
            .and_then(|gpa| self.table.set_writable(gpa, 1, writable))
            .is_some_and(|was| was != writable)
    }

    /// Bytes of guest RAM.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Host-physical (= virtual) address of guest-physical 0: RAM is one contiguous run.
    pub fn host_base(&self) -> u64 {
        self.host_base
    }

    /// Root of the nested page table (for the EPTP / nCR3).
    pub fn table_root(&self) -> u64 {
        self.table.root()
    }

    /// The nested page table.
    pub fn table(&mut self) -> &mut PageTable<F, IdentityTables> {
        &mut self.table
    }

    /// The guest bytes `[gpa, gpa + len)`, if they are all guest RAM.
    pub fn slice_mut(&mut self, gpa: u64, len: usize) -> Option<&mut [u8]> {
        let end = gpa.checked_add(len as u64)?;
        if end > self.size {
            return None;
        }
        // SAFETY: the range lies inside this guest's RAM, which is identity mapped host memory
        // owned by `self`; the mutable borrow of `self` prevents aliasing through this API.
        Some(unsafe { core::slice::from_raw_parts_mut((self.host_base + gpa) as *mut u8, len) })
    }

    /// The little-endian 64-bit value at `gpa` (any alignment), if it is guest RAM: one load,
    /// where a copy through [`slice_mut`](Self::slice_mut) would call `memcpy`.
    pub fn read_u64_at(&self, gpa: u64) -> Option<u64> {
        let end = gpa.checked_add(8)?;
        if end > self.size {
            return None;
        }
        // SAFETY: the 8 bytes lie inside this guest's RAM, identity mapped host memory owned by
        // `self`; an unaligned read of plain bytes.
        Some(u64::from_le(unsafe {
            core::ptr::read_unaligned((self.host_base + gpa) as *const u64)
        }))
    }

    /// The bytes of guest page `gfn`, if it is guest RAM.
    pub fn page(&self, gfn: u64) -> Option<&[u8; PAGE_SIZE as usize]> {
        let gpa = self.ram_gpa(gfn)?;
        // SAFETY: the whole page lies inside this guest's RAM, identity mapped host memory owned
        // by `self`; the shared borrow of `self` keeps this API from writing it meanwhile.
        Some(unsafe { &*((self.host_base + gpa) as *const [u8; PAGE_SIZE as usize]) })
    }

    /// The bytes of guest page `gfn`, writable, if it is guest RAM (host writes do not set the
    /// nested dirty flags).
    pub fn page_mut(&mut self, gfn: u64) -> Option<&mut [u8; PAGE_SIZE as usize]> {
        let gpa = self.ram_gpa(gfn)?;
        // SAFETY: as in `page`; the mutable borrow of `self` makes this the only reference.
        Some(unsafe { &mut *((self.host_base + gpa) as *mut [u8; PAGE_SIZE as usize]) })
    }

    /// Copies `data` into guest memory at `gpa`; false if it does not fit.
    pub fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
        self.slice_mut(gpa, data.len())
            .map(|s| s.copy_from_slice(data))
            .is_some()
    }

    /// Reads a little-endian u64 at `gpa`.
    pub fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        let s = self.slice_mut(gpa, 8)?;
        Some(u64::from_le_bytes([
            s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
        ]))
    }
}

/// The guest-physical address of frame `gfn`, if it lies in RAM of `size` bytes.
fn gpa_in_ram(gfn: u64, size: u64) -> Option<u64> {
    let gpa = gfn.checked_mul(PAGE_SIZE)?;
    (gpa < size).then_some(gpa)
}

impl<F: Format> Drop for GuestMemory<F> {
    fn drop(&mut self) {
        self.table.release();
        if let Err(e) = mm::free_frames(self.host_base, self.allocated / FRAME_SIZE) {
            log::error!(
                "guest RAM at {:#x} could not be freed: {e:?}",
                self.host_base
            );
        }
    }
}
