//! Castor boots from its GRUB ISO under Bochs and passes `selftest=all`: Intel models with VMX
//! on one and two CPUs, and the AMD ryzen model with SVM — every CPU with its back end on and
//! the built-in and hostile guests run under it (nothing may be skipped here).

use castor_tests::bochs::Bochs;
use castor_tests::contract::{SELFTESTS, assert_selftests_pass, boot_selftest_all, boot_selftests};
use castor_tests::{Emulator, Run};

#[test]
fn bochs_iso_one_cpu() {
    boot_selftest_all(Emulator::bochs(), 1, &[]);
}

#[test]
fn bochs_iso_two_cpus() {
    boot_selftest_all(Emulator::bochs(), 2, &[]);
}

#[test]
fn bochs_iso_tigerlake_model() {
    // A second Intel model with a different VMCS revision id (0x4 instead of 0x2b): nothing
    // about VMX may be hard-coded.
    boot_selftest_all(Emulator::Bochs(Bochs::model("tigerlake")), 1, &[]);
}

#[test]
fn bochs_iso_ryzen_model() {
    // AMD: SVM with nested paging and next-RIP (QEMU's TCG has none), so the same self tests
    // exercise the AMD-V back end's other path. All but `triple`: Bochs 2.7's SVM resets the
    // whole machine on a guest triple fault instead of taking the SHUTDOWN intercept (an
    // emulator limitation; QEMU's SVM and Bochs' VMX report it, and are tested).
    let tests: Vec<&str> = SELFTESTS
        .iter()
        .copied()
        .filter(|t| *t != "triple")
        .collect();
    boot_selftests(Emulator::Bochs(Bochs::model("ryzen")), 1, &tests);
}

#[test]
fn bochs_dirty_tracking_uses_pml() {
    // skylake_x offers page-modification logging with EPT dirty flags: the dirty self test must
    // use the log (past a full one) and find it equal to the nested table walk.
    let run = Run::new(Emulator::bochs())
        .cpus(1)
        .cmdline("selftest=dirty");
    let outcome = run.start().expect("starting Bochs").wait_exit();
    assert_selftests_pass(&outcome, 1, &["dirty"], &[]);
    let line = outcome.expect_line("selftest dirty: ok");
    assert!(
        line.contains("PML log equal to the table walk") && line.contains("through a full log"),
        "{line}"
    );
}
