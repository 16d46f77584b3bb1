// SPDX-License-Identifier: MIT OR Apache-2.0
//! The Castor kernel image: boot code from boot/ plus the kernel library.
#![no_std]
#![no_main]

core::arch::global_asm!(
    include_str!("../../boot/multiboot_header.S"),
    options(att_syntax)
);
core::arch::global_asm!(include_str!("../../boot/entry.S"), options(att_syntax));
core::arch::global_asm!(
    include_str!("../../boot/ap_trampoline.S"),
    options(att_syntax)
);

/// Called by boot/entry.S in 64-bit mode with the loader's EAX and EBX.
#[unsafe(no_mangle)]
extern "C" fn castor_boot(magic: u32, info: u32) -> ! {
    castor::kmain::bsp_main(magic, u64::from(info))
}
