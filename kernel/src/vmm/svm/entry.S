/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * VM entry and exit for SVM (AMD64 APM Vol. 2, 15.5 "VMRUN Instruction" and 15.6 "#VMEXIT").
 *
 * u64 svm_enter(GuestRegs *regs, u64 guest_vmcb, u64 host_vmcb)
 *   With GIF cleared (and host RFLAGS.IF set, so physical interrupts exit the guest), VMSAVEs the host's FS/GS/TR/LDTR/KernelGsBase/STAR.../SYSENTER state into
 *   host_vmcb (VMRUN does not switch those), VMLOADs the guest's, loads the guest's general
 *   registers from *regs (RAX and RSP live in the VMCB), VMRUNs. After #VMEXIT it stores the
 *   guest registers back, VMSAVEs the guest's state, VMLOADs the host's (restoring the per-CPU
 *   GS base), clears RFLAGS.IF, sets GIF and returns 0. Callers run with interrupts disabled. GuestRegs layout as for VMX (vmm/vcpu.rs): rax, rbx, rcx,
 *   rdx, rsi, rdi, rbp, r8..r15 (8-byte slots; the rax slot is unused here).
 */
    .section .text.svm_entry, "ax"
    .global svm_enter
svm_enter:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdi                        /* [rsp + 16]: regs pointer */
    push rdx                        /* [rsp + 8]:  host VMCB */
    push rsi                        /* [rsp + 0]:  guest VMCB */
    clgi
    /* With V_INTR_MASKING, the host's RFLAGS.IF at VMRUN decides whether physical interrupts
       stop the guest (INTR intercept); GIF=0 keeps them from the host until after #VMEXIT. */
    sti
    mov rax, rdx
    vmsave rax
    mov rax, rsi
    vmload rax
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
    mov rdi, [rdi + 5 * 8]
    mov rax, [rsp]
    vmrun rax
    /* #VMEXIT: host RAX/RSP/RIP restored from the host save area; guest GPRs are live. */
    xchg rdi, [rsp + 16]            /* rdi = regs pointer; guest rdi parked */
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
    mov rax, [rsp + 16]
    mov [rdi + 5 * 8], rax
    mov rax, [rsp]
    vmsave rax
    mov rax, [rsp + 8]
    vmload rax
    cli                             /* interrupts stay pending; the back end takes them */
    stgi
    add rsp, 24
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    xor eax, eax
    ret
