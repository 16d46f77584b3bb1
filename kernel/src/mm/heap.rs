// SPDX-License-Identifier: MIT OR Apache-2.0
//! The kernel heap (`alloc`): a linked-list allocator over one physically contiguous,
//! identity-mapped run of frames.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Hands `[start, start + size)` to the heap.
///
/// # Safety
/// The range must be mapped read-write, unused by anything else, and never freed; call once.
pub unsafe fn init(start: u64, size: u64) {
    // SAFETY: forwarded from the caller.
    unsafe { HEAP.lock().init(start as *mut u8, size as usize) };
}

/// (used, free) heap bytes.
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.free())
}
