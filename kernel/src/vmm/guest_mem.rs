// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest-physical memory: one physically contiguous run of host frames mapped at guest-physical
//! 0 by the nested page tables (EPT or NPT), plus bounds-checked access for loaders and devices.

use core::marker::PhantomData;

use crate::mm::kmap::IdentityTables;
use crate::mm::pagetable::{Attrs, Format, MapError, PageTable, level_size};
use crate::mm::{self, region::FRAME_SIZE};

/// Guest RAM: read, write and execute for the guest, write-back.
const GUEST_RAM: Attrs = Attrs {
    write: true,
    exec: true,
    uncached: false,
};

/// A guest's RAM and its nested page table in format `F`.
pub struct GuestMemory<F: Format> {
    host_base: u64,
    size: u64,
    table: PageTable<F, IdentityTables>,
    _format: PhantomData<F>,
}

impl<F: Format> GuestMemory<F> {
    /// Allocates `size` bytes (rounded up to 2 MiB) of zeroed guest RAM at guest-physical 0.
    pub fn new(size: u64) -> Result<Self, MapError> {
        let size = size.next_multiple_of(level_size(2));
        let frames = size / FRAME_SIZE;
        let host_base =
            mm::alloc_frames_aligned(frames, level_size(2)).ok_or(MapError::OutOfMemory)?;
        // SAFETY: the frames were just allocated for this guest and are identity mapped.
        unsafe { core::ptr::write_bytes(host_base as *mut u8, 0, size as usize) };
        let mut table = match PageTable::new(IdentityTables) {
            Some(t) => t,
            None => {
                let _ = mm::free_frames(host_base, frames);
                return Err(MapError::OutOfMemory);
            }
        };
        table.map_range(0, host_base, size, GUEST_RAM, 2)?;
        Ok(Self {
            host_base,
            size,
            table,
            _format: PhantomData,
        })
    }

    /// Bytes of guest RAM.
    pub fn size(&self) -> u64 {
        self.size
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

impl<F: Format> Drop for GuestMemory<F> {
    fn drop(&mut self) {
        self.table.release();
        if let Err(e) = mm::free_frames(self.host_base, self.size / FRAME_SIZE) {
            log::error!(
                "guest RAM at {:#x} could not be freed: {e:?}",
                self.host_base
            );
        }
    }
}
