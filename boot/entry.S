/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * 32-bit protected-mode entry from a Multiboot loader, and the switch to 64-bit long mode.
 *
 * On entry (Multiboot 1 and 2 alike): EAX = loader magic, EBX = physical address of the boot
 * information, paging off, interrupts off, CS/DS flat 32-bit. Nothing else may be assumed: GRUB
 * hands over CR0 with CD/NW set, and there is no usable stack.
 *
 * Steps (Intel SDM Vol. 3A, 10.8.5 "Initializing IA-32e Mode"):
 *  1. check CPUID for long mode; without it print a message on COM1 and halt;
 *  2. build boot page tables identity-mapping the first 4 GiB with 2 MiB pages;
 *  3. CR4.PAE, CR3, EFER.LME (+ NXE when offered), CR0.PG; far jump into a 64-bit segment;
 *  4. call the Rust entry `castor_boot(magic, info)` on the boot stack.
 * The boot tables are replaced by the kernel's own W^X page tables early in Rust; application
 * processors reuse them briefly on their way to long mode (ap_trampoline.S).
 */
    .set CR0_PE, 1 << 0
    .set CR0_NE, 1 << 5
    .set CR0_WP, 1 << 16
    .set CR0_NW, 1 << 29
    .set CR0_CD, 1 << 30
    .set CR0_PG, 1 << 31
    .set CR4_PAE, 1 << 5
    .set EFER_MSR, 0xC0000080
    .set EFER_LME, 1 << 8
    .set EFER_NXE, 1 << 11
    .set PTE_P, 1 << 0
    .set PTE_W, 1 << 1
    .set PTE_PS, 1 << 7
    .set BOOT_STACK_SIZE, 256 * 1024

    .section .boot.text, "ax"
    .code32
    .global _start
_start:
    cli
    cld
    mov $boot_stack_top, %esp
    mov %eax, %edi                  /* keep the loader magic */
    mov %ebx, %esi                  /* keep the boot information pointer */

    /* Long mode available? CPUID 0x80000001 EDX bit 29 (SDM Vol. 2A, CPUID). */
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb no_long_mode
    mov $0x80000001, %eax
    cpuid
    test $(1 << 29), %edx
    jz no_long_mode
    mov %edx, %ebp                  /* bit 20: NX available */

    /* PML4[0] -> PDPT; PDPT[0..4] -> PD0..PD3; PDn[i] -> 2 MiB page (n*1GiB + i*2MiB). */
    mov $boot_pdpt, %eax
    or $(PTE_P | PTE_W), %eax
    mov %eax, boot_pml4
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $boot_pd, %eax
    or $(PTE_P | PTE_W), %eax
    mov %eax, boot_pdpt(, %ecx, 8)
    inc %ecx
    cmp $4, %ecx
    jb 1b
    xor %ecx, %ecx                  /* 2048 entries of 2 MiB = 4 GiB */
2:  mov %ecx, %eax
    shl $21, %eax
    or $(PTE_P | PTE_W | PTE_PS), %eax
    mov %eax, boot_pd(, %ecx, 8)
    movl $0, boot_pd + 4(, %ecx, 8)  /* high dword: below 4 GiB it is 0 */
    inc %ecx
    cmp $2048, %ecx
    jb 2b

    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $EFER_MSR, %ecx
    rdmsr
    or $EFER_LME, %eax
    test $(1 << 20), %ebp
    jz 3f
    or $EFER_NXE, %eax
3:  wrmsr
    mov %cr0, %eax
    and $~(CR0_CD | CR0_NW), %eax
    or $(CR0_PE | CR0_NE | CR0_WP | CR0_PG), %eax
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $long_mode_entry

no_long_mode:
    mov $no_long_mode_msg, %ebx
    mov $0x3F8, %dx
4:  movb (%ebx), %al
    test %al, %al
    jz 5f
    out %al, %dx
    inc %ebx
    jmp 4b
5:  hlt
    jmp 5b

    .code64
long_mode_entry:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    xor %ebp, %ebp
    /* castor_boot(magic: u32 in EDI, info: u32 in ESI): already in place, zero-extended. */
    mov %edi, %edi
    mov %esi, %esi
    call castor_boot
6:  cli
    hlt
    jmp 6b

    .section .rodata
no_long_mode_msg:
    .asciz "Castor: this CPU has no 64-bit long mode; halting.\r\n"

    /* Boot GDT: null, 64-bit code (0x08), data (0x10). Also used by the AP trampoline. */
    .balign 16
    .global boot_gdt
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
boot_gdt_end:
boot_gdt_ptr:
    .short boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

    .section .bss
    .balign 4096
    .global boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
    /* The stack's guard page: the kernel page tables leave it unmapped (mm/kmap.rs), so an
     * overflow faults (a double fault, on its own stack) instead of overwriting what is below. */
    .balign 4096
    .global boot_stack_guard
boot_stack_guard:
    .skip 4096
    .global boot_stack_bottom
boot_stack_bottom:
    .skip BOOT_STACK_SIZE
    .global boot_stack_top
boot_stack_top:
