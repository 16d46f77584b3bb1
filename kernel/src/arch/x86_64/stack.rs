// SPDX-License-Identifier: MIT OR Apache-2.0
//! The bootstrap processor's kernel stack (boot/entry.S): how much of it was ever used; and
//! whether a fault address is the guard page of that stack or of an application processor's.
//!
//! The stack is painted with a pattern at boot; the deepest word no longer holding it is the
//! high-water mark. The page below the stack is left unmapped ([`crate::mm::kmap`]): running
//! off the stack faults there, and since the CPU cannot push the page-fault frame either, the
//! fault becomes a double fault, which has its own stack (IST, [`super::gdt`]) and reports the
//! overflow ([`super::exception`]).

use crate::mm::layout;

/// What unused stack words hold.
const PAINT: u64 = 0x5AC5_5AC5_5AC5_5AC5;
/// Bytes below the painter's own stack pointer left alone: its frame and anything an
/// interrupt pushes meanwhile.
const PAINT_MARGIN: u64 = 1024;

/// Paints the unused part of the bootstrap processor's stack. Called once, early, on it.
pub fn paint() {
    let stack = layout::kernel().stack;
    let below = super::instr::stack_pointer().saturating_sub(PAINT_MARGIN);
    if !stack.contains(below) {
        return;
    }
    let mut word = stack.start;
    while word + 8 <= below {
        // SAFETY: `[stack.start, below)` is the unused part of the stack this CPU runs on (the
        // stack grows down and `below` is under the stack pointer with a margin; the kernel
        // has no red zone), identity mapped and written by nothing else.
        unsafe { (word as *mut u64).write_volatile(PAINT) };
        word += 8;
    }
}

/// Bytes of the bootstrap processor's stack ever used (an upper bound if the pattern happened
/// to be written as data).
pub fn high_water() -> u64 {
    let stack = layout::kernel().stack;
    let mut word = stack.start;
    // SAFETY: every word of the stack region is mapped and readable; reading a stack word
    // another frame owns has no effect on it.
    while word < stack.end && unsafe { (word as *const u64).read_volatile() } == PAINT {
        word += 8;
    }
    stack.end - word
}

/// The bootstrap processor's stack size in bytes.
pub fn size() -> u64 {
    layout::kernel().stack.len()
}

/// If `addr` (a fault address) lies in the guard page below a CPU's stack, the size of that
/// stack in bytes: the bootstrap processor's, or an application processor's (`super::smp`).
pub fn overflowed(addr: u64) -> Option<u64> {
    if layout::kernel().stack_guard.contains(addr) {
        return Some(size());
    }
    (0..super::percpu::MAX_CPUS)
        .filter_map(super::percpu::cpu)
        .map(|c| c.stack_guard.load(core::sync::atomic::Ordering::Acquire))
        .any(|guard| guard != 0 && addr.wrapping_sub(guard) < 4096)
        .then_some(super::smp::AP_STACK_BYTES)
}
