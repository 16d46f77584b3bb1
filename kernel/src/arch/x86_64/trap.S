/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Interrupt and exception entry (Intel SDM Vol. 3A, 7.14 "Exception and Interrupt Handling in
 * 64-bit Mode"). 256 stubs of 16 bytes each, one per vector, at trap_stubs + 16 * vector. Vectors
 * whose exceptions push no error code push a zero so every frame has the same shape; then the
 * vector number; then trap_common saves the general registers and calls
 * trap_dispatch(&mut TrapFrame). The frame layout must match `TrapFrame` in trap.rs.
 * Vectors with an error code: 8 #DF, 10 #TS, 11 #NP, 12 #SS, 13 #GP, 14 #PF, 17 #AC, 21 #CP,
 * 29 #VC, 30 #SX.
 */
    .section .text.trap, "ax"
    .balign 16
    .global trap_stubs
trap_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if ((vec == 8) | (vec == 10) | (vec == 11) | (vec == 12) | (vec == 13) | (vec == 14) | (vec == 17) | (vec == 21) | (vec == 29) | (vec == 30)) == 0
    push 0
    .endif
    push vec
    jmp trap_common
    .set vec, vec + 1
    .endr

trap_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call trap_dispatch
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq
