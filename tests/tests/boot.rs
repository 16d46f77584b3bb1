//! Castor boots and passes `selftest=all` under QEMU: `-kernel` (Multiboot 1) and the GRUB ISO
//! (Multiboot 2), on one and several CPUs; without self tests it reports ready and idles.
//! QEMU's TCG CPU offers AMD-V (SVM with nested paging, no next-RIP): the guest tests run
//! there under Castor's SVM back end, nothing skipped.
//! (Bochs boots are in `bochs.rs`, so the CPU-hungry Bochs runs do not share the host with
//! these timing-sensitive QEMU runs.)

use castor_tests::contract::{self, READY_MARKER, boot_selftest_all};
use castor_tests::{Emulator, Run};

#[test]
fn qemu_kernel_one_cpu() {
    boot_selftest_all(Emulator::qemu(), 1, &[]);
}

#[test]
fn qemu_kernel_four_cpus() {
    boot_selftest_all(Emulator::qemu(), 4, &[]);
}

#[test]
fn qemu_iso_two_cpus() {
    boot_selftest_all(Emulator::qemu_iso(), 2, &[]);
}

#[test]
fn without_selftest_the_kernel_reports_ready_and_idles() {
    let mut run = Run::new(Emulator::qemu())
        .cpus(2)
        .start()
        .expect("starting QEMU");
    run.wait_for(READY_MARKER).expect("Castor ready");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let outcome = run.stop();
    assert_eq!(
        outcome.exit_code,
        None,
        "the kernel must idle, not exit ({})",
        outcome.summary()
    );
    contract::assert_booted(&outcome, 2);
    assert!(
        outcome.line_with(contract::PASS_MARKER).is_none(),
        "no self tests were asked for"
    );
}
