// SPDX-License-Identifier: MIT OR Apache-2.0
//! The demo's console: the 16550 UART on COM1, polled (no UART interrupts), and the `say!`
//! macro that prints one `demo: ...` line.

use crate::instr;
use core::fmt;

/// COM1's base port.
const COM1: u16 = 0x3F8;
/// Line status register offset and its "transmitter holding register empty" bit.
const LSR: u16 = 5;
const LSR_THRE: u8 = 0x20;

/// Programs COM1 for 115200 baud, 8N1, FIFOs on, no interrupts (16550 datasheet: divisor
/// latch through LCR.DLAB, then LCR = 8N1). Idempotent.
pub fn init() {
    const SETUP: [(u16, u8); 7] = [
        (1, 0x00), // IER: no interrupts
        (3, 0x80), // LCR: DLAB, to reach the divisor latch
        (0, 0x01), // DLL: divisor 1 = 115200 baud
        (1, 0x00), // DLM
        (3, 0x03), // LCR: 8 data bits, no parity, 1 stop bit
        (2, 0x07), // FCR: FIFOs on and cleared
        (4, 0x03), // MCR: DTR, RTS
    ];
    for (offset, value) in SETUP {
        // SAFETY: COM1's registers; programming the UART affects nothing else.
        unsafe { instr::outb(COM1 + offset, value) };
    }
}

/// Writes to COM1 once [`init`] has programmed it.
struct Com1;

impl Com1 {
    fn put(&mut self, byte: u8) {
        // SAFETY: reading COM1's line status has no side effect that matters here.
        while unsafe { instr::inb(COM1 + LSR) } & LSR_THRE == 0 {
            core::hint::spin_loop();
        }
        // SAFETY: COM1's transmit holding register, empty as just checked.
        unsafe { instr::outb(COM1, byte) };
    }
}

impl fmt::Write for Com1 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(|b| self.put(b));
        Ok(())
    }
}

/// Prints `demo: <args>` and a newline on COM1.
pub fn say_line(args: fmt::Arguments<'_>) {
    use fmt::Write as _;
    let mut com1 = Com1;
    // Writing to the UART cannot fail.
    let _ = writeln!(com1, "demo: {args}");
}

/// `say!("step={k}")` prints `demo: step=...` on its own line.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::say_line(format_args!($($arg)*))
    };
}
pub(crate) use say;
