//! W^X: no kernel mapping is both writable and executable, by the kernel's own audit and by
//! QEMU's view of the live page tables.

use castor_tests::contract::{self, PASS_MARKER, QEMU_EXIT_PASS, READY_MARKER};
use castor_tests::{Emulator, Run};

#[test]
fn the_wx_selftest_audits_every_mapping() {
    let run = Run::new(Emulator::qemu()).cmdline("selftest=wx");
    let outcome = run.start().expect("starting QEMU").wait_exit();
    let results = contract::selftest_results(outcome.lines());
    assert_eq!(
        results,
        [("wx".to_string(), contract::Verdict::Ok)],
        "only the wx self test runs, and passes"
    );
    let (checked, wx) = contract::wx_audit(outcome.lines()).expect("a `wx audit:` line");
    assert!(checked > 0, "the audit must check some mappings");
    assert_eq!(wx, 0, "writable+executable mappings");
    assert_eq!(contract::selftest_summary(outcome.lines()), Some((1, 0, 0)));
    outcome.expect_line(PASS_MARKER);
    outcome.expect_exit_code(QEMU_EXIT_PASS);
}

#[test]
fn qemu_sees_no_writable_executable_mapping() {
    let mut run = Run::new(Emulator::qemu()).start().expect("starting QEMU");
    run.wait_for(READY_MARKER).expect("Castor ready");
    let mappings = run.info_tlb().expect("info tlb");
    let outcome = run.stop();
    assert!(
        !mappings.is_empty(),
        "info tlb listed no mappings ({})",
        outcome.summary()
    );
    let bad: Vec<_> = mappings
        .iter()
        .filter(|m| m.is_writable_executable())
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} mappings are W+X: {bad:#x?}",
        bad.len(),
        mappings.len()
    );
}
