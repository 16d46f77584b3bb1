/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* guest_long64: entry, the basic checks (RDI = 0) and the failure path (the guests and their constants: common.S). */
    .section .rodata.guests, "a"
    .balign 16
    .global guest_long64_start, guest_long64_end
guest_long64_start:
    .code64
    mov $0x80000, %rsp
    /* Own GDT and an IDT whose #UD and #GP handlers note the vector in r9 and skip r10 bytes. */
    lgdt g64_gdt_ptr(%rip)
    mov %rdi, %r15                  /* mode: 0 checks, 1 hostile, 2 timers, 3 events, 4 APIC */
    lea g64_idt(%rip), %rdi
    lea g64_ud_handler(%rip), %rax
    mov $6, %ecx
    call g64_set_gate
    lea g64_gp_handler(%rip), %rax
    mov $13, %ecx
    call g64_set_gate
    lidt g64_idt_ptr(%rip)
    cmp $1, %r15
    je g64_hostile
    cmp $2, %r15
    je g64_timer
    cmp $3, %r15
    je g64_events
    cmp $4, %r15
    je g64_apic
    lea g64_hello(%rip), %rsi
    call g64_puts
    mov $0x40000000, %eax
    cpuid
    mov $1, %r8d
    cmp $0x74736143, %ebx           /* "Cast" */
    jne g64_fail
    cmp $0x40000001, %eax
    jne g64_fail
    mov $2, %r8d
    xor %eax, %eax                  /* VERSION */
    vmcall
    cmp $1, %rax
    jne g64_fail
    mov $3, %r8d
    mov $1, %eax                    /* CONSOLE_WRITE */
    lea g64_hypercall_text(%rip), %rbx
    mov $(g64_hypercall_text_end - g64_hypercall_text), %ecx
    vmcall
    cmp $(g64_hypercall_text_end - g64_hypercall_text), %rax
    jne g64_fail
    mov $4, %r8d
    in $0x80, %al
    cmp $0xFF, %al
    jne g64_fail
    mov $5, %r8d
    mov $(COM1 + 7), %dx
    mov $0x5A, %al
    out %al, %dx
    in %dx, %al
    cmp $0x5A, %al
    jne g64_fail
    mov $6, %r8d
    mov $0x277, %ecx                /* IA32_PAT: emulated, power-on value */
    xor %r9d, %r9d
    rdmsr
    test %r9d, %r9d
    jnz g64_fail
    cmp $0x00070406, %eax
    jne g64_fail
    cmp $0x00070406, %edx
    jne g64_fail
    mov $7, %r8d
    mov $0x12345678, %ecx           /* unknown MSR: #GP */
    mov $2, %r10d
    rdmsr
    cmp $13, %r9d
    jne g64_fail
    mov $8, %r8d
    xor %r9d, %r9d
    wrmsr
    cmp $13, %r9d
    jne g64_fail
    mov $9, %r8d
    xor %r9d, %r9d
    xor %ecx, %ecx
    mov $3, %r10d
    xsetbv                          /* XSAVE is hidden: #UD */
    cmp $6, %r9d
    jne g64_fail
    mov $10, %r8d                   /* CR4 as the guest sees it: VMXE hidden */
    mov %cr4, %rax
    test $(1 << 13), %eax
    jnz g64_fail
    mov $11, %r8d                   /* clearing CR0.NE (owned by VMX) exits; the guest reads */
    mov %cr0, %rax                  /* back what it wrote, then restores it */
    mov %rax, %rbx
    and $~(1 << 5), %rax
    mov %rax, %cr0
    mov %cr0, %rcx
    cmp %rax, %rcx
    jne g64_fail
    mov %rbx, %cr0
    mov %cr0, %rcx
    cmp %rbx, %rcx
    jne g64_fail
    lea g64_done(%rip), %rsi
    call g64_puts
    mov $0x31, %eax
    out %eax, $DEBUG_EXIT
    hlt
g64_fail:
    lea g64_failed(%rip), %rsi
    call g64_puts
    lea 0x30(%r8d), %eax
    out %eax, $DEBUG_EXIT
    hlt
