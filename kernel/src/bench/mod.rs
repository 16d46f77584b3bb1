// SPDX-License-Identifier: MIT OR Apache-2.0
//! Benchmarks, chosen with `bench=` on the command line. They print figures (ratios measured in
//! the same run, since absolute emulator times are noisy); they assert nothing about speed.

mod harvest;
mod vmexit;

use crate::arch::x86_64::machine::ExitStatus;
use crate::config::Bench;
use crate::kprintln;

/// Runs the selected benchmark and reports.
pub fn run(which: Bench) -> ExitStatus {
    let result = match which {
        Bench::VmExit => vmexit::run(),
        Bench::Harvest => harvest::run(),
    };
    match result {
        Ok(()) => {
            kprintln!("CASTOR-BENCH-DONE");
            ExitStatus::Success
        }
        Err(why) => {
            kprintln!("bench: FAILED: {why}");
            ExitStatus::Failure
        }
    }
}
