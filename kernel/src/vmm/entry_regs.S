/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Register saving and loading shared by both back ends' entry.S: it is assembled in front of
 * each by `vcpu::entry_asm!`, which supplies the GuestRegs (vmm/vcpu.rs) field offsets as
 * `const offset_of!` operands, so the layout is stated once, in Rust.
 *
 * PUSH_HOST_CALLEE_SAVED / POP_HOST_CALLEE_SAVED: the registers the System V ABI makes the
 *   entry function preserve for its Rust caller (RBP, RBX, R12-R15), which the guest clobbers.
 *
 * GUEST_<REG>: the offset of <reg>'s slot. RAX and CR2 are each back end's own business (VMX
 * moves them itself; SVM keeps RAX and CR2 in the VMCB), RSP and RIP are in the VMCS/VMCB.
 *
 * LOAD_GUEST_GPRS: with rdi = GuestRegs pointer, loads RBX, RCX, RDX, RSI, RBP, R8-R15 and,
 *   last, RDI (which held the pointer). Only MOVs: RFLAGS survive.
 * STORE_GUEST_GPRS: with rdi = GuestRegs pointer, stores RBX, RCX, RDX, RSI, RBP, R8-R15; the
 *   caller stores RAX and RDI (which it must have parked elsewhere).
 */
    .set GUEST_RAX, {rax}
    .set GUEST_RBX, {rbx}
    .set GUEST_RCX, {rcx}
    .set GUEST_RDX, {rdx}
    .set GUEST_RSI, {rsi}
    .set GUEST_RDI, {rdi}
    .set GUEST_RBP, {rbp}
    .set GUEST_R8, {r8}
    .set GUEST_R9, {r9}
    .set GUEST_R10, {r10}
    .set GUEST_R11, {r11}
    .set GUEST_R12, {r12}
    .set GUEST_R13, {r13}
    .set GUEST_R14, {r14}
    .set GUEST_R15, {r15}
    .set GUEST_CR2, {cr2}

.macro LOAD_GUEST_GPRS
    mov rbx, [rdi + GUEST_RBX]
    mov rcx, [rdi + GUEST_RCX]
    mov rdx, [rdi + GUEST_RDX]
    mov rsi, [rdi + GUEST_RSI]
    mov rbp, [rdi + GUEST_RBP]
    mov r8,  [rdi + GUEST_R8]
    mov r9,  [rdi + GUEST_R9]
    mov r10, [rdi + GUEST_R10]
    mov r11, [rdi + GUEST_R11]
    mov r12, [rdi + GUEST_R12]
    mov r13, [rdi + GUEST_R13]
    mov r14, [rdi + GUEST_R14]
    mov r15, [rdi + GUEST_R15]
    mov rdi, [rdi + GUEST_RDI]
.endm

.macro STORE_GUEST_GPRS
    mov [rdi + GUEST_RBX], rbx
    mov [rdi + GUEST_RCX], rcx
    mov [rdi + GUEST_RDX], rdx
    mov [rdi + GUEST_RSI], rsi
    mov [rdi + GUEST_RBP], rbp
    mov [rdi + GUEST_R8], r8
    mov [rdi + GUEST_R9], r9
    mov [rdi + GUEST_R10], r10
    mov [rdi + GUEST_R11], r11
    mov [rdi + GUEST_R12], r12
    mov [rdi + GUEST_R13], r13
    mov [rdi + GUEST_R14], r14
    mov [rdi + GUEST_R15], r15
.endm

.macro PUSH_HOST_CALLEE_SAVED
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
.endm

.macro POP_HOST_CALLEE_SAVED
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
.endm
