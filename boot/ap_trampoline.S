/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Application-processor start-up trampoline. The bootstrap processor copies the bytes between
 * ap_trampoline_start and ap_trampoline_end to physical AP_TRAMPOLINE_PHYS (0x8000, below 1 MiB
 * and 4 KiB aligned as the SIPI vector requires), fills in the parameter block at its end, and
 * sends INIT-SIPI-SIPI (Intel SDM Vol. 3A, 9.4.4 "MP Initialization Example"). The AP starts in
 * real mode at CS:IP = 0x0800:0000 and goes straight to long mode (SDM Vol. 3A, 10.8.5): PAE,
 * the boot page tables (which identity-map this page), EFER.LME/NXE, then PE and PG together,
 * and a far jump into a 64-bit code segment. It then jumps to the kernel's 64-bit AP entry with
 * its stack and CPU index; the kernel loads its final W^X page tables there.
 *
 * The code is position dependent on AP_TRAMPOLINE_PHYS only: every absolute address is computed
 * as AP_TRAMPOLINE_PHYS + (label - ap_trampoline_start). It is data in the kernel image (never
 * executed in place), so it lives in .rodata.
 */
    .set AP_TRAMPOLINE_PHYS, 0x8000
    .set EFER_MSR, 0xC0000080

    .section .rodata.ap_trampoline, "a"
    .balign 16
    .global ap_trampoline_start
ap_trampoline_start:
    .code16
    cli
    cld
    xor %ax, %ax
    mov %ax, %ds
    lgdtl AP_TRAMPOLINE_PHYS + (ap_gdt_ptr - ap_trampoline_start)

    mov %cr4, %eax
    or $(1 << 5), %eax                          /* CR4.PAE */
    mov %eax, %cr4
    mov AP_TRAMPOLINE_PHYS + (ap_param_boot_cr3 - ap_trampoline_start), %eax
    mov %eax, %cr3
    mov $EFER_MSR, %ecx
    rdmsr
    or AP_TRAMPOLINE_PHYS + (ap_param_efer_bits - ap_trampoline_start), %eax
    wrmsr
    mov %cr0, %eax
    and $~((1 << 29) | (1 << 30)), %eax         /* clear CD, NW */
    or $((1 << 0) | (1 << 5) | (1 << 16) | (1 << 31)), %eax  /* PE, NE, WP, PG */
    mov %eax, %cr0
    ljmpl $0x08, $(AP_TRAMPOLINE_PHYS + (ap_long_mode - ap_trampoline_start))

    .code64
ap_long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov AP_TRAMPOLINE_PHYS + (ap_param_stack - ap_trampoline_start), %rsp
    mov AP_TRAMPOLINE_PHYS + (ap_param_cpu_index - ap_trampoline_start), %rdi
    mov AP_TRAMPOLINE_PHYS + (ap_param_entry - ap_trampoline_start), %rax
    xor %ebp, %ebp
    jmp *%rax

    .balign 16
ap_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF                    /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF                    /* 0x10: data */
ap_gdt_end:
ap_gdt_ptr:
    .short ap_gdt_end - ap_gdt - 1
    .long AP_TRAMPOLINE_PHYS + (ap_gdt - ap_trampoline_start)

    /* Parameter block, written by the BSP before each SIPI (see kernel/src/arch/x86_64/smp.rs). */
    .balign 8
    .global ap_trampoline_params
ap_trampoline_params:
ap_param_boot_cr3:   .quad 0
ap_param_efer_bits:  .quad 0
ap_param_stack:      .quad 0
ap_param_entry:      .quad 0
ap_param_cpu_index:  .quad 0
    .global ap_trampoline_end
ap_trampoline_end:
