//! The kernel command line: bad keys and values are refused with a clear message, good ones
//! are honoured.

use castor_tests::contract::{self, QEMU_EXIT_FAIL};
use castor_tests::{Emulator, Outcome, Run};

/// Boots QEMU with `cmdline` and returns the finished run.
fn boot(cmdline: &str, cpus: u32) -> Outcome {
    let run = Run::new(Emulator::qemu()).cpus(cpus).cmdline(cmdline);
    run.start().expect("starting QEMU").wait_exit()
}

/// Asserts the kernel refused its command line with an error line mentioning every word in
/// `mentions`, and exited like a failed self test.
fn assert_refused(outcome: &Outcome, mentions: &[&str]) {
    let error = outcome.expect_line("config error:");
    for word in mentions {
        assert!(error.contains(word), "{error:?} should mention {word:?}");
    }
    outcome.expect_line("refusing to continue");
    assert!(
        outcome.line_with(contract::PASS_MARKER).is_none(),
        "must not run self tests"
    );
    outcome.expect_exit_code(QEMU_EXIT_FAIL);
}

#[test]
fn unknown_key_is_refused_naming_the_accepted_keys() {
    let outcome = boot("bogus=1 selftest=all", 1);
    assert_refused(&outcome, &["bogus", "log", "selftest", "cpus"]);
}

#[test]
fn bad_log_level_is_refused_naming_the_accepted_levels() {
    let outcome = boot("log=loud", 1);
    assert_refused(
        &outcome,
        &["log", "loud", "error", "warn", "info", "debug", "trace"],
    );
}

#[test]
fn zero_cpus_is_refused() {
    let outcome = boot("cpus=0", 1);
    assert_refused(&outcome, &["cpus", "0"]);
}

#[test]
fn cpus_limits_the_started_cpus_and_log_level_is_accepted() {
    let outcome = boot("cpus=2 log=debug selftest=all", 4);
    contract::assert_selftest_pass(&outcome, 2, &[]);
}

#[test]
fn a_key_without_one_it_needs_is_refused_naming_both() {
    let outcome = boot("linkbench=1 selftest=all", 1);
    assert_refused(&outcome, &["'linkbench' needs 'linktest'"]);
}

#[test]
fn contradictory_settings_are_refused_naming_both() {
    let outcome = boot("selftest=all bench=vmexit", 1);
    assert_refused(&outcome, &["'selftest' and 'bench' contradict each other"]);
}
