// SPDX-License-Identifier: MIT OR Apache-2.0
//! castor-mbtest: a minimal, unmodified-style Multiboot 1 guest kernel.
//!
//! Castor's integration tests boot it as a guest (through Castor's Multiboot loader,
//! kernel/src/vmm/loader/) to check what a guest kernel sees: the entry magic, the command
//! line, the memory information and the memory map. It boots the same way directly under
//! `qemu-system-x86_64 -kernel castor-mbtest -append "status=7" -device
//! isa-debug-exit,iobase=0xf4,iosize=4`, which gives the reference behaviour.
//!
//! All of it is 32-bit assembly (src/mbtest.S): it runs as Multiboot hands over, in protected
//! mode with paging off, reports on COM1 and exits through the debug-exit port 0xF4 with the
//! `status=<decimal>` from its command line. See mbtest.S for the exact output.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
core::arch::global_asm!(include_str!("mbtest.S"), options(att_syntax));

/// No Rust code runs in the guest; a no_std binary still needs a panic handler.
#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Host builds (e.g. `cargo build --workspace`) get a stub that explains what this is.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("castor-mbtest is a guest kernel: build it with --target x86_64-unknown-none");
    std::process::exit(2);
}
