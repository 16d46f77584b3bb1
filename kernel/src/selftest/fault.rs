// SPDX-License-Identifier: MIT OR Apache-2.0
//! Deliberate failures, proving they are caught and reported.
//!
//! A deliberate fault: writing to the kernel's read-only text must raise a page fault that the
//! exception handler reports (vector, error code, RIP, CR2, registers) before halting the CPU.

use crate::kprintln;

/// Writes to kernel text. Does not return: the page-fault handler halts this CPU (if it does
/// return, the caller reports the test failed).
pub fn write_to_text() {
    let target = write_to_text as *const () as u64;
    kprintln!("selftest fault: writing to kernel text at {target:#x}; expecting a page fault");
    // SAFETY: deliberately unsound in intent — this write must fault (text is mapped read-only
    // and CR0.WP is set), so no memory is modified. If it did not fault the caller reports
    // failure, this having overwritten one byte of this very function's first instruction with
    // itself.
    unsafe {
        let p = target as *mut u8;
        p.write_volatile(p.read_volatile());
    }
}

/// Panics, proving the panic handler reports location and message and ends the machine as a
/// failure.
pub fn panic_on_purpose() -> ! {
    kprintln!("selftest panic: panicking on purpose");
    panic!("deliberate panic from the panic self test")
}
