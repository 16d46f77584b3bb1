//! Castor boots from its GRUB ISO under Bochs (Intel model with VMX) and passes `selftest=all`
//! on one and two CPUs — including every CPU in VMX root operation and the built-in guests run
//! under VT-x with EPT (nothing may be skipped here).

use castor_tests::Emulator;
use castor_tests::contract::boot_selftest_all;

#[test]
fn bochs_iso_one_cpu() {
    boot_selftest_all(Emulator::bochs(), 1, &[]);
}

#[test]
fn bochs_iso_two_cpus() {
    boot_selftest_all(Emulator::bochs(), 2, &[]);
}
