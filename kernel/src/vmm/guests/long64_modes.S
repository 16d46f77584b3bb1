/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* guest_long64: the hostile (RDI = 1), timer (RDI = 2) and events (RDI = 3) modes (the guests and their constants: common.S). */
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
