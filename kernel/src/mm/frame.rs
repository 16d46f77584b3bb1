// SPDX-License-Identifier: MIT OR Apache-2.0
//! Physical frame allocator: one bit per 4 KiB frame (1 = in use), over physical addresses
//! `0..frames * 4096`. Frames start out in use; the boot code frees the allocatable ranges
//! computed by [`super::region::subtract`]. Supports single frames, aligned contiguous runs (for
//! the heap, stacks and later guest RAM and DMA rings) and freeing, with double-free detection.

use super::region::{FRAME_SIZE, Region};

/// Why a free was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    /// The address is not frame aligned or lies beyond the managed range.
    OutOfRange(u64),
    /// The frame was already free.
    DoubleFree(u64),
}

/// Bitmap frame allocator over caller-provided storage.
pub struct FrameAllocator<'a> {
    bits: &'a mut [u64],
    frames: u64,
    free: u64,
    /// Frame index where the next single-frame search starts.
    hint: u64,
}

impl<'a> FrameAllocator<'a> {
    /// Words of storage needed to manage `frames` frames.
    pub const fn words_for(frames: u64) -> usize {
        frames.div_ceil(64) as usize
    }

    /// An allocator for `frames` frames (limited by the storage), all initially in use.
    pub fn new(storage: &'a mut [u64], frames: u64) -> Self {
        storage.fill(u64::MAX);
        let frames = frames.min(storage.len() as u64 * 64);
        Self {
            bits: storage,
            frames,
            free: 0,
            hint: 0,
        }
    }

    fn is_used(&self, frame: u64) -> bool {
        self.bits[(frame / 64) as usize] & (1 << (frame % 64)) != 0
    }

    fn set(&mut self, frame: u64, used: bool) {
        let word = &mut self.bits[(frame / 64) as usize];
        if used {
            *word |= 1 << (frame % 64);
        } else {
            *word &= !(1 << (frame % 64));
        }
    }

    /// Marks every whole frame inside `region` free (frames beyond the managed range are
    /// ignored). Returns how many frames became free.
    pub fn add_free(&mut self, region: Region) -> u64 {
        let r = region.frames_inside();
        let (first, last) = (r.start / FRAME_SIZE, (r.end / FRAME_SIZE).min(self.frames));
        let mut added = 0;
        for frame in first..last {
            if self.is_used(frame) {
                self.set(frame, false);
                added += 1;
            }
        }
        self.free += added;
        added
    }

    /// Marks every frame touching `region` used (e.g. the allocator's own storage).
    pub fn reserve(&mut self, region: Region) {
        let r = region.frames_covering();
        let (first, last) = (r.start / FRAME_SIZE, (r.end / FRAME_SIZE).min(self.frames));
        for frame in first..last {
            if !self.is_used(frame) {
                self.set(frame, true);
                self.free -= 1;
            }
        }
    }

    /// Free frames left.
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    /// Frames managed (the highest physical address covered, divided by 4 KiB).
    pub fn managed_frames(&self) -> u64 {
        self.frames
    }

    /// Whether the frame at `addr` is currently allocated or reserved.
    pub fn is_allocated(&self, addr: u64) -> bool {
        let frame = addr / FRAME_SIZE;
        frame >= self.frames || self.is_used(frame)
    }

    /// Allocates one frame, returning its physical address.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free == 0 {
            return None;
        }
        let words = self.bits.len() as u64;
        let start_word = self.hint / 64;
        for i in 0..words {
            let w = (start_word + i) % words;
            let word = self.bits[w as usize];
            if word != u64::MAX {
                let frame = w * 64 + u64::from((!word).trailing_zeros());
                if frame < self.frames {
                    self.set(frame, true);
                    self.free -= 1;
                    self.hint = frame + 1;
                    return Some(frame * FRAME_SIZE);
                }
            }
        }
        None
    }

    /// Allocates `count` physically contiguous frames whose first address is a multiple of
    /// `align` bytes (a power of two, at least 4 KiB) and lies below `limit`.
    pub fn alloc_contiguous(&mut self, count: u64, align: u64, limit: u64) -> Option<u64> {
        if count == 0 || count > self.free || !align.is_power_of_two() || align < FRAME_SIZE {
            return None;
        }
        let step = align / FRAME_SIZE;
        let last = (limit / FRAME_SIZE).min(self.frames);
        let mut first = 0;
        while first + count <= last {
            match (first..first + count).find(|&f| self.is_used(f)) {
                None => {
                    for f in first..first + count {
                        self.set(f, true);
                    }
                    self.free -= count;
                    return Some(first * FRAME_SIZE);
                }
                // Skip past the used frame, rounded up to the alignment.
                Some(used) => first = (used + 1).div_ceil(step) * step,
            }
        }
        None
    }

    /// Returns `count` frames starting at `addr` to the pool.
    pub fn free_contiguous(&mut self, addr: u64, count: u64) -> Result<(), FreeError> {
        if !addr.is_multiple_of(FRAME_SIZE) || addr / FRAME_SIZE + count > self.frames {
            return Err(FreeError::OutOfRange(addr));
        }
        let first = addr / FRAME_SIZE;
        if let Some(f) = (first..first + count).find(|&f| !self.is_used(f)) {
            return Err(FreeError::DoubleFree(f * FRAME_SIZE));
        }
        for f in first..first + count {
            self.set(f, false);
        }
        self.free += count;
        Ok(())
    }

    /// Returns one frame to the pool.
    pub fn free(&mut self, addr: u64) -> Result<(), FreeError> {
        self.free_contiguous(addr, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::vec;

    fn allocator<'a>(storage: &'a mut [u64], frames: u64, free: &[Region]) -> FrameAllocator<'a> {
        let mut a = FrameAllocator::new(storage, frames);
        for r in free {
            a.add_free(*r);
        }
        a
    }

    #[test]
    fn hands_out_only_free_frames_each_once() {
        let mut storage = vec![0; FrameAllocator::words_for(1024)];
        let free = [
            Region::new(0x10_0000, 0x12_0000),
            Region::new(0x20_0000, 0x20_4000),
        ];
        let mut a = allocator(&mut storage, 1024, &free);
        assert_eq!(a.free_frames(), 32 + 4);
        let mut seen = HashSet::new();
        while let Some(f) = a.alloc() {
            assert_eq!(f % FRAME_SIZE, 0);
            assert!(
                free.iter().any(|r| r.contains(f)),
                "{f:#x} outside the free ranges"
            );
            assert!(seen.insert(f), "{f:#x} handed out twice");
        }
        assert_eq!(seen.len(), 36);
        assert_eq!(a.free_frames(), 0);
    }

    #[test]
    fn free_and_double_free() {
        let mut storage = vec![0; 1];
        let mut a = allocator(&mut storage, 64, &[Region::new(0, 64 * FRAME_SIZE)]);
        let f = a.alloc().unwrap();
        assert_eq!(a.free(f), Ok(()));
        assert_eq!(a.free(f), Err(FreeError::DoubleFree(f)));
        assert_eq!(a.free(123), Err(FreeError::OutOfRange(123)));
        assert_eq!(
            a.free(64 * FRAME_SIZE),
            Err(FreeError::OutOfRange(64 * FRAME_SIZE))
        );
        assert_eq!(a.free_frames(), 64);
    }

    #[test]
    fn contiguous_respects_alignment_holes_and_limit() {
        let mut storage = vec![0; FrameAllocator::words_for(2048)];
        let mut a = allocator(
            &mut storage,
            2048,
            &[Region::new(0x1000, 2048 * FRAME_SIZE)],
        );
        a.reserve(Region::new(0x20_0000, 0x20_1000)); // a hole at 2 MiB
        let big = a.alloc_contiguous(512, 0x20_0000, u64::MAX).unwrap();
        assert_eq!(big, 0x40_0000, "first 2 MiB-aligned run without the hole");
        let small = a.alloc_contiguous(3, FRAME_SIZE, u64::MAX).unwrap();
        assert_eq!(small, 0x1000);
        assert!(
            a.alloc_contiguous(600, FRAME_SIZE, 0x20_0000).is_none(),
            "limit honoured"
        );
        assert!(a.alloc_contiguous(4096, FRAME_SIZE, u64::MAX).is_none());
        assert!(
            a.alloc_contiguous(2, 3 * FRAME_SIZE, u64::MAX).is_none(),
            "bad alignment"
        );
        a.free_contiguous(big, 512).unwrap();
        assert_eq!(a.alloc_contiguous(512, 0x20_0000, u64::MAX), Some(big));
    }

    #[test]
    fn reserve_counts() {
        let mut storage = vec![0; 1];
        let mut a = allocator(&mut storage, 64, &[Region::new(0, 64 * FRAME_SIZE)]);
        a.reserve(Region::new(0x800, 0x2800));
        assert_eq!(a.free_frames(), 61);
        assert!(a.is_allocated(0x2000) && !a.is_allocated(0x3000));
    }
}
