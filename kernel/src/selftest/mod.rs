// SPDX-License-Identifier: MIT OR Apache-2.0
//! In-kernel self tests, chosen with `selftest=` on the command line.
//!
//! Each test prints `selftest NAME: ok (details)` or `selftest NAME: FAILED: reason`; then a
//! summary line and `CASTOR-SELFTEST-PASS` or `CASTOR-SELFTEST-FAIL`, which the emulator
//! harness in tests/ waits for (and it fails on any missing result).

mod apic;
mod cipher;
mod cpustate;
pub(crate) mod dirty;
mod events;
mod fault;
mod guests;
mod memory;
mod net;
mod paging;
mod smp;
mod svm;
mod timer;
mod vmx;

use alloc::string::String;

use crate::arch::x86_64::machine::ExitStatus;
use crate::arch::x86_64::smp::StartReport;
use crate::bootinfo::BootInfo;
use crate::config::{Config, SelfTest};
use crate::kprintln;
use crate::platform::Platform;

/// What the tests may look at.
pub struct Context<'a> {
    /// Boot configuration.
    pub config: &'a Config,
    /// Boot information.
    pub boot: &'a BootInfo,
    /// Firmware description of the machine.
    pub platform: &'a Platform,
    /// How AP start-up went.
    pub smp: &'a StartReport,
}

/// A test's verdict: details on success, the reason on failure.
pub type Verdict = Result<String, String>;

/// A test's outcome, when a test may not apply to this machine.
pub enum Outcome {
    /// Passed, with details.
    Passed(String),
    /// Failed, with the reason.
    Failed(String),
    /// Not applicable here, with the reason (counted and reported separately).
    Skipped(String),
}

impl From<Verdict> for Outcome {
    fn from(v: Verdict) -> Self {
        match v {
            Ok(details) => Outcome::Passed(details),
            Err(reason) => Outcome::Failed(reason),
        }
    }
}

/// Fails the enclosing test with a formatted reason unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(alloc::format!($($arg)*));
        }
    };
}

/// Runs `test`: every [`SelfTest`] has its arm here, so a test the parser accepts cannot lack
/// one.
fn run_one(test: SelfTest, ctx: &Context<'_>) -> Outcome {
    match test {
        SelfTest::Config => config_test(ctx).into(),
        SelfTest::Alloc => memory::frames(ctx).into(),
        SelfTest::Heap => memory::heap().into(),
        SelfTest::Cipher => cipher::sse2_and_lending().into(),
        SelfTest::Paging => paging::layout().into(),
        SelfTest::Wx => paging::wx().into(),
        SelfTest::Timer => timer::lapic_against_pit().into(),
        SelfTest::Smp => smp::all_cpus_up(ctx)
            .and_then(|up| Ok(alloc::format!("{up}; {}", smp::jobs_run_on_each_ap()?)))
            .into(),
        SelfTest::Vmx => vmx::root_operation().into(),
        SelfTest::Svm => svm::enabled().into(),
        SelfTest::Guests => guests::builtin(),
        SelfTest::Triple => guests::triple_fault(),
        SelfTest::Hostile => guests::hostile(),
        SelfTest::Dirty => dirty::tracking(),
        SelfTest::CpuState => cpustate::save_and_restore(),
        SelfTest::Net => net::two_nics(),
        SelfTest::Panic => fault::panic_on_purpose(),
        // Only returns if the write did not fault.
        SelfTest::Fault => {
            fault::write_to_text();
            Outcome::Failed(String::from("the write to kernel text did not fault"))
        }
        // Only returns if nothing stopped the recursion.
        SelfTest::Stack => Outcome::Failed(alloc::format!(
            "the recursion returned ({})",
            fault::overflow_stack(0)
        )),
        // Only returns if the application processor's recursion did not end it.
        SelfTest::ApStack => fault::overflow_ap_stack(),
    }
}

/// Runs the selected tests in [`SelfTest::ALL`]'s order (the destructive ones last) and
/// reports.
pub fn run(ctx: &Context<'_>) -> ExitStatus {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for test in ctx.config.selftests.iter() {
        let name = test.name();
        match run_one(test, ctx) {
            Outcome::Passed(details) => {
                passed += 1;
                kprintln!("selftest {name}: ok ({details})");
            }
            Outcome::Failed(reason) => {
                failed += 1;
                kprintln!("selftest {name}: FAILED: {reason}");
            }
            Outcome::Skipped(why) => {
                skipped += 1;
                kprintln!("selftest {name}: skipped ({why})");
            }
        }
    }
    kprintln!("selftest summary: {passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        kprintln!("CASTOR-SELFTEST-PASS");
        ExitStatus::Success
    } else {
        kprintln!("CASTOR-SELFTEST-FAIL");
        ExitStatus::Failure
    }
}

/// The command-line parser, as compiled for the kernel target, on the live line and on lines
/// that must be refused.
fn config_test(ctx: &Context<'_>) -> Verdict {
    let line = ctx
        .boot
        .cmdline()
        .map_err(|_| String::from("command line not UTF-8"))?;
    ensure!(
        Config::parse(line).as_ref() == Ok(ctx.config),
        "re-parsing '{line}' differs"
    );
    let c = Config::parse("/boot/castor log=warn cpus=3 selftest=wx")
        .map_err(|e| alloc::format!("{e}"))?;
    ensure!(
        c.log == log::LevelFilter::Warn && c.max_cpus == Some(3),
        "fields wrong: {c:?}"
    );
    ensure!(
        c.selftests.contains(SelfTest::Wx) && !c.selftests.contains(SelfTest::Smp),
        "selftest list wrong"
    );
    let bad = [
        "bogus=1",
        "log=loud",
        "cpus=0",
        "cpus=x",
        "selftest=nope",
        "word",
        "log=warn log=info",
        "linkbench=1",
        "selftest=all bench=vmexit",
    ];
    for line in bad {
        ensure!(Config::parse(line).is_err(), "'{line}' was accepted");
    }
    Ok(alloc::format!(
        "parsed '{line}', {} bad lines refused",
        bad.len()
    ))
}
