// SPDX-License-Identifier: MIT OR Apache-2.0
//! COM1 through the `uart_16550` crate.

use core::fmt::{self, Write};

use uart_16550::backend::PioBackend;
use uart_16550::spec::registers::LSR;
use uart_16550::{Config, Uart16550};

/// I/O base of COM1.
const COM1: u16 = 0x3F8;

struct Serial(Uart16550<PioBackend>);

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.0.send_bytes_exact(b"\r");
            }
            self.0.send_bytes_exact(&[byte]);
        }
        Ok(())
    }
}

static PORT: spin::Mutex<Option<Serial>> = spin::Mutex::new(None);

/// Programs COM1 for 115200 8N1. Output before this call is dropped.
pub fn init() {
    // SAFETY: 0x3F8..0x3FF is COM1 on PC-compatible machines; only this module touches it.
    let Ok(mut uart) = (unsafe { Uart16550::new_port(COM1) }) else {
        return;
    };
    if uart.init(Config::default()).is_ok() {
        *PORT.lock() = Some(Serial(uart));
    }
}

/// Writes formatted text to the console.
pub fn print(args: fmt::Arguments<'_>) {
    if let Some(port) = PORT.lock().as_mut() {
        let _ = port.write_fmt(args);
    }
}

/// Writes formatted text even if another CPU (or this one, interrupted) holds the console lock:
/// waits a bounded time, then writes regardless. For exception and panic reports only.
pub fn emergency(args: fmt::Arguments<'_>) {
    for _ in 0..1_000_000 {
        if let Some(mut guard) = PORT.try_lock() {
            if let Some(port) = guard.as_mut() {
                let _ = port.write_fmt(args);
            }
            return;
        }
        core::hint::spin_loop();
    }
    // SAFETY: the holder is stuck (it may be this CPU, interrupted mid-line); interleaved
    // characters are preferable to losing the report. The UART is only ever driven through
    // byte-wise register writes, so sharing it cannot corrupt memory.
    unsafe { PORT.force_unlock() };
    if let Some(port) = PORT.lock().as_mut() {
        let _ = port.write_fmt(args);
    }
}

/// Reads bytes typed on the host's COM1 into `buf` without waiting: while the UART has data
/// (LSR bit 0, data ready) and `buf` has room, takes the next byte from the receiver buffer
/// register. Returns how many bytes it read; 0 when nothing was typed, when the console is not
/// initialised, or when another CPU is writing to it (the caller polls again later).
pub fn poll_input(buf: &mut [u8]) -> usize {
    match PORT.try_lock() {
        Some(mut guard) => guard.as_mut().map_or(0, |port| port.0.receive_bytes(buf)),
        None => 0,
    }
}

/// Waits until every byte written so far has left the UART (LSR.TEMT), so nothing is lost when
/// the machine stops right after. Bounded, in case the UART is absent or stuck.
pub fn flush() {
    if let Some(mut guard) = PORT.try_lock()
        && let Some(port) = guard.as_mut()
    {
        for _ in 0..1_000_000 {
            if port.0.lsr().contains(LSR::TRANSMITTER_EMPTY) {
                return;
            }
            core::hint::spin_loop();
        }
    }
}
