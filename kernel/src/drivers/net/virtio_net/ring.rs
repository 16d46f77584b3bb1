// SPDX-License-Identifier: MIT OR Apache-2.0
//! Split virtqueues, driver side (virtio v1.1, 2.6; v1.2, 2.7), for drivers that give every
//! buffer exactly one descriptor: the ring layout, making buffers available, consuming used
//! buffers with every device-written index and id checked, and notification suppression.
//!
//! Descriptor `i` always describes the driver's buffer `i`; a descriptor is either *free*
//! (driver owned, on the free list), *held* (driver owned, taken by [`SplitQueue::alloc`] or
//! returned by [`SplitQueue::pop_used`]) or *in flight* (posted, device owned). Only in-flight
//! ids are accepted back from the used ring, each once, so a buggy or hostile device cannot make
//! the driver reuse a buffer it still owns, index out of bounds or panic.
//!
//! Self-contained (no kernel imports) so that it is unit tested on the host.

use core::ptr;
use core::sync::atomic::{Ordering, fence};

/// Largest queue size this driver uses (the device may offer more; the driver may choose less,
/// virtio v1.1, 4.1.4.3.2).
pub const MAX_SIZE: u16 = 256;
/// Descriptor flag: the device writes this buffer (2.6.5).
pub const DESC_F_WRITE: u16 = 2;
/// Available ring flag: no used-buffer notifications (interrupts) wanted (2.6.7).
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used ring flag: the device does not want available-buffer notifications (2.6.10).
pub const USED_F_NO_NOTIFY: u16 = 1;

const DESC_BYTES: usize = 16;
const USED_ELEM_BYTES: usize = 8;

/// Where the parts of a split virtqueue of `size` entries lie in one contiguous block (2.6:
/// descriptor table 16-byte aligned, 16 bytes each; available ring 2-byte aligned, 6 + 2 × size
/// bytes; used ring 4-byte aligned, 6 + 8 × size bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Number of entries (a power of two).
    pub size: u16,
    /// Offset of the available ring (the descriptor table is at 0).
    pub avail: usize,
    /// Offset of the used ring.
    pub used: usize,
    /// Bytes the whole queue needs.
    pub bytes: usize,
}

impl Layout {
    /// The layout for `size` entries: `None` unless `size` is a power of two up to [`MAX_SIZE`].
    pub const fn new(size: u16) -> Option<Self> {
        if size == 0 || !size.is_power_of_two() || size > MAX_SIZE {
            return None;
        }
        let n = size as usize;
        let avail = DESC_BYTES * n;
        // flags, idx, ring[n], used_event
        let avail_end = avail + 6 + 2 * n;
        let used = (avail_end + 3) & !3;
        // flags, idx, ring[n], avail_event
        let bytes = used + 6 + USED_ELEM_BYTES * n;
        Some(Self {
            size,
            avail,
            used,
            bytes,
        })
    }
}

/// The queue size to use given the device's maximum (its `queue_size` register): the largest
/// power of two not above either that or [`MAX_SIZE`]; `None` if the queue does not exist (0).
pub const fn choose_size(device_max: u16) -> Option<u16> {
    let m = if device_max < MAX_SIZE {
        device_max
    } else {
        MAX_SIZE
    };
    if m == 0 {
        None
    } else {
        Some(1 << (15 - m.leading_zeros()))
    }
}

/// A used-ring entry the device should not have written. Any of these means the device is
/// broken; the driver stops using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsedError {
    /// The used index ran further ahead of the driver than the ring is long.
    Overrun {
        /// The device's used index.
        used_idx: u16,
        /// The driver's next entry to consume.
        last_used: u16,
    },
    /// An entry names a descriptor that does not exist.
    BadId(u32),
    /// An entry names a descriptor that the device does not own (never posted or returned twice).
    NotInFlight(u16),
}

/// A buffer the device has finished with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Used {
    /// Its descriptor (and buffer) index, checked to be below the queue size.
    pub id: u16,
    /// Bytes the device wrote into it (unchecked: compare with the buffer's size).
    pub len: u32,
}

/// One split virtqueue's driver state over its ring memory.
pub struct SplitQueue {
    ring: *mut u8,
    layout: Layout,
    /// Next available-ring slot (the driver's shadow of `avail.idx`).
    avail_idx: u16,
    /// Next used-ring entry to consume.
    last_used: u16,
    in_flight: [bool; MAX_SIZE as usize],
    free: [u16; MAX_SIZE as usize],
    free_len: u16,
    /// Buffers made available since the device was last notified (or declined notifications).
    unnotified: u16,
}

// SAFETY: the ring memory is owned by this queue alone (the contract of `new`); nothing in it
// is tied to the thread that created the queue.
unsafe impl Send for SplitQueue {}

impl SplitQueue {
    /// A queue over `ring`, all descriptors free, both indices 0 (as the device expects after a
    /// reset, 2.6).
    ///
    /// # Safety
    /// `ring` must point to `layout.bytes` bytes of zeroed memory, aligned to 16 bytes, that stay
    /// valid and are accessed only through this queue (and by the device) for its lifetime.
    pub unsafe fn new(ring: *mut u8, layout: Layout) -> Self {
        let mut free = [0u16; MAX_SIZE as usize];
        // Popped from the end: descriptor 0 first.
        for (i, slot) in free.iter_mut().take(usize::from(layout.size)).enumerate() {
            *slot = layout.size - 1 - i as u16;
        }
        Self {
            ring,
            layout,
            avail_idx: 0,
            last_used: 0,
            in_flight: [false; MAX_SIZE as usize],
            free,
            free_len: layout.size,
            unnotified: 0,
        }
    }

    /// The layout (size and part offsets).
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Descriptors on the free list.
    pub fn free_count(&self) -> u16 {
        self.free_len
    }

    /// Descriptors the device owns.
    pub fn in_flight(&self) -> u16 {
        self.avail_idx.wrapping_sub(self.last_used)
    }

    /// Buffers made available and not yet notified.
    pub fn unnotified(&self) -> u16 {
        self.unnotified
    }

    fn at<T>(&self, offset: usize) -> *mut T {
        debug_assert!(offset + size_of::<T>() <= self.layout.bytes);
        self.ring.wrapping_add(offset).cast()
    }

    fn write16(&mut self, offset: usize, value: u16) {
        // SAFETY: every caller passes an offset inside the layout (computed from the layout and
        // an index below the queue size), 2-byte aligned because the ring is 16-byte aligned and
        // every u16 field sits at an even offset; the memory is ours (contract of `new`).
        unsafe { ptr::write_volatile(self.at::<u16>(offset), value.to_le()) }
    }

    fn read16(&self, offset: usize) -> u16 {
        // SAFETY: as in `write16`.
        u16::from_le(unsafe { ptr::read_volatile(self.at::<u16>(offset)) })
    }

    fn read32(&self, offset: usize) -> u32 {
        // SAFETY: as in `write16`; u32 fields (used elements) sit at offsets that are multiples
        // of 4 (the used ring is 4-byte aligned, its elements start at +4 and are 8 bytes).
        u32::from_le(unsafe { ptr::read_volatile(self.at::<u32>(offset)) })
    }

    /// Sets the available ring's flags (e.g. [`AVAIL_F_NO_INTERRUPT`]).
    pub fn set_avail_flags(&mut self, flags: u16) {
        self.write16(self.layout.avail, flags);
    }

    /// Takes a free descriptor.
    pub fn alloc(&mut self) -> Option<u16> {
        if self.free_len == 0 {
            return None;
        }
        self.free_len -= 1;
        Some(self.free[usize::from(self.free_len)])
    }

    /// Puts a held descriptor back on the free list. Ignores ids that are out of range or in
    /// flight.
    pub fn release(&mut self, id: u16) {
        if id < self.layout.size
            && !self.in_flight[usize::from(id)]
            && self.free_len < self.layout.size
        {
            self.free[usize::from(self.free_len)] = id;
            self.free_len += 1;
        }
    }

    /// Writes descriptor `id` (a single buffer at bus address `addr`, `len` bytes, `flags`) and
    /// puts it in the next available-ring slot (2.6.13.1–2); the device sees it after
    /// [`publish`](Self::publish). Returns false (and does nothing) if `id` is out of range or
    /// already in flight.
    pub fn post(&mut self, id: u16, addr: u64, len: u32, flags: u16) -> bool {
        if id >= self.layout.size || self.in_flight[usize::from(id)] {
            return false;
        }
        let desc = usize::from(id) * DESC_BYTES;
        // SAFETY: descriptor `id` lies inside the table (id < size), 16-byte aligned; ours.
        unsafe {
            ptr::write_volatile(self.at::<u64>(desc), addr.to_le());
            ptr::write_volatile(self.at::<u32>(desc + 8), len.to_le());
        }
        self.write16(desc + 12, flags);
        self.write16(desc + 14, 0);
        let slot = usize::from(self.avail_idx & (self.layout.size - 1));
        self.write16(self.layout.avail + 4 + 2 * slot, id);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.in_flight[usize::from(id)] = true;
        self.unnotified = self.unnotified.saturating_add(1);
        true
    }

    /// Makes everything posted so far visible to the device: the descriptor and ring writes
    /// before the index update (2.6.13.3).
    pub fn publish(&mut self) {
        fence(Ordering::Release);
        self.write16(self.layout.avail + 2, self.avail_idx);
    }

    /// The next used buffer, if the device has returned one (2.6.14). The used index is read
    /// before the entry; the entry's id must name an in-flight descriptor.
    pub fn pop_used(&mut self) -> Result<Option<Used>, UsedError> {
        let used_idx = self.read16(self.layout.used + 2);
        let pending = used_idx.wrapping_sub(self.last_used);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.in_flight() {
            return Err(UsedError::Overrun {
                used_idx,
                last_used: self.last_used,
            });
        }
        // The entry is read only after the index that covers it.
        fence(Ordering::Acquire);
        let slot = usize::from(self.last_used & (self.layout.size - 1));
        let elem = self.layout.used + 4 + USED_ELEM_BYTES * slot;
        let id = self.read32(elem);
        let len = self.read32(elem + 4);
        self.last_used = self.last_used.wrapping_add(1);
        if id >= u32::from(self.layout.size) {
            return Err(UsedError::BadId(id));
        }
        let id = id as u16;
        if !core::mem::replace(&mut self.in_flight[usize::from(id)], false) {
            return Err(UsedError::NotInFlight(id));
        }
        Ok(Some(Used { id, len }))
    }

    /// Whether to notify the device now: buffers were made available since the last call and
    /// the device has not suppressed notifications (2.6.10, 2.6.13.4). The index update is
    /// ordered before the flags read by a full fence. Resets the count either way.
    pub fn take_notify(&mut self) -> bool {
        if self.unnotified == 0 {
            return false;
        }
        self.unnotified = 0;
        fence(Ordering::SeqCst);
        self.read16(self.layout.used) & USED_F_NO_NOTIFY == 0
    }
}

// This file is also built on its own for the host tests (`drivers/mod.rs` names it with
// `#[path]`, which makes it resolve its submodules as a `mod.rs` would): name the file.
#[cfg(test)]
#[path = "ring/tests.rs"]
mod tests;
