// SPDX-License-Identifier: MIT OR Apache-2.0
//! Memory for device DMA: physically contiguous, zeroed, identity mapped (so the CPU address is
//! the bus address), below 4 GiB for devices with 32-bit DMA, freed on drop. The kernel maps
//! RAM write-back; x86 DMA is cache coherent, so no flushing is needed.

use crate::mm::{OwnedFrames, region::FRAME_SIZE};

/// A DMA buffer.
pub struct DmaBuffer {
    frames: OwnedFrames,
}

impl DmaBuffer {
    /// `bytes` of zeroed DMA memory (rounded up to whole 4 KiB frames), or `None` if memory is
    /// short.
    pub fn new(bytes: usize) -> Option<Self> {
        let count = (bytes as u64).div_ceil(FRAME_SIZE);
        Some(Self {
            frames: OwnedFrames::filled_below(count, 1 << 32, 0)?,
        })
    }

    /// Bus (= physical) address of the first byte.
    pub fn phys(&self) -> u64 {
        self.frames.phys()
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Always false: a buffer has at least one frame.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bytes. The device may write them concurrently (after a descriptor hands them over),
    /// so drivers read device-written data with volatile or after the ownership handshake.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.frames.as_mut_slice()
    }

    /// Pointer to byte `offset` (for volatile descriptor access).
    pub fn ptr(&self, offset: usize) -> *mut u8 {
        self.frames.ptr(offset)
    }
}
