// SPDX-License-Identifier: MIT OR Apache-2.0
//! Memory for device DMA: physically contiguous, zeroed, identity mapped (so the CPU address is
//! the bus address), below 4 GiB for devices with 32-bit DMA, freed on drop. The kernel maps
//! RAM write-back; x86 DMA is cache coherent, so no flushing is needed.

use crate::mm::{self, region::FRAME_SIZE};

/// A DMA buffer.
pub struct DmaBuffer {
    phys: u64,
    frames: u64,
}

impl DmaBuffer {
    /// `bytes` of zeroed DMA memory (rounded up to whole 4 KiB frames), or `None` if memory is
    /// short.
    pub fn new(bytes: usize) -> Option<Self> {
        let frames = (bytes as u64).div_ceil(FRAME_SIZE).max(1);
        let phys = mm::alloc_frames_below(frames, 1 << 32)?;
        // SAFETY: frames just allocated for this buffer, identity mapped.
        unsafe { core::ptr::write_bytes(phys as *mut u8, 0, (frames * FRAME_SIZE) as usize) };
        Some(Self { phys, frames })
    }

    /// Bus (= physical) address of the first byte.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        (self.frames * FRAME_SIZE) as usize
    }

    /// Always false: a buffer has at least one frame.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bytes. The device may write them concurrently (after a descriptor hands them over),
    /// so drivers read device-written data with volatile or after the ownership handshake.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the frames belong to this buffer and are identity mapped; `&mut self` keeps
        // CPU-side access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.phys as *mut u8, self.len()) }
    }

    /// Pointer to byte `offset` (for volatile descriptor access).
    pub fn ptr(&self, offset: usize) -> *mut u8 {
        assert!(offset < self.len(), "DMA offset {offset} out of range");
        (self.phys as usize + offset) as *mut u8
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        if let Err(e) = mm::free_frames(self.phys, self.frames) {
            log::error!("DMA buffer at {:#x} could not be freed: {e:?}", self.phys);
        }
    }
}
