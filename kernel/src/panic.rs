// SPDX-License-Identifier: MIT OR Apache-2.0
//! The panic handler: report where and why, then end the machine as a failure so a test
//! harness sees it (QEMU exit status 35; `PANIC` on the serial console for Bochs).

use core::panic::PanicInfo;

use crate::arch::x86_64::machine::{self, ExitStatus};
use crate::arch::x86_64::{instr, percpu};
use crate::console;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    instr::cli();
    let cpu = percpu::current_index();
    match info.location() {
        Some(at) => console::emergency(format_args!(
            "PANIC at {}:{}: {} (cpu {cpu})\n",
            at.file(),
            at.line(),
            info.message()
        )),
        None => console::emergency(format_args!("PANIC: {} (cpu {cpu})\n", info.message())),
    }
    machine::exit(ExitStatus::Failure)
}
