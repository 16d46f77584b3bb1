// SPDX-License-Identifier: MIT OR Apache-2.0
//! Physical frames owned by one value: allocated contiguous and filled (zeroed, or every byte
//! set, as intercept bitmaps want), identity mapped, and returned to the frame allocator when
//! the value drops. Hardware structures (VMCS, VMCB, intercept bitmaps, the PML log) and DMA
//! buffers hold their memory this way instead of as raw addresses with hand-written `Drop`s.

use super::region::FRAME_SIZE;
use super::{alloc_frames_below, free_frames};

/// `count` physically contiguous 4 KiB frames, freed on drop.
#[derive(Debug)]
pub struct OwnedFrames {
    phys: u64,
    count: u64,
}

impl OwnedFrames {
    /// `count` (at least one) frames anywhere in RAM, every byte `byte`; `None` if memory is
    /// short.
    pub fn filled(count: u64, byte: u8) -> Option<Self> {
        Self::filled_below(count, u64::MAX, byte)
    }

    /// `count` (at least one) zeroed frames anywhere in RAM; `None` if memory is short.
    pub fn zeroed(count: u64) -> Option<Self> {
        Self::filled(count, 0)
    }

    /// `count` (at least one) frames ending at or below physical address `limit` (devices with
    /// 32-bit DMA pass 4 GiB), every byte `byte`; `None` if memory is short.
    pub fn filled_below(count: u64, limit: u64, byte: u8) -> Option<Self> {
        let phys = alloc_frames_below(count.max(1), limit)?;
        let frames = Self {
            phys,
            count: count.max(1),
        };
        // SAFETY: the frames were just allocated for this value (nothing else refers to them)
        // and RAM is identity mapped.
        unsafe { core::ptr::write_bytes(frames.ptr(0), byte, frames.len()) };
        Some(frames)
    }

    /// Physical (= identity-mapped virtual, = bus) address of the first frame.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// Number of frames.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        (self.count * FRAME_SIZE) as usize
    }

    /// Always false: there is at least one frame.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Pointer to byte `offset` (panics beyond the frames). Reads and writes through it are the
    /// caller's to make sound: hardware may access the same bytes while a guest or device runs.
    pub fn ptr(&self, offset: usize) -> *mut u8 {
        assert!(offset < self.len(), "offset {offset} beyond the frames");
        (self.phys as usize + offset) as *mut u8
    }

    /// The bytes. `&mut self` keeps CPU-side access exclusive; hardware that was handed the
    /// address may still write them (read such data volatile, or after a handshake).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the frames belong to this value and are identity mapped; `&mut self` makes
        // this the only Rust reference to them while the slice lives.
        unsafe { core::slice::from_raw_parts_mut(self.ptr(0), self.len()) }
    }
}

impl Drop for OwnedFrames {
    fn drop(&mut self) {
        if let Err(e) = free_frames(self.phys, self.count) {
            log::error!(
                "{} frame(s) at {:#x} could not be freed: {e:?}",
                self.count,
                self.phys
            );
        }
    }
}
