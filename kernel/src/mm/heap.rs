// SPDX-License-Identifier: MIT OR Apache-2.0
//! The kernel heap (`alloc`): a linked-list allocator over one physically contiguous,
//! identity-mapped run of frames, plus single frames for page-sized blocks.
//!
//! Blocks of exactly one page (4 KiB, alignment up to 4 KiB) come straight from the frame
//! allocator: a backup stages whole epochs of guest pages before applying them (a Linux guest's
//! boot dirties tens of MiB in one epoch), which must be bounded by the host's free memory,
//! not by the heap's fixed size. Such a block is freed to the frame allocator again; a block
//! inside the heap's range goes back to the heap, so a page-sized block the frame allocator
//! could not give (no free frame) falls back to the heap.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use linked_list_allocator::LockedHeap;

use super::region::FRAME_SIZE;

static HEAP: LockedHeap = LockedHeap::empty();

/// The heap's range, `[start, end)`, set once by [`init`].
static RANGE: spin::Once<(u64, u64)> = spin::Once::new();

/// The kernel's allocator: pages from the frame allocator, everything else from [`HEAP`].
struct KernelAllocator;

#[global_allocator]
static ALLOCATOR: KernelAllocator = KernelAllocator;

/// Whether `layout` is served by a whole frame.
fn is_page(layout: Layout) -> bool {
    layout.size() as u64 == FRAME_SIZE && layout.align() as u64 <= FRAME_SIZE
}

/// Whether `ptr` lies in the heap's range.
fn in_heap(ptr: *mut u8) -> bool {
    RANGE
        .get()
        .is_some_and(|&(start, end)| (start..end).contains(&(ptr as u64)))
}

// SAFETY: blocks come from the frame allocator (identity-mapped, each frame handed out once
// until freed) or from the linked-list heap, and `dealloc` returns each to where it came from
// by its address.
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_page(layout)
            && let Some(frame) = super::setup::alloc_frame()
        {
            return frame as *mut u8;
        }
        HEAP.lock()
            .allocate_first_fit(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_page(layout) && !in_heap(ptr) {
            // A frame from `alloc`: freeing a frame the allocator handed out cannot fail.
            let _ = super::setup::free_frames(ptr as u64, 1);
            return;
        }
        if let Some(block) = NonNull::new(ptr) {
            // SAFETY: `ptr` was returned by the heap for this layout (it is not a frame).
            unsafe { HEAP.lock().deallocate(block, layout) };
        }
    }
}

/// Hands `[start, start + size)` to the heap.
///
/// # Safety
/// The range must be mapped read-write, unused by anything else, and never freed; call once.
pub unsafe fn init(start: u64, size: u64) {
    RANGE.call_once(|| (start, start + size));
    // SAFETY: forwarded from the caller.
    unsafe { HEAP.lock().init(start as *mut u8, size as usize) };
}

/// (used, free) heap bytes.
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.free())
}
