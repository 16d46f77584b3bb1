/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * VM entry and exit for SVM (AMD64 APM Vol. 2, 15.5 "VMRUN Instruction" and 15.6 "#VMEXIT").
 *
 * u64 svm_enter(GuestRegs *regs, u64 guest_vmcb, u64 host_vmcb)
 *   With GIF cleared (and host RFLAGS.IF set, so physical interrupts exit the guest), VMSAVEs
 *   the host's FS/GS/TR/LDTR/KernelGsBase/STAR.../SYSENTER state into host_vmcb (VMRUN does
 *   not switch those), VMLOADs the guest's, loads the guest's general registers from *regs
 *   (RAX and RSP live in the VMCB), VMRUNs. After #VMEXIT it stores the
 *   guest registers back, VMSAVEs the guest's state, VMLOADs the host's (restoring the per-CPU
 *   GS base), clears RFLAGS.IF, sets GIF and returns 0. Callers run with interrupts
 *   disabled. Assembled after vmm/entry_regs.S (GUEST_* offsets, the LOAD_GUEST_GPRS and
 *   STORE_GUEST_GPRS macros); the RAX and CR2 slots are unused here (both live in the VMCB).
 */
    .section .text.svm_entry, "ax"
    .global svm_enter
svm_enter:
    PUSH_HOST_CALLEE_SAVED
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
    LOAD_GUEST_GPRS
    mov rax, [rsp]
    vmrun rax
    /* #VMEXIT: host RAX/RSP/RIP restored from the host save area; guest GPRs are live. */
    xchg rdi, [rsp + 16]            /* rdi = regs pointer; guest rdi parked */
    STORE_GUEST_GPRS
    mov rax, [rsp + 16]
    mov [rdi + GUEST_RDI], rax
    mov rax, [rsp]
    vmsave rax
    mov rax, [rsp + 8]
    vmload rax
    cli                             /* interrupts stay pending; the back end takes them */
    stgi
    add rsp, 24
    POP_HOST_CALLEE_SAVED
    xor eax, eax
    ret
