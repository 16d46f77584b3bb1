// SPDX-License-Identifier: MIT OR Apache-2.0
//! Deliberate failures, proving they are caught and reported.
//!
//! A deliberate fault: writing to the kernel's read-only text must raise a page fault that the
//! exception handler reports (vector, error code, RIP, CR2, registers) before halting the CPU.
//! A deliberate stack overflow: it must end in the guard page below the stack, reported as such.

use alloc::string::String;

use super::Outcome;
use crate::arch::x86_64::{smp, time, worker};
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

/// Runs [`overflow_stack`] on an idle application processor: the guard page below its stack
/// must stop it as the bootstrap processor's does (the double fault reports the overflow and
/// halts that CPU). Waits up to [`AP_OVERFLOW_WAIT_NS`] for the report; returns only if none
/// ended the recursion by then.
pub fn overflow_ap_stack() -> Outcome {
    let Some(cpu) = worker::idle_ap() else {
        return Outcome::Failed(String::from("no application processor to run it on"));
    };
    kprintln!(
        "selftest apstack: recursing on cpu {cpu} until its {} KiB stack runs out; expecting a \
         stack overflow report",
        smp::AP_STACK_BYTES / 1024
    );
    let job = |_| {
        let _ = core::hint::black_box(overflow_stack(1));
    };
    if let Err(e) = worker::start(cpu, job, 0) {
        return Outcome::Failed(alloc::format!("cpu {cpu} took no job: {e:?}"));
    }
    let deadline = time::now_ns() + AP_OVERFLOW_WAIT_NS;
    while time::now_ns() < deadline && worker::is_running(cpu) {
        core::hint::spin_loop();
    }
    Outcome::Failed(match worker::is_running(cpu) {
        true => alloc::format!("cpu {cpu} ran on: nothing stopped its recursion"),
        false => alloc::format!("the recursion on cpu {cpu} returned"),
    })
}

/// How long [`overflow_ap_stack`] waits for the overflow to end the application processor.
const AP_OVERFLOW_WAIT_NS: u64 = 10_000_000_000;

/// Recurses with a 1 KiB frame until the stack runs out: the guard page below it faults, the
/// fault cannot be delivered on the exhausted stack, and the double fault (on its own stack)
/// reports the overflow and halts this CPU. Returns only if something stopped the recursion.
#[allow(unconditional_recursion, reason = "running off the stack is the point")]
pub fn overflow_stack(depth: u64) -> u64 {
    if depth == 0 {
        kprintln!(
            "selftest stack: recursing until the {} KiB stack runs out; expecting a stack \
             overflow report",
            crate::arch::x86_64::stack::size() / 1024
        );
    }
    let mut frame = [depth; 128];
    core::hint::black_box(&mut frame);
    // The frame is used after the call: the recursion is neither a loop nor a tail call.
    let deeper = overflow_stack(core::hint::black_box(depth + 1));
    deeper.wrapping_add(frame[127])
}
