// SPDX-License-Identifier: MIT OR Apache-2.0
//! `log` backend: `[cpuN LEVEL] message` lines on the serial console.

use log::{LevelFilter, Log, Metadata, Record};

use super::serial;
use crate::arch::x86_64::percpu;

struct Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            serial::print(format_args!(
                "[cpu{} {:<5}] {}\n",
                percpu::current_index(),
                record.level(),
                record.args()
            ));
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the logger with `level` as the maximum level shown.
pub fn init(level: LevelFilter) {
    // A second call (there is none) would only keep the first logger.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
