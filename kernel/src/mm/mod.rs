// SPDX-License-Identifier: MIT OR Apache-2.0
//! Physical memory: frame allocator, kernel heap and the kernel's page tables.

pub mod frame;
pub mod pagetable;
pub mod region;

#[cfg(target_os = "none")]
pub mod heap;
#[cfg(target_os = "none")]
pub mod kmap;
#[cfg(target_os = "none")]
pub mod layout;
#[cfg(target_os = "none")]
mod owned;
#[cfg(target_os = "none")]
mod setup;

#[cfg(target_os = "none")]
pub use owned::OwnedFrames;

#[cfg(target_os = "none")]
pub use setup::{
    MemoryStats, alloc_frames_aligned, alloc_frames_below, frames_free, free_frames, init,
    is_allocated,
};
