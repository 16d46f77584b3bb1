/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Built-in test guests. They are data in the kernel image (copied into guest RAM by the loader in
 * mod.rs), so they live in .rodata. Each reports over the virtual COM1 and ends through the
 * debug-exit port 0xF4 with a status the self tests check:
 *   guest_long64: 64-bit. With RDI = 0 it checks CPUID's Castor leaf, VMCALL VERSION, CONSOLE_WRITE, an
 *                 unclaimed port (reads 0xFF), the UART scratch register, RDMSR of an emulated
 *                 MSR (PAT), #GP for RDMSR/WRMSR of unknown MSRs, #UD for XSETBV (CPUID hides
 *                 XSAVE), CR4.VMXE hidden, CR0.NE writes shadowed; exits 0x31, or 0x30 + n at the first failed check n. With RDI = 1
 *                 it is hostile (see g64_hostile); with RDI = 2 it tests the virtual timers
 *                 and interrupt controller (see g64_timer); with RDI = 3 it tests events whose
 *                 delivery the host interrupts, and CR8 (see g64_events).
 *   guest_real:   16-bit real mode (unrestricted guest); prints, exits 0x32.
 *   guest_triple: 64-bit; loads an empty IDT and executes UD2: #UD cannot be delivered, nor the
 *                 #DF that follows, so the CPU shuts down (triple fault).
 *   guest_bench:  64-bit; times BENCH_ROUNDS exits each of CPUID, VMCALL VERSION and OUT to an
 *                 unclaimed port with RDTSC, stores the three totals and the round count at
 *                 guest-physical RESULTS; then for the host-side measurements: a marker VMCALL,
 *                 BENCH_ROUNDS CPUIDs, a marker VMCALL, BENCH_ROUNDS OUTs, VMCALLs forever.
 * Loaded at: 64-bit guests 0x100000 (identity paging from the loader, stack below 0x80000),
 * the real-mode guest 0x7C00.
 */
    .set COM1, 0x3F8
    .set DEBUG_EXIT, 0xF4
    /* Where guests store results for the host to read (guests::RESULTS). */
    .set RESULTS, 0x90000
    /* Stack pages of g64_events (guests::EVENT_STACKS). */
    .set EVENT_STACK_A, 0x94000
    .set EVENT_STACK_B, 0x95000

    /* Prints the NUL-terminated string at (%rsi/%si) on COM1; clobbers al, dx, si. */
    .macro PUTS_LOOP
    mov $COM1, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:
    .endm

    .section .rodata.guests, "a"
    .balign 16
    .global guest_long64_start, guest_long64_end
guest_long64_start:
    .code64
    mov $0x80000, %rsp
    /* Own GDT and an IDT whose #UD and #GP handlers note the vector in r9 and skip r10 bytes. */
    lgdt g64_gdt_ptr(%rip)
    mov %rdi, %r15                  /* mode: 0 = checks, 1 = hostile sweep, 2 = timers */
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
/*
 * Hostile mode: every I/O port read and written (8-bit; the debug-exit and COM1 ports are only
 * read), every MSR in the architectural, hypervisor and AMD ranges read and, where the read
 * worked, written back (else written with 0), the upper half of RAM scanned for anything but
 * zeros; the results stored at RESULTS (MSR reads that worked, write-backs that worked, writes
 * of unreadable MSRs that worked, non-zero qwords); then a read just past the end of the 4 MiB
 * of RAM, which Castor must refuse by stopping this guest.
 */
g64_hostile:
    lea g64_hostile_msg(%rip), %rsi
    call g64_puts
    xor %ebx, %ebx
1:  mov %bx, %dx
    in %dx, %al
    cmp $DEBUG_EXIT, %bx
    jb 2f
    cmp $(DEBUG_EXIT + 3), %bx
    jbe 3f
    cmp $COM1, %bx
    jb 2f
    cmp $(COM1 + 7), %bx
    jbe 3f
2:  out %al, %dx
3:  inc %ebx
    cmp $0x10000, %ebx
    jb 1b
    xor %r12d, %r12d                /* MSR reads that worked */
    xor %r13d, %r13d                /* write-backs that worked */
    xor %r14d, %r14d                /* writes of unreadable MSRs that worked */
    mov $2, %r10d                   /* RDMSR and WRMSR are 2 bytes */
    lea g64_msr_ranges(%rip), %rsi
4:  mov (%rsi), %ecx
    mov 4(%rsi), %ebp
    test %ebp, %ebp
    jz 8f
5:  xor %r9d, %r9d
    rdmsr
    test %r9d, %r9d
    jnz 6f
    inc %r12d
    wrmsr
    test %r9d, %r9d
    jnz 7f
    inc %r13d
    jmp 7f
6:  xor %eax, %eax
    xor %edx, %edx
    xor %r9d, %r9d
    wrmsr
    test %r9d, %r9d
    jnz 7f
    inc %r14d
7:  inc %ecx
    cmp %ebp, %ecx
    jb 5b
    add $8, %rsi
    jmp 4b
8:  xor %ebp, %ebp                  /* non-zero qwords in [2 MiB, 4 MiB) */
    mov $0x200000, %rsi
9:  cmpq $0, (%rsi)
    je 10f
    inc %ebp
10: add $8, %rsi
    cmp $0x400000, %rsi
    jb 9b
    mov %r12, RESULTS
    mov %r13, RESULTS + 8
    mov %r14, RESULTS + 16
    mov %rbp, RESULTS + 24
    mov 0x400000, %rax              /* past the end of RAM */
    mov $0x3F, %eax
    out %eax, $DEBUG_EXIT
    hlt
    .balign 4
g64_msr_ranges:
    .long 0, 0x2000, 0x40000000, 0x40000100, 0xC0000000, 0xC0002000, 0xC0010000, 0xC0010100, 0, 0
g64_hostile_msg:
    .asciz "hostile: sweeping every port, MSR and the top of RAM\n"
/*
 * Timer mode: programs the PIC (vectors 0x20-0x2F, only IRQ0 unmasked) and PIT channel 0 at
 * ~1 kHz (count 1193), counts IRQ0 in r11 from an interrupt handler that EOIs; then
 *  - counts ticks during a 50 ms window timed with PIT channel 2 (port 0x61 gate and OUT2),
 *  - runs 20 HLTs, counting how many ticks woke them,
 *  - reads the RTC's year, month and day (BCD, as the BIOS default leaves them) and century,
 * stores (window ticks, HLT wake-ups, ticks during the HLTs, 0xCCYYMMDD) at RESULTS, exits 0x34.
 */
g64_timer:
    lea g64_timer_msg(%rip), %rsi
    call g64_puts
    lea g64_irq0_handler(%rip), %rax
    mov $0x20, %ecx
    call g64_set_gate
    mov $0x11, %al                  /* ICW1: edge, cascade, ICW4 */
    out %al, $0x20
    out %al, $0xA0
    mov $0x20, %al                  /* ICW2: vector bases */
    out %al, $0x21
    mov $0x28, %al
    out %al, $0xA1
    mov $0x04, %al                  /* ICW3: slave on IR2 */
    out %al, $0x21
    mov $0x02, %al
    out %al, $0xA1
    mov $0x01, %al                  /* ICW4: 8086 mode */
    out %al, $0x21
    out %al, $0xA1
    mov $0xFE, %al                  /* OCW1: only IRQ0 */
    out %al, $0x21
    mov $0xFF, %al
    out %al, $0xA1
    mov $0x34, %al                  /* channel 0, lobyte/hibyte, mode 2 */
    out %al, $0x43
    mov $(1193 & 0xFF), %al
    out %al, $0x40
    mov $(1193 >> 8), %al
    out %al, $0x40
    xor %r11d, %r11d
    sti
    mov $200000, %ecx               /* a stretch without exits: only the preemption timer */
4:  loop 4b                         /* (or a host interrupt) can stop it */
    /* 50 ms window on channel 2 (mode 0, 59659 ticks), like Castor's own calibration. */
    in $0x61, %al
    and $0xFC, %al
    out %al, $0x61
    mov %al, %bl
    mov $0xB0, %al
    out %al, $0x43
    mov $(59659 & 0xFF), %al
    out %al, $0x42
    mov $(59659 >> 8), %al
    out %al, $0x42
    mov %r11, %r12
    mov %bl, %al
    or $1, %al
    out %al, $0x61
1:  in $0x61, %al
    test $0x20, %al
    jz 1b
    mov %r11, %r13
    sub %r12, %r13                  /* ticks in the window */
    mov %r13, RESULTS
    xor %r14d, %r14d                /* HLT wake-ups */
    mov %r11, %r12
2:  hlt
    inc %r14
    cmp $20, %r14
    jb 2b
    mov %r11, %r13
    sub %r12, %r13
    mov %r14, RESULTS + 8
    mov %r13, RESULTS + 16
    cli
    xor %ebx, %ebx                  /* 0xCCYYMMDD from CMOS 0x32, 9, 8, 7 */
    lea g64_rtc_regs(%rip), %rsi
    mov $4, %ecx
3:  lodsb
    out %al, $0x70
    in $0x71, %al
    shl $8, %ebx
    mov %al, %bl
    loop 3b
    mov %rbx, RESULTS + 24
    lea g64_timer_done(%rip), %rsi
    call g64_puts
    mov $0x34, %eax
    out %eax, $DEBUG_EXIT
    hlt
g64_irq0_handler:
    inc %r11
    push %rax
    mov $0x20, %al                  /* non-specific EOI */
    out %al, $0x20
    pop %rax
    iretq
g64_rtc_regs:
    .byte 0x32, 0x09, 0x08, 0x07
g64_timer_msg:
    .asciz "timers: PIC, PIT at 1 kHz, HLT and RTC\n"
g64_timer_done:
    .asciz "timers: done\n"
/*
 * Events mode: INT $0x80, then INT3, each executed with RSP at the top of its own page
 * (EVENT_STACK_A, EVENT_STACK_B), which the host write-protects first, so that delivering the
 * event takes a nested page fault: the exit interrupts the delivery. Each handler counts its
 * runs and notes its return RIP. Stores (INT 0x80 runs, 1 if it returned right after the INT,
 * INT3 runs, 1 if it returned right after the INT3) at RESULTS. Then CR8: writes 15 and 1,
 * reading each back (the host checks that its own TPR did not change); exits 0x35, or 0x36 if
 * CR8 read back wrong.
 */
g64_events:
    lea g64_int80_handler(%rip), %rax
    mov $0x80, %ecx
    call g64_set_gate
    lea g64_int3_handler(%rip), %rax
    mov $3, %ecx
    call g64_set_gate
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    mov %rsp, %rbx
    mov $(EVENT_STACK_A + 0x1000), %rsp
    int $0x80
1:  mov $(EVENT_STACK_B + 0x1000), %rsp
    int3
2:  mov %rbx, %rsp
    mov %r11, RESULTS
    lea 1b(%rip), %rax
    xor %ecx, %ecx
    cmp %rax, %r12
    sete %cl
    mov %rcx, RESULTS + 8
    mov %r13, RESULTS + 16
    lea 2b(%rip), %rax
    xor %ecx, %ecx
    cmp %rax, %r14
    sete %cl
    mov %rcx, RESULTS + 24
    mov $15, %eax
    mov %rax, %cr8
    mov %cr8, %rcx
    cmp $15, %rcx
    jne 3f
    mov $1, %eax
    mov %rax, %cr8
    mov %cr8, %rcx
    cmp $1, %rcx
    jne 3f
    mov $0x35, %eax
    out %eax, $DEBUG_EXIT
    hlt
3:  mov $0x36, %eax
    out %eax, $DEBUG_EXIT
    hlt
g64_int80_handler:
    inc %r11
    mov (%rsp), %r12
    iretq
g64_int3_handler:
    inc %r13
    mov (%rsp), %r14
    iretq
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

    .balign 16
    .global guest_real_start, guest_real_end
guest_real_start:
    .code16
    xor %ax, %ax
    mov %ax, %ds
    mov $(0x7C00 + (greal_msg - guest_real_start)), %si
    PUTS_LOOP
    mov $0x32, %eax
    out %eax, $DEBUG_EXIT
    hlt
greal_msg:
    .asciz "guest16: hello from real mode\n"
guest_real_end:

    .balign 16
    .global guest_triple_start, guest_triple_end
guest_triple_start:
    .code64
    lea gtri_msg(%rip), %rsi
    PUTS_LOOP
    lidt gtri_idt(%rip)
    ud2
gtri_idt:
    .short 0
    .quad 0
gtri_msg:
    .asciz "guest-triple: about to triple fault\n"
guest_triple_end:

    .set BENCH_ROUNDS, 2000
    /* rdtsc into r12 (start) / r13 (end); clobbers rax, rdx. */
    .macro TSC reg
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, \reg
    .endm

    .balign 16
    .global guest_bench_start, guest_bench_end
guest_bench_start:
    .code64
    mov $0x80000, %rsp
    TSC %r12
    mov $BENCH_ROUNDS, %r14d
1:  mov $0x40000000, %eax
    cpuid
    dec %r14d
    jnz 1b
    TSC %r13
    sub %r12, %r13
    mov %r13, RESULTS
    TSC %r12
    mov $BENCH_ROUNDS, %r14d
1:  xor %eax, %eax
    vmcall
    dec %r14d
    jnz 1b
    TSC %r13
    sub %r12, %r13
    mov %r13, RESULTS + 8
    TSC %r12
    mov $BENCH_ROUNDS, %r14d
1:  out %al, $0x80
    dec %r14d
    jnz 1b
    TSC %r13
    sub %r12, %r13
    mov %r13, RESULTS + 16
    movq $BENCH_ROUNDS, RESULTS + 24
    /* Host-side phase: marker VMCALL, CPUIDs, marker VMCALL, OUTs, then VMCALLs forever. */
    xor %eax, %eax
    vmcall
    mov $BENCH_ROUNDS, %r14d
1:  mov $0x40000000, %eax
    cpuid
    dec %r14d
    jnz 1b
    xor %eax, %eax
    vmcall
    mov $BENCH_ROUNDS, %r14d
1:  out %al, $0x80
    dec %r14d
    jnz 1b
1:  xor %eax, %eax
    vmcall
    jmp 1b
guest_bench_end:
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
