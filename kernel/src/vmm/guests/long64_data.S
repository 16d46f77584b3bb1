/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* guest_long64: shared routines, descriptor tables and strings; the end of its blob (the guests and their constants: common.S). */
g64_puts:
    PUTS_LOOP
    ret
/* Writes a 64-bit interrupt gate for vector ecx -> handler rax into the IDT at rdi. */
g64_set_gate:
    shl $4, %ecx
    add %rcx, %rdi
    mov %ax, (%rdi)
    movw $0x08, 2(%rdi)
    movw $0x8E00, 4(%rdi)
    shr $16, %rax
    mov %ax, 6(%rdi)
    shr $16, %rax
    mov %eax, 8(%rdi)
    movl $0, 12(%rdi)
    lea g64_idt(%rip), %rdi
    ret
g64_gp_handler:
    add $8, %rsp                    /* error code */
    mov $13, %r9d
    add %r10, (%rsp)
    iretq
g64_ud_handler:
    mov $6, %r9d
    add %r10, (%rsp)
    iretq
    .balign 8
g64_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF        /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF        /* 0x10: data */
g64_gdt_end:
g64_gdt_ptr:
    .short g64_gdt_end - g64_gdt - 1
    .quad 0x100000 + (g64_gdt - guest_long64_start)
g64_idt_ptr:
    .short 16 * 0x81 - 1
    .quad 0x100000 + (g64_idt - guest_long64_start)
    .balign 16
g64_idt:
    .skip 16 * 0x81
g64_hello:
    .asciz "guest64: hello from a 64-bit guest\n"
g64_hypercall_text:
    .ascii "guest64: written through CONSOLE_WRITE\n"
g64_hypercall_text_end:
g64_done:
    .asciz "guest64: all checks passed\n"
g64_failed:
    .asciz "guest64: a check failed\n"
guest_long64_end:

