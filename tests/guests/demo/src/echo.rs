// SPDX-License-Identifier: MIT OR Apache-2.0
//! Echo mode (`echo=1`): proves that bytes typed on COM1 reach the guest and raise IRQ4.
//!
//! It enables COM1's receive interrupt (FIFOs at trigger level 1, IER.ERBFI, MCR.OUT2, which
//! gates the UART's interrupt output on a PC), unmasks only IRQ4 on the 8259A, prints `demo:
//! echo ready`, then halts until an interrupt, drains the receiver while LSR.DR is set and
//! collects a line. At each `\n` it prints `demo: got '<line>' (irq4 <N>)`, N being the IRQ4s
//! taken so far ([`IRQ4S`], counted by boot.S's IRQ4 stub); after the line `quit` it exits with
//! status 0. `\r` is dropped; a line longer than [`MAX_LINE`] bytes is cut there.

use crate::console::say;
use crate::{EXIT_DONE, exit, instr, timer};
use core::sync::atomic::{AtomicU64, Ordering};

/// IRQ4s taken so far (incremented by boot.S's IRQ4 stub).
pub static IRQ4S: AtomicU64 = AtomicU64::new(0);

/// COM1's base port and register offsets (16550 datasheet).
const COM1: u16 = 0x3F8;
const IER: u16 = 1;
const FCR: u16 = 2;
const MCR: u16 = 4;
const LSR: u16 = 5;
/// LSR: data ready.
const LSR_DR: u8 = 0x01;
/// The longest line kept.
const MAX_LINE: usize = 64;

/// Runs echo mode; never returns.
pub fn run() -> ! {
    for (offset, value) in [
        (FCR, 0x07), // FIFOs on and cleared, receive trigger level 1
        (MCR, 0x0B), // DTR, RTS, OUT2
        (IER, 0x01), // ERBFI: received data available
    ] {
        // SAFETY: COM1's registers; the IDT handles IRQ4 before it is unmasked below.
        unsafe { instr::outb(COM1 + offset, value) };
    }
    timer::program_pics(0xEF);
    say!("echo ready");
    let mut line = [0u8; MAX_LINE];
    let mut len = 0;
    loop {
        instr::disable_interrupts();
        // SAFETY: reading LSR has no side effect that matters here.
        if unsafe { instr::inb(COM1 + LSR) } & LSR_DR == 0 {
            // Masked since the check, so the IRQ4 that a byte arriving now raises wakes us.
            instr::enable_interrupts_and_halt();
            continue;
        }
        instr::enable_interrupts();
        // SAFETY: LSR.DR says the receiver holds a byte; reading RBR takes it.
        while unsafe { instr::inb(COM1 + LSR) } & LSR_DR != 0 {
            // SAFETY: as above.
            let byte = unsafe { instr::inb(COM1) };
            match byte {
                b'\r' => {}
                b'\n' => {
                    let text = core::str::from_utf8(&line[..len]).unwrap_or("<not UTF-8>");
                    let irqs = IRQ4S.load(Ordering::Relaxed);
                    say!("got '{text}' (irq4 {irqs})");
                    if text == "quit" {
                        exit(EXIT_DONE)
                    }
                    len = 0;
                }
                _ if len < MAX_LINE => {
                    line[len] = byte;
                    len += 1;
                }
                _ => {}
            }
        }
    }
}
