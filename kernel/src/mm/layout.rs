// SPDX-License-Identifier: MIT OR Apache-2.0
//! The kernel image's sections, from symbols defined by boot/linker.ld.

use super::region::Region;

unsafe extern "C" {
    static __kernel_start: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __bss_end: u8;
    static __kernel_end: u8;
    static boot_stack_guard: u8;
    static boot_stack_bottom: u8;
    static boot_stack_top: u8;
}

/// Where the kernel image's sections are (physical = virtual: the kernel is identity mapped).
#[derive(Debug, Clone, Copy)]
pub struct KernelLayout {
    /// The whole image, text through bss.
    pub image: Region,
    /// Code: read + execute.
    pub text: Region,
    /// Constants: read only.
    pub rodata: Region,
    /// Data and bss: read + write.
    pub data: Region,
    /// The bootstrap processor's stack (in bss, boot/entry.S).
    pub stack: Region,
    /// The page below it, left unmapped: an overflow faults there.
    pub stack_guard: Region,
}

/// The layout of the running kernel.
pub fn kernel() -> KernelLayout {
    let a = |s: *const u8| s as u64;
    KernelLayout {
        image: Region::new(a(&raw const __kernel_start), a(&raw const __kernel_end)),
        text: Region::new(a(&raw const __text_start), a(&raw const __text_end)),
        rodata: Region::new(a(&raw const __rodata_start), a(&raw const __rodata_end)),
        data: Region::new(a(&raw const __data_start), a(&raw const __bss_end)),
        stack: Region::new(
            a(&raw const boot_stack_bottom),
            a(&raw const boot_stack_top),
        ),
        stack_guard: Region::new(
            a(&raw const boot_stack_guard),
            a(&raw const boot_stack_bottom),
        ),
    }
}
