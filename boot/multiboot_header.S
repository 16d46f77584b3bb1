/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Boot headers. The same image boots two ways:
 *  - Multiboot2 (GRUB on bare metal and in Bochs): GRUB loads the ELF segments.
 *  - Multiboot1 with the a.out kludge (qemu -kernel): QEMU rejects ELF64 images, so the header
 *    carries explicit load addresses (flag bit 16) and QEMU loads the file as a flat image.
 * References: Multiboot Specification 0.6.96 section 3.1; Multiboot2 Specification 1.0 section 3.1.
 */
    .section .multiboot_header, "a"

    .set MB1_MAGIC,    0x1BADB002
    .set MB1_FLAGS,    (1 << 0) | (1 << 1) | (1 << 16)   /* page-align modules, memory map, address fields */
    .set MB2_MAGIC,    0xE85250D6
    .set MB2_ARCH_I386, 0

    .balign 8
mb1_header:
    .long MB1_MAGIC
    .long MB1_FLAGS
    .long -(MB1_MAGIC + MB1_FLAGS)
    .long mb1_header          /* header_addr */
    .long __kernel_start      /* load_addr */
    .long __load_end          /* load_end_addr */
    .long __bss_end           /* bss_end_addr */
    .long _start              /* entry_addr */

    .balign 8
mb2_header:
    .long MB2_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header
    .long -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))

    /* Information request tag: command line, modules, basic meminfo, memory map, ACPI RSDPs. */
    .balign 8
mb2_info_request:
    .short 1, 1               /* optional: boot even if a tag cannot be supplied */
    .long mb2_info_request_end - mb2_info_request
    .long 1, 3, 4, 6, 14, 15
mb2_info_request_end:

    /* Module alignment tag: modules page aligned. */
    .balign 8
    .short 6, 0
    .long 8

    /* End tag. */
    .balign 8
    .short 0, 0
    .long 8
mb2_header_end:
