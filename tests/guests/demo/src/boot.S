/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * castor-demo's entry: the Multiboot 1 header, the 32-bit entry that switches to long mode and
 * calls the Rust code, and the interrupt entry stubs. Included by main.rs with global_asm!, whose
 * operands name the Rust symbols used here: main (demo_main), exception (the exception
 * handler) and ticks (the IRQ0 counter).
 *
 * Entered as the Multiboot Specification 0.6.96, section 3.2 describes: protected mode, paging
 * off, flat segments, interrupts off, EAX = 0x2BADB002, EBX = physical address of the Multiboot
 * information, no usable stack. The header uses the a.out kludge (flag 16) so that QEMU, which
 * refuses ELF64 images, loads the file flat at 1 MiB (see ../linker.ld).
 */
    .set MB_HEADER_MAGIC, 0x1BADB002
    .set MB_FLAGS, (1 << 1) | (1 << 16)     /* memory information; a.out kludge address fields */
    .set CODE64, 0x08
    .set DATA, 0x10
    .set IA32_EFER, 0xC0000080
    .set EFER_LME, 1 << 8
    .set CR4_PAE, 1 << 5
    .set CR0_PG, 1 << 31
    .set PAGE_SIZE, 4096
    .set PD_ENTRIES, 4 * 512                /* four page directories: 4 GiB in 2 MiB pages */
    .set PDE_2M, 0x83                       /* present, writable, page size (2 MiB) */
    .set TABLE, 0x03                        /* present, writable: points to the next level */
    .set PIC_MASTER, 0x20
    .set PIC_EOI, 0x20                      /* OCW2: non-specific EOI */

    .section .multiboot_header, "a"
    .balign 4
mb_header:
    .long MB_HEADER_MAGIC
    .long MB_FLAGS
    .long -(MB_HEADER_MAGIC + MB_FLAGS)
    .long mb_header                         /* header_addr */
    .long __load_start                      /* load_addr */
    .long __load_end                        /* load_end_addr */
    .long __bss_end                         /* bss_end_addr */
    .long _start                            /* entry_addr */

    .section .text, "ax"
    .code32
    .global _start
_start:
    cli
    cld
    mov $stack_top, %esp
    mov %eax, %edi                          /* loader magic: demo_main's first argument */
    mov %ebx, %esi                          /* Multiboot information: its second */

    /* Identity map the first 4 GiB with 2 MiB pages (SDM Vol. 3A, 4.5: PML4[0] -> PDPT,
     * PDPT[0..4] -> PD0..PD3, PD entry n -> n * 2 MiB). The loader zeroed .bss; clear the
     * tables anyway so the entry does not depend on it. */
    push %edi
    mov $pml4, %edi
    mov $(6 * PAGE_SIZE / 4), %ecx
    xor %eax, %eax
    rep stosl
    pop %edi
    movl $(pdpt + TABLE), pml4
    mov $(pd + TABLE), %eax
    mov $pdpt, %ebx
    mov $4, %ecx
1:  mov %eax, (%ebx)
    add $PAGE_SIZE, %eax
    add $8, %ebx
    loop 1b
    mov $PDE_2M, %eax
    mov $pd, %ebx
    mov $PD_ENTRIES, %ecx
2:  mov %eax, (%ebx)                        /* the high half stays 0: all below 4 GiB */
    add $0x200000, %eax
    add $8, %ebx
    loop 2b

    /* Enter IA-32e mode (SDM Vol. 3A, 10.8.5): PAE, CR3, EFER.LME, then CR0.PG, then a far
     * jump to a 64-bit code segment. CR0 is read and only PG is added: its other bits stay as
     * the loader left them. */
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $pml4, %eax
    mov %eax, %cr3
    mov $IA32_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $CR0_PG, %eax
    mov %eax, %cr0
    lgdt gdt_descriptor
    ljmp $CODE64, $long_mode

    .code64
long_mode:
    mov $DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $stack_top, %rsp
    mov %edi, %edi                          /* upper halves are undefined after the switch */
    mov %esi, %esi
    call {main}
    ud2

/* IRQ0 (PIT channel 0): count the tick and acknowledge it at the master 8259A. */
    .global castor_demo_irq0
castor_demo_irq0:
    push %rax
    lock incq {ticks}(%rip)
    mov $PIC_EOI, %al
    out %al, $PIC_MASTER
    pop %rax
    iretq

/* IRQ4 (COM1, echo mode): count the interrupt and acknowledge it at the master 8259A. The
 * main loop drains the receiver, which lowers the line; the next byte raises it again. */
    .global castor_demo_irq4
castor_demo_irq4:
    push %rax
    lock incq {irq4s}(%rip)
    mov $PIC_EOI, %al
    out %al, $PIC_MASTER
    pop %rax
    iretq

/* Every other 8259A vector: all lines but IRQ0 (and IRQ4 in echo mode) are masked, so only a spurious IRQ7 or IRQ15
 * arrives here, and a spurious interrupt must not be acknowledged (8259A datasheet,
 * "Interrupt Sequence"). */
    .global castor_demo_ignore_irq
castor_demo_ignore_irq:
    iretq

/* Exceptions 0-31: push the vector and report. Nothing returns, so the frame's layout (with or
 * without an error code) only matters to the handler, which is told where it starts. */
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
exception_\vector:
    push $\vector
    jmp exception_common
    .endr

exception_common:
    mov (%rsp), %rdi                        /* the vector */
    lea 8(%rsp), %rsi                       /* the CPU's frame: [error code,] RIP, CS, ... */
    and $-16, %rsp
    call {exception}
    ud2

    .section .rodata, "a"
    .balign 8
    .global castor_demo_exception_stubs
castor_demo_exception_stubs:
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exception_\vector
    .endr

    .section .data, "aw"
    .balign 8
/* Null, 64-bit code (L = 1, D = 0), data: SDM Vol. 3A, 3.4.5 and 5.2.1. */
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt

    .section .bss, "aw", @nobits
    .balign PAGE_SIZE
pml4:           .skip PAGE_SIZE
pdpt:           .skip PAGE_SIZE
pd:             .skip 4 * PAGE_SIZE
stack:          .skip 16 * 1024
stack_top:
