// SPDX-License-Identifier: MIT OR Apache-2.0
//! The serial console (COM1, 16550 UART) and the `log` backend writing to it; [`poll_input`]
//! reads what is typed on it, for the guest's own UART.
//!
//! Lines look like `[cpu1 INFO ] message`. Exception and panic reports go through
//! [`emergency`], which does not wait forever for a console lock a faulting CPU may hold.

mod logger;
mod serial;

pub use logger::init as init_logger;
pub use serial::{emergency, flush, init, poll_input, print};

/// Prints a formatted line on the console, without the log prefix (banners, self-test results).
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
