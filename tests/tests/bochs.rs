//! Castor boots from its GRUB ISO under Bochs (Intel model with VMX) and passes `selftest=all`
//! on one and two CPUs — including every CPU in VMX root operation and the built-in guests run
//! under VT-x with EPT (nothing may be skipped here).

use castor_tests::Emulator;
use castor_tests::bochs::Bochs;
use castor_tests::contract::boot_selftest_all;

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
