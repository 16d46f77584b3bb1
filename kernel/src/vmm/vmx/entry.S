/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * VM entry and exit for VMX (Intel SDM Vol. 3C, 28.1 "Basic VM-Entry Checks" onwards, and
 * 29.5 "Loading Host State").
 *
 * u64 vmx_enter(GuestRegs *regs, u64 launched)
 *   Saves the callee-saved host registers and the regs pointer on the stack, stores RSP in the
 *   VMCS host-RSP field, loads the guest's general registers and CR2 from *regs, and executes
 *   VMRESUME (launched != 0) or VMLAUNCH. Returns 0 after a VM exit (the guest registers are in
 *   *regs again), 1 on VMfailInvalid, 2 on VMfailValid (the VMCS holds the reason).
 *
 * vmx_exit is the host RIP of every VMCS: the CPU arrives with RSP = the value stored above,
 * interrupts disabled, host CR3/segments/GDTR/IDTR/TR from the VMCS. GuestRegs layout (8-byte
 * slots): rax, rbx, rcx, rdx, rsi, rdi, rbp, r8..r15, cr2 — must match vcpu.rs.
 */
    .section .text.vmx_entry, "ax"
    .global vmx_enter
vmx_enter:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdi                        /* regs pointer, found again at [rsp] on exit */
    mov rax, 0x6C14                 /* host RSP */
    vmwrite rax, rsp
    jc 8f
    jz 8f
    mov rax, [rdi + 16 * 8]         /* guest CR2 */
    mov cr2, rax
    test rsi, rsi
    mov rax, [rdi + 0 * 8]
    mov rbx, [rdi + 1 * 8]
    mov rcx, [rdi + 2 * 8]
    mov rdx, [rdi + 3 * 8]
    mov rsi, [rdi + 4 * 8]
    mov rbp, [rdi + 6 * 8]
    mov r8,  [rdi + 7 * 8]
    mov r9,  [rdi + 8 * 8]
    mov r10, [rdi + 9 * 8]
    mov r11, [rdi + 10 * 8]
    mov r12, [rdi + 11 * 8]
    mov r13, [rdi + 12 * 8]
    mov r14, [rdi + 13 * 8]
    mov r15, [rdi + 14 * 8]
    mov rdi, [rdi + 5 * 8]          /* last: rdi held the pointer (flags from `test` survive movs) */
    jnz 1f
    vmlaunch
    jmp 8f
1:  vmresume
8:  /* VMfail: CF = invalid (1), ZF = valid (2). Restore the host and return the code. */
    mov eax, 1
    jc 9f
    mov eax, 2
9:  pop rdi
    jmp vmx_restore_host

    .global vmx_exit
vmx_exit:
    xchg rdi, [rsp]                 /* rdi = regs pointer; guest rdi parked on the stack */
    mov [rdi + 0 * 8], rax
    mov [rdi + 1 * 8], rbx
    mov [rdi + 2 * 8], rcx
    mov [rdi + 3 * 8], rdx
    mov [rdi + 4 * 8], rsi
    mov [rdi + 6 * 8], rbp
    mov [rdi + 7 * 8], r8
    mov [rdi + 8 * 8], r9
    mov [rdi + 9 * 8], r10
    mov [rdi + 10 * 8], r11
    mov [rdi + 11 * 8], r12
    mov [rdi + 12 * 8], r13
    mov [rdi + 13 * 8], r14
    mov [rdi + 14 * 8], r15
    mov rax, cr2
    mov [rdi + 16 * 8], rax
    pop rax                         /* guest rdi */
    mov [rdi + 5 * 8], rax
    xor eax, eax
vmx_restore_host:                   /* callee-saved registers of vmx_enter's caller; eax = code */
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
