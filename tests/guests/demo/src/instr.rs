// SPDX-License-Identifier: MIT OR Apache-2.0
//! The privileged instructions the demo executes from Rust, one small function each (the
//! mode switch and the interrupt entry stubs are in boot.S).

use core::arch::asm;

/// Writes `value` to I/O port `port`.
///
/// # Safety
/// A port write can reprogram any device; the caller must know what `port` is.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller vouches for the port; OUT touches no memory.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack)) };
}

/// Writes the 32-bit `value` to I/O port `port`.
///
/// # Safety
/// As [`outb`].
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller vouches for the port; OUT touches no memory.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack)) };
}

/// Reads a byte from I/O port `port`.
///
/// # Safety
/// A port read can have side effects on the device (e.g. clear a status); the caller must know
/// what `port` is.
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the caller vouches for the port; IN touches no memory.
    unsafe { asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack)) };
    value
}

/// Reads the time-stamp counter (RDTSC; SDM Vol. 2B, RDTSC): allowed at CPL 0 whatever
/// CR4.TSD says, no side effects.
pub fn rdtsc() -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: RDTSC only reads the counter into EDX:EAX.
    unsafe { asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack)) };
    (u64::from(high) << 32) | u64::from(low)
}

/// Masks maskable interrupts (CLI).
pub fn disable_interrupts() {
    // SAFETY: the demo runs at CPL 0, where CLI is allowed; it only delays interrupts.
    unsafe { asm!("cli", options(nomem, nostack)) };
}

/// Unmasks interrupts and halts until one arrives (STI; HLT). STI's one-instruction interrupt
/// shadow (SDM Vol. 3A, 7.8.3) means no interrupt is taken between the two, so a caller that
/// checked its wake-up condition with interrupts masked cannot miss the wake-up.
pub fn enable_interrupts_and_halt() {
    // SAFETY: CPL 0; the IDT is installed before interrupts are first unmasked. Not `nomem`:
    // the interrupt handler writes memory the caller reads afterwards.
    unsafe { asm!("sti", "hlt", options(nostack)) };
}

/// Unmasks interrupts (STI).
pub fn enable_interrupts() {
    // SAFETY: CPL 0; the IDT is installed before interrupts are first unmasked.
    unsafe { asm!("sti", options(nostack)) };
}

/// Halts for good: interrupts masked, HLT in a loop (an NMI would only resume the loop).
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: CPL 0; CLI and HLT change nothing but the CPU's run state.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Loads IDTR with the table of `limit + 1` bytes at `base` (LIDT, SDM Vol. 3A, 6.10).
///
/// # Safety
/// The table must hold valid gate descriptors and stay in place for as long as interrupts or
/// exceptions can happen.
pub unsafe fn load_idt(base: u64, limit: u16) {
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let pointer = Pointer { limit, base };
    // SAFETY: the caller vouches for the table; LIDT only reads the 10-byte pointer.
    unsafe { asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack)) };
}
