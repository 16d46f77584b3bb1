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

#[cfg(test)]
mod tests {
    use super::*;

    /// 16-byte aligned, zeroed ring memory.
    #[repr(C, align(4096))]
    struct Memory([u8; 8192]);

    /// The device side, reading and writing the same memory.
    struct Device {
        ring: *mut u8,
        layout: Layout,
        next_avail: u16,
        used_idx: u16,
    }

    impl Device {
        fn r16(&self, off: usize) -> u16 {
            // SAFETY: test memory, inside the layout.
            unsafe { ptr::read_volatile(self.ring.add(off).cast::<u16>()) }
        }
        fn w16(&self, off: usize, v: u16) {
            // SAFETY: test memory, inside the layout.
            unsafe { ptr::write_volatile(self.ring.add(off).cast::<u16>(), v) }
        }
        fn w32(&self, off: usize, v: u32) {
            // SAFETY: test memory, inside the layout.
            unsafe { ptr::write_volatile(self.ring.add(off).cast::<u32>(), v) }
        }
        fn desc(&self, id: u16) -> (u64, u32, u16) {
            let d = usize::from(id) * 16;
            // SAFETY: test memory, inside the layout.
            unsafe {
                (
                    ptr::read_volatile(self.ring.add(d).cast::<u64>()),
                    ptr::read_volatile(self.ring.add(d + 8).cast::<u32>()),
                    ptr::read_volatile(self.ring.add(d + 12).cast::<u16>()),
                )
            }
        }
        /// Takes the next available descriptor id, if the driver published one.
        fn take_avail(&mut self) -> Option<u16> {
            if self.r16(self.layout.avail + 2) == self.next_avail {
                return None;
            }
            let slot = usize::from(self.next_avail & (self.layout.size - 1));
            self.next_avail = self.next_avail.wrapping_add(1);
            Some(self.r16(self.layout.avail + 4 + 2 * slot))
        }
        /// Writes a used entry and publishes it.
        fn give_used(&mut self, id: u32, len: u32) {
            let slot = usize::from(self.used_idx & (self.layout.size - 1));
            self.w32(self.layout.used + 4 + 8 * slot, id);
            self.w32(self.layout.used + 8 + 8 * slot, len);
            self.used_idx = self.used_idx.wrapping_add(1);
            self.w16(self.layout.used + 2, self.used_idx);
        }
    }

    fn setup(mem: &mut Memory, size: u16) -> (SplitQueue, Device) {
        let layout = Layout::new(size).unwrap();
        assert!(layout.bytes <= mem.0.len());
        let ring = mem.0.as_mut_ptr();
        // SAFETY: zeroed, 4096-aligned memory of sufficient size, used only by this test.
        let q = unsafe { SplitQueue::new(ring, layout) };
        let d = Device {
            ring,
            layout,
            next_avail: 0,
            used_idx: 0,
        };
        (q, d)
    }

    #[test]
    fn layout_matches_the_spec_table() {
        let l = Layout::new(256).unwrap();
        assert_eq!((l.avail, l.used, l.bytes), (4096, 4616, 4616 + 6 + 2048));
        let l = Layout::new(1).unwrap();
        assert_eq!((l.avail, l.used, l.bytes), (16, 24, 38));
        let l = Layout::new(2).unwrap();
        // avail 32..42, used aligned to 44
        assert_eq!((l.avail, l.used, l.bytes), (32, 44, 66));
        assert_eq!(Layout::new(0), None);
        assert_eq!(Layout::new(3), None);
        assert_eq!(Layout::new(512), None);
    }

    #[test]
    fn size_is_the_largest_power_of_two_allowed() {
        assert_eq!(choose_size(0), None);
        assert_eq!(choose_size(1), Some(1));
        assert_eq!(choose_size(255), Some(128));
        assert_eq!(choose_size(256), Some(256));
        assert_eq!(choose_size(300), Some(256));
        assert_eq!(choose_size(u16::MAX), Some(256));
    }

    #[test]
    fn posted_buffers_become_visible_on_publish() {
        let mut mem = Memory([0; 8192]);
        let (mut q, mut d) = setup(&mut mem, 8);
        assert_eq!(q.layout(), Layout::new(8).unwrap());
        let id = q.alloc().unwrap();
        assert_eq!(id, 0);
        assert!(q.post(id, 0x1234_5000, 1526, DESC_F_WRITE));
        assert_eq!(d.take_avail(), None, "not yet published");
        q.publish();
        assert_eq!(d.take_avail(), Some(0));
        assert_eq!(d.desc(0), (0x1234_5000, 1526, DESC_F_WRITE));
        assert_eq!(q.in_flight(), 1);
        assert!(!q.post(id, 0, 0, 0), "already in flight");
        assert!(!q.post(8, 0, 0, 0), "out of range");
    }

    #[test]
    fn free_list_runs_out_and_refills() {
        let mut mem = Memory([0; 8192]);
        let (mut q, _d) = setup(&mut mem, 4);
        let ids: Vec<u16> = (0..4).map(|_| q.alloc().unwrap()).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        assert_eq!(q.alloc(), None);
        q.release(2);
        q.release(2);
        q.release(9);
        assert_eq!(q.free_count(), 2, "duplicates are not checked, ranges are");
        assert_eq!(q.alloc(), Some(2));
    }

    #[test]
    fn indices_wrap_around_u16() {
        let mut mem = Memory([0; 8192]);
        let (mut q, mut d) = setup(&mut mem, 4);
        // 70000 round trips pass the 16-bit index wrap, two buffers in flight at a time.
        for n in 0..70_000u32 {
            for _ in 0..2 {
                let id = q.alloc().unwrap();
                assert!(q.post(id, u64::from(id) * 0x1000, 60, 0));
            }
            q.publish();
            while let Some(id) = d.take_avail() {
                d.give_used(u32::from(id), n);
            }
            for _ in 0..2 {
                let u = q.pop_used().unwrap().unwrap();
                assert_eq!(u.len, n);
                q.release(u.id);
            }
            assert_eq!(q.pop_used(), Ok(None));
            assert_eq!(q.free_count(), 4);
        }
    }

    #[test]
    fn device_errors_are_caught() {
        // Each case on a fresh queue with two buffers in flight: the driver gives up on a
        // device after its first error.
        let cases: [(&dyn Fn(&mut Device), UsedError); 4] = [
            (&|d| d.give_used(4, 0), UsedError::BadId(4)),
            (&|d| d.give_used(u32::MAX, 0), UsedError::BadId(u32::MAX)),
            (&|d| d.give_used(3, 0), UsedError::NotInFlight(3)),
            (
                &|d| d.w16(d.layout.used + 2, 3),
                UsedError::Overrun {
                    used_idx: 3,
                    last_used: 0,
                },
            ),
        ];
        for (device_does, error) in cases {
            let mut mem = Memory([0; 8192]);
            let (mut q, mut d) = setup(&mut mem, 4);
            for _ in 0..2 {
                let id = q.alloc().unwrap();
                q.post(id, 0, 0, 0);
            }
            q.publish();
            device_does(&mut d);
            assert_eq!(q.pop_used(), Err(error));
        }
        // The same id returned twice.
        let mut mem = Memory([0; 8192]);
        let (mut q, mut d) = setup(&mut mem, 4);
        for _ in 0..2 {
            let id = q.alloc().unwrap();
            q.post(id, 0, 0, 0);
        }
        q.publish();
        d.give_used(0, 7);
        assert_eq!(q.pop_used(), Ok(Some(Used { id: 0, len: 7 })));
        d.give_used(0, 7);
        assert_eq!(q.pop_used(), Err(UsedError::NotInFlight(0)));
    }

    #[test]
    fn notification_is_batched_and_suppressible() {
        let mut mem = Memory([0; 8192]);
        let (mut q, d) = setup(&mut mem, 4);
        assert!(!q.take_notify(), "nothing posted");
        for _ in 0..3 {
            let id = q.alloc().unwrap();
            q.post(id, 0, 0, 0);
        }
        q.publish();
        assert_eq!(q.unnotified(), 3);
        assert!(q.take_notify());
        assert!(!q.take_notify(), "already notified");
        let id = q.alloc().unwrap();
        q.post(id, 0, 0, 0);
        q.publish();
        d.w16(d.layout.used, USED_F_NO_NOTIFY);
        assert!(!q.take_notify(), "device suppressed notifications");
        assert_eq!(q.unnotified(), 0);
    }

    #[test]
    fn avail_flags_are_written() {
        let mut mem = Memory([0; 8192]);
        let (mut q, d) = setup(&mut mem, 4);
        q.set_avail_flags(AVAIL_F_NO_INTERRUPT);
        assert_eq!(d.r16(d.layout.avail), AVAIL_F_NO_INTERRUPT);
    }
}
