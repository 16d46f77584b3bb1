// SPDX-License-Identifier: MIT OR Apache-2.0
//! Bringing memory management up from the boot memory map.

use super::frame::{FrameAllocator, FreeError};
use super::region::{FRAME_SIZE, Region, subtract};
use super::{heap, layout};
use crate::bootinfo::{BootInfo, MemKind};

static FRAMES: spin::Mutex<Option<FrameAllocator<'static>>> = spin::Mutex::new(None);

/// Low memory kept away from the allocator: real-mode IVT, BDA, EBDA, the AP trampoline page and
/// the BIOS area all live below 1 MiB.
const LOW_MEMORY: Region = Region::new(0, 0x10_0000);

/// Figures reported at boot.
#[derive(Debug, Clone, Copy)]
pub struct MemoryStats {
    /// Bytes of usable RAM in the memory map.
    pub usable: u64,
    /// Frames free after setup.
    pub free_frames: u64,
    /// Heap placement.
    pub heap: Region,
    /// Bitmap placement.
    pub bitmap: Region,
}

/// Why memory setup failed.
#[derive(Debug, Clone, Copy)]
pub enum MemoryError {
    /// No usable range could hold the allocator's bitmap.
    NoRoomForBitmap,
    /// Not enough contiguous memory for the heap.
    NoRoomForHeap,
}

/// Heap size: an eighth of usable RAM, between 4 and 64 MiB.
fn heap_size(usable: u64) -> u64 {
    (usable / 8).clamp(4 << 20, 64 << 20) & !(FRAME_SIZE - 1)
}

/// Sets up the frame allocator and the heap from the boot memory map.
pub fn init(boot: &BootInfo) -> Result<MemoryStats, MemoryError> {
    let kernel = layout::kernel().image;
    let mut excluded = [LOW_MEMORY; 2 + crate::bootinfo::MAX_MODULES];
    excluded[1] = kernel;
    for (slot, m) in excluded[2..].iter_mut().zip(boot.modules()) {
        *slot = m.region;
    }
    let available = || boot.areas().iter().filter(|a| a.kind == MemKind::Available);
    let frames = available().map(|a| a.region.end).max().unwrap_or(0) / FRAME_SIZE;
    let bitmap_bytes = (FrameAllocator::words_for(frames) * 8) as u64;

    // The bitmap goes into the first free piece below 4 GiB that can hold it.
    let mut bitmap = None;
    for area in available() {
        subtract(area.region, &excluded, &mut |piece| {
            if bitmap.is_none()
                && piece.len() >= bitmap_bytes
                && piece.start + bitmap_bytes <= 1 << 32
            {
                bitmap = Some(Region::new(piece.start, piece.start + bitmap_bytes));
            }
        });
    }
    let bitmap = bitmap.ok_or(MemoryError::NoRoomForBitmap)?;
    // SAFETY: the range is free RAM (from the memory map, outside the kernel, modules and low
    // memory), identity mapped by the boot tables, and from now on owned by the allocator alone.
    let storage = unsafe {
        core::slice::from_raw_parts_mut(bitmap.start as *mut u64, bitmap_bytes as usize / 8)
    };
    let mut alloc = FrameAllocator::new(storage, frames);
    let mut usable = 0;
    for area in available() {
        usable += area.region.len();
        subtract(area.region, &excluded, &mut |piece| {
            alloc.add_free(piece);
        });
    }
    alloc.reserve(bitmap);

    let size = heap_size(usable);
    let heap_start = alloc
        .alloc_contiguous(size / FRAME_SIZE, FRAME_SIZE, 1 << 32)
        .ok_or(MemoryError::NoRoomForHeap)?;
    // SAFETY: the frames were just taken from the allocator for the heap alone and are identity
    // mapped (boot tables now, kernel tables later: all RAM is mapped read-write).
    unsafe { heap::init(heap_start, size) };
    let free_frames = alloc.free_frames();
    *FRAMES.lock() = Some(alloc);
    Ok(MemoryStats {
        usable,
        free_frames,
        heap: Region::new(heap_start, heap_start + size),
        bitmap,
    })
}

/// Allocates `count` contiguous frames below `limit`.
pub fn alloc_frames_below(count: u64, limit: u64) -> Option<u64> {
    FRAMES
        .lock()
        .as_mut()?
        .alloc_contiguous(count, FRAME_SIZE, limit)
}

/// Allocates one frame anywhere in RAM (the allocator's next-fit search: a word of 64 frames
/// at a time from where the last one was found).
pub fn alloc_frame() -> Option<u64> {
    FRAMES.lock().as_mut()?.alloc()
}

/// Allocates `count` contiguous frames aligned to `align` bytes, anywhere in RAM.
pub fn alloc_frames_aligned(count: u64, align: u64) -> Option<u64> {
    FRAMES
        .lock()
        .as_mut()?
        .alloc_contiguous(count, align, u64::MAX)
}

/// Returns `count` frames at `addr`.
pub fn free_frames(addr: u64, count: u64) -> Result<(), FreeError> {
    match FRAMES.lock().as_mut() {
        Some(a) => a.free_contiguous(addr, count),
        None => Err(FreeError::OutOfRange(addr)),
    }
}

/// Free frames left.
pub fn frames_free() -> u64 {
    FRAMES
        .lock()
        .as_ref()
        .map_or(0, FrameAllocator::free_frames)
}

/// Whether the frame at `addr` is allocated or reserved.
pub fn is_allocated(addr: u64) -> bool {
    FRAMES.lock().as_ref().is_none_or(|a| a.is_allocated(addr))
}
