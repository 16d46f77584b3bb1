/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* guest_dirty: writes where it is told, for dirty-page tracking (the guests and their constants: common.S). */
    .code64

/*
 * guest_dirty: 64-bit, for the dirty-page tracking self test (selftest/dirty.rs) and the harvest
 * benchmark (bench/harvest.rs), which load it with their own page tables. It uses no stack and
 * takes no interrupts, so it writes guest memory only where it is told to: each round it reads
 * RCX qword addresses from the list at RBX and stores each address at itself (8 bytes), then
 * makes a hypercall (VMCALL VERSION, RAX = 0); the next round starts with RBX and RCX as the
 * host has set them meanwhile.
 */
    .balign 16
    .global guest_dirty_start, guest_dirty_end
guest_dirty_start:
    .code64
1:  mov %rbx, %rsi
    mov %rcx, %rdx
2:  test %rdx, %rdx
    jz 3f
    mov (%rsi), %rdi
    mov %rdi, (%rdi)
    add $8, %rsi
    dec %rdx
    jmp 2b
3:  xor %eax, %eax
    vmcall
    jmp 1b
guest_dirty_end:

