/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * VM entry and exit for VMX (Intel SDM Vol. 3C, 28.1 "Basic VM-Entry Checks" onwards, and
 * 29.5 "Loading Host State"). Assembled after vmm/entry_regs.S (GUEST_* offsets, the
 * LOAD_GUEST_GPRS and STORE_GUEST_GPRS macros).
 *
 * u64 vmx_enter(GuestRegs *regs, u64 launched)
 *   Saves the callee-saved host registers and the regs pointer on the stack, stores RSP in the
 *   VMCS host-RSP field, loads the guest's general registers and CR2 from *regs, and executes
 *   VMRESUME (launched != 0) or VMLAUNCH. Returns 0 after a VM exit (the guest registers are in
 *   *regs again), 1 on VMfailInvalid, 2 on VMfailValid (the VMCS holds the reason).
 *
 * vmx_exit is the host RIP of every VMCS: the CPU arrives with RSP = the value stored above,
 * interrupts disabled, host CR3/segments/GDTR/IDTR/TR from the VMCS.
 */
    .section .text.vmx_entry, "ax"
    .global vmx_enter
vmx_enter:
    PUSH_HOST_CALLEE_SAVED
    push rdi                        /* regs pointer, found again at [rsp] on exit */
    mov rax, 0x6C14                 /* host RSP */
    vmwrite rax, rsp
    jc 8f
    jz 8f
    mov rax, [rdi + GUEST_CR2]
    mov cr2, rax
    test rsi, rsi
    mov rax, [rdi + GUEST_RAX]
    LOAD_GUEST_GPRS                 /* rdi last; flags from `test` survive the MOVs */
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
    mov [rdi + GUEST_RAX], rax
    STORE_GUEST_GPRS
    mov rax, cr2
    mov [rdi + GUEST_CR2], rax
    pop rax                         /* guest rdi */
    mov [rdi + GUEST_RDI], rax
    xor eax, eax
vmx_restore_host:                   /* callee-saved registers of vmx_enter's caller; eax = code */
    POP_HOST_CALLEE_SAVED
    ret
