/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* guest_long64: the APIC mode (RDI = 4) (the guests and their constants: common.S). */
/*
 * APIC mode: the local APIC, the IOAPIC and the ACPI PM registers, the APIC pages reached
 * through MMIO with the MOV and XCHG forms compilers emit. The loader maps only the first GiB,
 * so the guest first points PDPT[3] at its own page directory (APIC_PD) whose entries 502 and
 * 503 map 0xFEC00000 and 0xFEE00000 as uncached 2 MiB pages. Then, storing each result in its
 * RESULTS slot (guests::APIC_SLOTS, selftest/apic.rs):
 *   0, 1  the LAPIC ID and version registers;
 *   2     IOAPIC redirection entry 2 (low) read back after routing IRQ0 (the PIT; the 8259A
 *         masked) to vector 0x30, SVR enabled with spurious vector 0x7F (an XCHG);
 *   3     PIT ticks at 1 kHz through the IOAPIC in a 50 ms window on PIT channel 2, each
 *         handler EOIing to the LAPIC;
 *   4     LAPIC timer ticks (vector 0x40, divide 16, 1 ms periodic) in a 50 ms window;
 *   5     LAPIC one-shot timer ticks (1 ms) in a 10 ms window;
 *   6-8   CR8 raised to 6, a self-IPI of vector 0x50 sent: its runs while held (0), its IRR bit
 *         (1), its runs after CR8 went back to 0 (1, without another exit; slot 16: after
 *         the next exit, a read of PPR);
 *   9, 10 the same with the TPR register (0x60, then 0): runs while held (1), after (2);
 *   11    runs of a self-IPI (ICR shorthand "self", vector 0x60);
 *   12, 13 the PM timer (port 0x608) before and after a 50 ms PIT channel 2 delay;
 *   14    where "RSD PTR " was found scanning 0xE0000-0xFFFFF (0: nowhere);
 *   15    spurious interrupts taken (vector 0x7F);
 *   16    see 6-8;
 *   17, 18 runs of a self-IPI (vector 0x68, sent 4 times) whose handler spins about a million
 *         instructions before its EOI, and of those how many began while another was still
 *         running: an interrupt delivered twice, or with IF clear (4, 0; slot 19 is the
 *         handler's busy flag).
 * Then powers off through PM1a_CNT (SLP_TYP 5, SLP_EN): the run ends with status 0. If that
 * returns, exits 0x37.
 */
    .set APIC_PD, 0x4000
    .set APIC_PDPT, 0x2000
    .set LAPIC, 0xFEE00000
    .set IOAPIC, 0xFEC00000
    .set APIC_MAP_FLAGS, 0x9B         /* present, writable, PWT, PCD, 2 MiB */
g64_apic:
    lea g64_apic_msg(%rip), %rsi
    call g64_puts
    lea g64_apic_pit_handler(%rip), %rax
    mov $0x30, %ecx
    call g64_set_gate
    lea g64_apic_timer_handler(%rip), %rax
    mov $0x40, %ecx
    call g64_set_gate
    lea g64_apic_tpr_handler(%rip), %rax
    mov $0x50, %ecx
    call g64_set_gate
    lea g64_apic_ipi_handler(%rip), %rax
    mov $0x60, %ecx
    call g64_set_gate
    lea g64_apic_spurious_handler(%rip), %rax
    mov $0x7F, %ecx
    call g64_set_gate
    lea g64_apic_long_handler(%rip), %rax
    mov $0x68, %ecx
    call g64_set_gate
    /* Map the APIC pages. */
    mov $APIC_PD, %edi
    xor %eax, %eax
    mov $512, %ecx
    rep stosq
    mov $(IOAPIC | APIC_MAP_FLAGS), %eax
    mov %rax, APIC_PD + 502 * 8
    mov $(LAPIC | APIC_MAP_FLAGS), %eax
    mov %rax, APIC_PD + 503 * 8
    mov $(APIC_PD | 3), %eax
    mov %rax, APIC_PDPT + 3 * 8
    mov %cr3, %rax
    mov %rax, %cr3
    xor %eax, %eax
    mov $20, %ecx
    mov $RESULTS, %edi
    rep stosq
    mov $LAPIC, %ebx
    mov $IOAPIC, %ebp
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    /* ID and version. */
    mov 0x20(%rbx), %eax
    mov %rax, RESULTS
    mov 0x30(%rbx), %eax
    mov %rax, RESULTS + 8
    /* 8259A masked, LAPIC software-enabled, IRQ0 routed through IOAPIC pin 2 to 0x30. */
    mov $0xFF, %al
    out %al, $0x21
    out %al, $0xA1
    mov $0x17F, %ecx
    xchg %ecx, 0xF0(%rbx)
    movl $0x15, (%rbp)
    movl $0, 0x10(%rbp)               /* destination APIC ID 0 */
    movl $0x14, (%rbp)
    mov $0x30, %eax                   /* fixed, physical, edge, active high, unmasked */
    mov %eax, 0x10(%rbp)
    mov 0x10(%rbp), %eax
    mov %rax, RESULTS + 16
    sti
    mov $0x34, %al                    /* PIT channel 0, lobyte/hibyte, mode 2, ~1 kHz */
    out %al, $0x43
    mov $(1193 & 0xFF), %al
    out %al, $0x40
    mov $(1193 >> 8), %al
    out %al, $0x40
    mov %r11, %r8
    mov $59659, %ecx                  /* 50 ms */
    call g64_apic_wait
    mov %r11, %rax
    sub %r8, %rax
    mov %rax, RESULTS + 24
    movl $0x14, (%rbp)
    movl $0x10030, 0x10(%rbp)         /* masked */
    /* LAPIC timer, periodic: divide by 16, 1 ms at 25 MHz. */
    movl $3, 0x3E0(%rbx)
    movl $0x20040, 0x320(%rbx)
    movl $1562, 0x380(%rbx)
    mov %r12, %r8
    mov $59659, %ecx
    call g64_apic_wait
    mov %r12, %rax
    sub %r8, %rax
    mov %rax, RESULTS + 32
    movl $0, 0x380(%rbx)              /* stopped */
    /* One-shot. */
    movl $0x40, 0x320(%rbx)
    mov %r12, %r8
    movl $1562, 0x380(%rbx)
    mov $11932, %ecx                  /* 10 ms */
    call g64_apic_wait
    mov %r12, %rax
    sub %r8, %rax
    mov %rax, RESULTS + 40
    /* CR8 above vector 0x50's class holds it; lowering it lets it in. */
    mov $6, %eax
    mov %rax, %cr8
    movl $0x40050, 0x300(%rbx)        /* fixed, shorthand self */
    mov $1193, %ecx
    call g64_apic_wait
    mov %r13, RESULTS + 48
    mov 0x220(%rbx), %eax             /* IRR bits 64-95 */
    shr $16, %eax
    and $1, %eax
    mov %rax, RESULTS + 56
    xor %eax, %eax
    mov %rax, %cr8
    mov $100, %ecx
1:  pause
    loop 1b
    mov %r13, RESULTS + 64
    mov 0xA0(%rbx), %eax              /* PPR: an exit */
    mov %r13, RESULTS + 128
    /* The same with the TPR register. */
    movl $0x60, 0x80(%rbx)
    movl $0x40050, 0x300(%rbx)
    mov $1193, %ecx
    call g64_apic_wait
    mov %r13, RESULTS + 72
    xor %eax, %eax
    mov %eax, 0x80(%rbx)
    mov $100, %ecx
2:  pause
    loop 2b
    mov %r13, RESULTS + 80
    /* A self-IPI. */
    mov $0x40060, %eax
    mov %eax, 0x300(%rbx)
    mov $100, %ecx
3:  pause
    loop 3b
    mov %r14, RESULTS + 88
    /* Four self-IPIs whose handler runs long with IF clear. */
    mov $4, %edx
6:  mov $0x40068, %eax
    mov %eax, 0x300(%rbx)
    mov $100, %ecx
7:  pause
    loop 7b
    dec %edx
    jnz 6b
    /* The PM timer around 50 ms of PIT channel 2. */
    cli
    mov $0x608, %dx
    in %dx, %eax
    mov %rax, RESULTS + 96
    mov $59659, %ecx
    call g64_apic_wait
    mov $0x608, %dx
    in %dx, %eax
    mov %rax, RESULTS + 104
    /* The RSDP. */
    mov $0xE0000, %esi
    movabs $0x2052545020445352, %rax  /* "RSD PTR " */
4:  cmp %rax, (%rsi)
    je 5f
    add $16, %rsi
    cmp $0x100000, %rsi
    jb 4b
    xor %esi, %esi
5:  mov %rsi, RESULTS + 112
    lea g64_apic_off_msg(%rip), %rsi
    call g64_puts
    mov $0x604, %dx                   /* PM1a_CNT: SLP_TYP 5, SLP_EN */
    mov $((5 << 10) | (1 << 13)), %ax
    out %ax, %dx
    mov $0x37, %eax
    out %eax, $DEBUG_EXIT
    hlt
/* Waits ecx ticks of PIT channel 2 (mode 0, gate on port 0x61, OUT2 polled); clobbers ax. */
g64_apic_wait:
    in $0x61, %al
    and $0xFC, %al
    out %al, $0x61
    mov %al, %ah
    mov $0xB0, %al
    out %al, $0x43
    mov %cl, %al
    out %al, $0x42
    mov %ch, %al
    out %al, $0x42
    mov %ah, %al
    or $1, %al
    out %al, $0x61
1:  in $0x61, %al
    test $0x20, %al
    jz 1b
    ret
g64_apic_pit_handler:
    inc %r11
    push %rax
    mov $LAPIC, %eax
    movl $0, 0xB0(%rax)
    pop %rax
    iretq
g64_apic_timer_handler:
    inc %r12
    push %rax
    push %rcx
    mov $LAPIC, %eax
    xor %ecx, %ecx
    xchg %ecx, 0xB0(%rax)
    pop %rcx
    pop %rax
    iretq
g64_apic_tpr_handler:
    inc %r13
    push %rax
    mov $LAPIC, %eax
    movl $0, 0xB0(%rax)
    pop %rax
    iretq
g64_apic_ipi_handler:
    inc %r14
    push %rax
    mov $LAPIC, %eax
    movl $0, 0xB0(%rax)
    pop %rax
    iretq
g64_apic_long_handler:
    incq RESULTS + 136
    cmpq $0, RESULTS + 152
    je 1f
    incq RESULTS + 144
1:  movq $1, RESULTS + 152
    push %rcx
    mov $1000000, %ecx
2:  dec %ecx                          /* no PAUSE: under QEMU it ends the turn of the CPU loop */
    jnz 2b
    pop %rcx
    movq $0, RESULTS + 152
    push %rax
    mov $LAPIC, %eax
    movl $0, 0xB0(%rax)
    pop %rax
    iretq
g64_apic_spurious_handler:
    incq RESULTS + 120
    iretq
g64_apic_msg:
    .asciz "apic: LAPIC, IOAPIC, PM timer and ACPI through MMIO\n"
g64_apic_off_msg:
    .asciz "apic: powering off\n"
