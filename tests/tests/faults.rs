//! `selftest=fault` writes to the kernel's read-only text; the exception handler must report
//! the page fault with its error code and registers and halt the machine. `selftest=stack`
//! runs off the kernel stack: the guard page below it must turn that into a reported overflow.

use castor_tests::scrape::hex_after;
use castor_tests::{Emulator, Run};
use std::time::Duration;

#[test]
fn write_to_kernel_text_is_reported_and_halts() {
    // The exception report is expected here: only a panic counts as failing early.
    let run = Run::new(Emulator::qemu())
        .cmdline("selftest=fault")
        .fail_markers(&["PANIC"]);
    let mut run = run.start().expect("starting QEMU");
    run.wait_for("cpu 0 halted")
        .expect("the fault handler halts CPU 0");
    std::thread::sleep(Duration::from_millis(500));
    let outcome = run.stop();
    assert_eq!(
        outcome.exit_code,
        None,
        "the machine must stay halted ({})",
        outcome.summary()
    );

    // The report: from the exception line up to the halt.
    let lines: Vec<&str> = outcome.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains("EXCEPTION #PF (vector 14)"));
    let start = start.expect("an `EXCEPTION #PF (vector 14)` line");
    let end = lines
        .iter()
        .position(|l| l.contains("cpu 0 halted"))
        .expect("halt line");
    assert!(start < end, "the report comes before the halt");
    let report = lines[start..end].join("\n");

    let error = hex_after(&report, "error=0x");
    assert_eq!(
        error & 0b11,
        0b11,
        "a write (W) to a present page (P): error code {error:#x}"
    );
    let rip = hex_after(&report, "RIP=");
    assert_ne!(rip, 0, "RIP");
    let cr2 = hex_after(&report, "CR2=");
    for register in ["RAX=", "RSP=", "R15="] {
        // Panics, naming the register, if the report lacks it.
        hex_after(&report, register);
    }
    // If the self test announces its target, CR2 must be exactly that address.
    if let Some(target) = outcome.line_with("writing to kernel text at ") {
        let address = hex_after(target, "writing to kernel text at ");
        assert_eq!(cr2, address, "CR2 holds the faulting address");
    } else {
        assert_ne!(cr2, 0, "CR2 holds the faulting address");
    }
}

#[test]
fn a_panic_reports_its_location_and_exits_as_a_failure() {
    let run = Run::new(Emulator::qemu())
        .cmdline("selftest=panic")
        .fail_markers(&[]);
    let outcome = run.start().expect("starting QEMU").wait_exit();
    let line = outcome.expect_line("PANIC at ");
    let (_, rest) = line.split_once("PANIC at ").expect("marker");
    let (location, message) = rest.split_once(": ").expect("PANIC at FILE:LINE: message");
    let (file, number) = location.rsplit_once(':').expect("FILE:LINE");
    assert!(file.ends_with(".rs"), "a Rust source file: {line:?}");
    assert!(
        number.parse::<u32>().is_ok_and(|n| n > 0),
        "a line number: {line:?}"
    );
    assert!(!message.trim().is_empty(), "a message: {line:?}");
    outcome.expect_exit_code(castor_tests::contract::QEMU_EXIT_FAIL);
}

#[test]
fn a_stack_overflow_hits_the_guard_page_and_is_reported() {
    overflow_is_reported("stack", 1, 0);
}

/// The pipeline and other jobs run on application processors' stacks: running off one faults
/// in its own guard page, reported for that CPU, as on the bootstrap processor.
#[test]
fn an_application_processors_stack_overflow_hits_its_guard_page_and_is_reported() {
    overflow_is_reported("apstack", 2, 1);
}

/// Boots `cpus` CPUs with `selftest=NAME`, which recurses on CPU `cpu` until its stack runs out:
/// the page fault in the guard page cannot be delivered on the exhausted stack, so a double
/// fault, on its own stack, reports the overflow and halts that CPU.
fn overflow_is_reported(name: &str, cpus: u32, cpu: u32) {
    let run = Run::new(Emulator::qemu())
        .cpus(cpus)
        .cmdline(&format!("selftest={name}"))
        .fail_markers(&["PANIC"]);
    let mut run = run.start().expect("starting QEMU");
    run.wait_for(&format!("cpu {cpu} halted"))
        .unwrap_or_else(|e| panic!("the double-fault handler halts CPU {cpu}: {e}"));
    let outcome = run.stop();
    outcome.expect_line(&format!("selftest {name}: recursing"));
    let report = outcome.expect_line(&format!("EXCEPTION #DF (vector 8) on cpu {cpu}"));
    let overflow = outcome.expect_line(&format!("kernel stack overflow on cpu {cpu}"));
    let registers = outcome.expect_line("CR2=");
    let (cr2, rsp) = (hex_after(registers, "CR2="), hex_after(registers, "RSP="));
    assert_eq!(cr2, hex_after(overflow, "guard page at "), "{overflow}");
    // The faulting access is the stack's own: just below the stack pointer it interrupted.
    assert!(
        cr2 < rsp && rsp - cr2 <= 4096,
        "{report}: CR2 {cr2:#x}, RSP {rsp:#x}"
    );
    assert!(
        outcome
            .line_with(&format!("selftest {name}: FAILED"))
            .is_none(),
        "the recursion returned or ran on"
    );
}
