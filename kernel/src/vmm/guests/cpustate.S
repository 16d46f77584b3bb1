/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* guest_cpustate: registers mixed across modes, for the vCPU state self test (the guests and their constants: common.S). */
/*
 * guest_cpustate: for the vCPU state self test (selftest/cpustate.rs), which loads it at
 * 0x100000 and starts it in 32-bit protected mode (flat, paging off). It goes through three
 * modes - 32-bit without paging, 32-bit with PAE paging, 64-bit long mode - mixing its
 * registers deterministically with exits in between (OUT to port 0x80, one OUT per printed
 * character, absorbed CPUID and MSR exits), so a save and restore at any exit that loses a
 * register, flag, segment, control register, MSR, descriptor table, CR2 or the stack changes
 * what it prints: "p32: X X", "pae: X X", "l64: X X X X", "end: X" (X in hex), then through
 * CONSOLE_WRITE "cpustate: ext N gp N code N" (interrupts taken on vector 0x21, #GPs taken and
 * the last #GP error code: all 0 unless the host injects events), and exits with 0x35.
 * Memory: page tables PML4 0x1000, PDPT 0x2000, PD 0x3000 (one 2 MiB page), PAE PDPT 0x4000;
 * FS data at 0x5000 (32-bit FS segment) and 0x6000 (64-bit FS base), GS data at 0x6100; stack
 * below 0x80000; GDT, IDT and counters inside the blob.
 */
    .set GCS_BASE, 0x100000
    .balign 16
    .global guest_cpustate_start, guest_cpustate_end
guest_cpustate_start:
    .code32
    lgdt gcs_gdt_ptr - guest_cpustate_start + GCS_BASE
    ljmp $0x10, $gcs_p32 - guest_cpustate_start + GCS_BASE
gcs_p32:
    mov $0x18, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %gs
    mov $0x20, %ax                  /* data segment with base 0x5000 */
    mov %ax, %fs
    mov $0x80000, %esp
    mov $0xFF, %al                  /* mask the PIC: no interrupt but injected ones */
    out %al, $0x21
    out %al, $0xA1
    movl $0x600DF00D, %fs:0
    xor %edx, %edx                  /* SYSENTER_CS/ESP/EIP (switched by the hardware), */
    mov $0x174, %ecx                /* PAT and MTRR_DEF_TYPE (emulated by Castor) */
    mov $0x10, %eax
    wrmsr
    mov $0x175, %ecx
    mov $0x7F000, %eax
    wrmsr
    mov $0x176, %ecx
    mov $0x123456, %eax
    wrmsr
    mov $0x277, %ecx
    mov $0x00070106, %eax
    mov $0x00070406, %edx
    wrmsr
    mov $0x2FF, %ecx
    mov $0x806, %eax
    xor %edx, %edx
    wrmsr
    mov $0x11111111, %ebx           /* the 32-bit state: ebx, ecx, esi, edi, ebp */
    mov $0x22222222, %ecx
    mov $0x33333333, %esi
    mov $0x44444444, %edi
    mov $0x55555555, %ebp
    mov $0x3A323370, %eax           /* "p32:" */
    call gcs_tag32
    call gcs_step32
    push %ebx                       /* CPUID, absorbed by the back end (without paging: */
    push %ecx                       /* AMD-V without next-RIP decodes it, and Castor's */
    mov $0x40000000, %eax           /* decoder refuses the accessed bit QEMU sets in PAE */
    cpuid                           /* PDPTEs) */
    pop %ecx
    pop %ebx
    add %eax, %edi
    call gcs_step32
    call gcs_nl32
    /* PAE paging: PD[0] maps 2 MiB at 0, PAE PDPT[0] -> PD; CR4.PAE, CR3, CR0.PG and WP. */
    movl $0x83, 0x3000
    movl $0x3001, 0x4000
    mov %cr4, %eax
    or $0x220, %eax                 /* PAE, OSFXSR */
    mov %eax, %cr4
    mov $0x4000, %eax
    mov %eax, %cr3
    mov %cr0, %eax
    or $0x80010000, %eax
    mov %eax, %cr0
    mov $0x3A656170, %eax           /* "pae:" */
    call gcs_tag32
    call gcs_step32
    call gcs_step32
    call gcs_nl32
    /* Long mode: PML4[0] -> PDPT -> the same PD; paging off, EFER.LME and NXE, paging on. */
    movl $0x2003, 0x1000
    movl $0x3003, 0x2000
    mov %cr0, %eax
    and $0x7FFFFFFF, %eax
    mov %eax, %cr0
    mov $0x1000, %eax
    mov %eax, %cr3
    push %ecx
    mov $0xC0000080, %ecx
    rdmsr
    or $0x900, %eax
    wrmsr
    pop %ecx
    mov %cr0, %eax
    or $0x80000000, %eax
    mov %eax, %cr0
    ljmp $0x08, $gcs_p64 - guest_cpustate_start + GCS_BASE

/* One round of the 32-bit mix: every state register changes, with exits between the updates
 * that the values, CF, DF, the stack and the FS segment must survive; prints the xor of all.
 * Only port I/O exits here, which need no instruction decoding (see the CPUID above). */
gcs_step32:
    imul $0x9E3779B1, %ebx, %ebx
    add %ebp, %ebx
    out %al, $0x80
    imul $0x85EBCA6B, %ecx, %ecx
    add %ebx, %ecx
    bt $3, %ecx
    out %al, $0x80
    adc %ecx, %esi
    push %esi
    std
    out %al, $0x80
    pushf
    pop %eax
    cld
    add %eax, %ebp
    add %fs:0, %edi
    pop %eax
    xor %eax, %ebp
    imul $0xC2B2AE35, %edi, %edi
    add %esi, %edi
    imul $0x27D4EB2F, %ebp, %ebp
    add %edi, %ebp
    mov %ebx, %eax
    xor %ecx, %eax
    xor %esi, %eax
    xor %edi, %eax
    xor %ebp, %eax
    /* fall through */
/* Prints eax as 8 hex digits and a space; clobbers eax, edx. */
gcs_hex32:
    push %ecx
    push %ebx
    push %esi
    mov %eax, %ebx
    mov $8, %ecx
    mov $gcs_digits - guest_cpustate_start + GCS_BASE, %esi
    mov $COM1, %dx
1:  rol $4, %ebx
    mov %ebx, %eax
    and $0xF, %eax
    movzbl (%esi,%eax), %eax
    out %al, %dx
    loop 1b
    mov $0x20, %al
    out %al, %dx
    pop %esi
    pop %ebx
    pop %ecx
    ret
/* Prints the four characters in eax, lowest first; clobbers eax, edx. */
gcs_tag32:
    push %ecx
    mov $4, %ecx
    mov $COM1, %dx
1:  out %al, %dx
    shr $8, %eax
    loop 1b
    pop %ecx
    ret
gcs_nl32:
    mov $COM1, %dx
    mov $0x0A, %al
    out %al, %dx
    ret

    .code64
gcs_p64:
    push %rcx                       /* IDT: #GP, #PF and vector 0x21 */
    push %rdi
    lea gcs_gp_handler(%rip), %rax
    mov $13, %ecx
    call gcs_gate
    lea gcs_pf_handler(%rip), %rax
    mov $14, %ecx
    call gcs_gate
    lea gcs_ext_handler(%rip), %rax
    mov $0x21, %ecx
    call gcs_gate
    lidt gcs_idt_ptr(%rip)
    mov $0xC0000100, %ecx           /* FS and GS bases (switched by the hardware) */
    mov $0x6000, %eax
    xor %edx, %edx
    wrmsr
    mov $0xC0000101, %ecx
    mov $0x6100, %eax
    wrmsr
    pop %rdi
    pop %rcx
    movabs $0x0F1E2D3C4B5A6978, %rax
    mov %rax, %fs:0
    movabs $0x7766554433221100, %rax
    mov %rax, %gs:0
    mov 0x200000, %eax              /* not mapped: #PF, CR2 = 0x200000 */
gcs_pf_resume:
    sti
    movabs $0x0123456789ABCDEF, %r8 /* the 64-bit state: rbx, rcx, rsi, rdi, rbp, r8-r15 */
    add %rbx, %r8
    movabs $0x1032547698BADCFE, %r9
    add %rcx, %r9
    lea 1(%rsi), %r10
    lea 2(%rdi), %r11
    lea 3(%rbp), %r12
    lea 4(%rbx,%rcx), %r13
    lea 5(%rsi,%rdi), %r14
    lea 6(%rbp,%rbx), %r15
    mov $0x3A34366C, %eax           /* "l64:" */
    call gcs_tag64
    call gcs_step64
    call gcs_step64
    call gcs_step64
    call gcs_step64
    call gcs_nl64
    mov $0x3A646E65, %eax           /* "end:" */
    call gcs_tag64
    mov %cr0, %rax                  /* mix in what else the guest can see */
    add %rax, %rbx
    mov %cr2, %rax
    add %rax, %rcx
    mov %cr3, %rax
    add %rax, %rsi
    mov %cr4, %rax
    add %rax, %rdi
    push %rcx
    mov $0xC0000080, %ecx           /* EFER */
    call gcs_rdmsr
    add %rax, %r8
    mov $0x174, %ecx
    call gcs_rdmsr
    add %rax, %r9
    mov $0x175, %ecx
    call gcs_rdmsr
    add %rax, %r10
    mov $0x176, %ecx
    call gcs_rdmsr
    add %rax, %r11
    mov $0x277, %ecx
    call gcs_rdmsr
    add %rax, %r12
    mov $0x2FF, %ecx
    call gcs_rdmsr
    add %rax, %r13
    mov $0xC0000100, %ecx
    call gcs_rdmsr
    add %rax, %r14
    mov $0xC0000101, %ecx
    call gcs_rdmsr
    add %rax, %r15
    pop %rcx
    sgdt gcs_scratch(%rip)
    add gcs_scratch(%rip), %rbp
    add gcs_scratch+2(%rip), %rbx
    sidt gcs_scratch(%rip)
    add gcs_scratch(%rip), %rcx
    add gcs_scratch+2(%rip), %rsi
    str %ax
    movzwl %ax, %eax
    add %rax, %rdi
    sldt %ax
    movzwl %ax, %eax
    add %rax, %rbp
    mov %ds, %eax
    add %rax, %r8
    mov %ss, %eax
    add %rax, %r9
    mov %fs, %eax
    add %rax, %r10
    mov %cs, %eax
    add %rax, %r11
    call gcs_step64
    call gcs_nl64
    mov gcs_ext_count(%rip), %eax   /* "cpustate: ext N gp N code N" through CONSOLE_WRITE */
    lea gcs_line_ext(%rip), %rdi
    call gcs_fmt32
    mov gcs_gp_count(%rip), %eax
    lea gcs_line_gp(%rip), %rdi
    call gcs_fmt32
    mov gcs_gp_code(%rip), %eax
    lea gcs_line_code(%rip), %rdi
    call gcs_fmt32
    mov $1, %eax
    lea gcs_line(%rip), %rbx
    mov $(gcs_line_end - gcs_line), %ecx
    vmcall
    mov $0x35, %eax
    out %eax, $DEBUG_EXIT
    hlt

/* One round of the 64-bit mix, as gcs_step32 for all thirteen state registers, the FS and GS
 * bases, rax and rdx across exits, and a CPUID; prints the xor of all. */
gcs_step64:
    imul $0x5851F42D, %rbx, %rbx
    add %r15, %rbx
    imul $0x4C957F2D, %rcx, %rcx
    add %rbx, %rcx
    out %al, $0x80
    imul $0x2545F491, %rsi, %rsi
    add %rcx, %rsi
    imul $0x4F6CDD1D, %rdi, %rdi
    add %rsi, %rdi
    bt $5, %rdi
    out %al, $0x80
    adc %rdi, %rbp
    push %rbx                       /* CPUID, absorbed by the back end */
    push %rcx
    mov $0x40000000, %eax
    cpuid
    pop %rcx
    pop %rbx
    add %rax, %rbp
    imul $0x1B873593, %r8, %r8
    add %rbp, %r8
    push %r8
    out %al, $0x80
    pop %rax
    imul $0x6A09E667, %r9, %r9
    add %rax, %r9
    imul $0x3C6EF372, %r10, %r10
    add %r9, %r10
    mov %r10, %rdx
    out %al, $0x80
    xor %rdx, %r11
    imul $0x510E527F, %r11, %r11
    add %r10, %r11
    imul $0x1F83D9AB, %r12, %r12
    add %r11, %r12
    mov %r12, %rax
    out %al, $0x80
    add %rax, %r13
    imul $0x5BE0CD19, %r13, %r13
    add %r12, %r13
    add %fs:0, %r14
    add %gs:0, %r14
    imul $0x428A2F98, %r14, %r14
    add %r13, %r14
    std
    out %al, $0x80
    pushfq
    pop %rax
    cld
    add %rax, %r15
    imul $0x71374491, %r15, %r15
    add %r14, %r15
    mov %rbx, %rax
    xor %rcx, %rax
    xor %rsi, %rax
    xor %rdi, %rax
    xor %rbp, %rax
    xor %r8, %rax
    xor %r9, %rax
    xor %r10, %rax
    xor %r11, %rax
    xor %r12, %rax
    xor %r13, %rax
    xor %r14, %rax
    xor %r15, %rax
    /* fall through */
/* Prints rax as 16 hex digits and a space; clobbers rax, rdx. */
gcs_hex64:
    push %rcx
    push %rbx
    push %rsi
    mov %rax, %rbx
    mov $16, %ecx
    lea gcs_digits(%rip), %rsi
    mov $COM1, %dx
1:  rol $4, %rbx
    mov %ebx, %eax
    and $0xF, %eax
    movzbl (%rsi,%rax), %eax
    out %al, %dx
    loop 1b
    mov $0x20, %al
    out %al, %dx
    pop %rsi
    pop %rbx
    pop %rcx
    ret
/* Prints the four characters in eax, lowest first; clobbers rax, rdx. */
gcs_tag64:
    push %rcx
    mov $4, %ecx
    mov $COM1, %dx
1:  out %al, %dx
    shr $8, %eax
    loop 1b
    pop %rcx
    ret
gcs_nl64:
    mov $COM1, %dx
    mov $0x0A, %al
    out %al, %dx
    ret
/* rax = the MSR numbered ecx; clobbers rdx. */
gcs_rdmsr:
    rdmsr
    shl $32, %rdx
    or %rdx, %rax
    ret
/* Writes eax as 8 hex digits at (%rdi); clobbers rax, rcx, rdx, rsi, rdi. */
gcs_fmt32:
    mov $8, %ecx
    lea gcs_digits(%rip), %rsi
    mov %eax, %edx
1:  rol $4, %edx
    mov %edx, %eax
    and $0xF, %eax
    movzbl (%rsi,%rax), %eax
    mov %al, (%rdi)
    inc %rdi
    loop 1b
    ret
/* Writes a 64-bit interrupt gate for vector ecx -> handler rax into the IDT; clobbers rcx,
 * rdi. */
gcs_gate:
    shl $4, %ecx
    lea gcs_idt(%rip), %rdi
    add %rcx, %rdi
    mov %ax, (%rdi)
    movw $0x08, 2(%rdi)
    movw $0x8E00, 4(%rdi)
    shr $16, %rax
    mov %ax, 6(%rdi)
    shr $16, %rax
    mov %eax, 8(%rdi)
    movl $0, 12(%rdi)
    ret
gcs_pf_handler:                     /* the probe of 0x200000: resume after it */
    add $8, %rsp
    push %rax
    lea gcs_pf_resume(%rip), %rax
    mov %rax, 8(%rsp)
    pop %rax
    iretq
gcs_gp_handler:                     /* only ever injected by the host */
    popq gcs_gp_code(%rip)
    incl gcs_gp_count(%rip)
    iretq
gcs_ext_handler:                    /* likewise */
    incl gcs_ext_count(%rip)
    iretq
gcs_digits:
    .ascii "0123456789abcdef"
    .balign 8
gcs_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF        /* 0x08: 64-bit code */
    .quad 0x00CF9A000000FFFF        /* 0x10: 32-bit code */
    .quad 0x00CF92000000FFFF        /* 0x18: data */
    .quad 0x00CF92005000FFFF        /* 0x20: data based at 0x5000 */
gcs_gdt_end:
gcs_gdt_ptr:
    .short gcs_gdt_end - gcs_gdt - 1
    .quad gcs_gdt - guest_cpustate_start + GCS_BASE
gcs_idt_ptr:
    .short 16 * 0x22 - 1
    .quad gcs_idt - guest_cpustate_start + GCS_BASE
gcs_scratch:
    .skip 16
gcs_ext_count:
    .long 0
gcs_gp_count:
    .long 0
gcs_gp_code:
    .quad 0
gcs_line:
    .ascii "cpustate: ext "
gcs_line_ext:
    .ascii "00000000 gp "
gcs_line_gp:
    .ascii "00000000 code "
gcs_line_code:
    .ascii "00000000\n"
gcs_line_end:
    .balign 16
gcs_idt:
    .skip 16 * 0x22
guest_cpustate_end:
