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
 *                 delivery the host interrupts, and CR8 (see g64_events); with RDI = 4 it uses the
 *                 APICs, PM registers and ACPI tables, then powers off (see g64_apic, apic.S).
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

