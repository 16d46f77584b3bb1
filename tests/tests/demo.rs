//! The fault-tolerance demo guest `castor-demo` (tests/guests/demo/) and its host-side checker
//! ([`castor_tests::demo`]).
//!
//! Booted directly by QEMU (`-kernel`, no Castor) the guest gives the reference behaviour: its
//! step lines are exactly what the host model computes, which proves the checker and the guest
//! agree on the computation. Under Castor (QEMU's TCG with AMD-V, Bochs with VT-x) the guest
//! must print the very same lines: its memory, interrupts and timer behave as on the bare
//! machine. Bad arguments are refused with a clear line and exit status 2.

use castor_tests::accel::Accel;
use castor_tests::contract::{self, GuestEnd, QEMU_EXIT_PASS};
use castor_tests::demo::{self, DemoParams, DemoSummary};
use castor_tests::{Emulator, Outcome, Run, kernel};
use std::path::Path;
use std::time::Duration;

/// The demo's parameters in the QEMU runs.
const QEMU_PARAMS: DemoParams = DemoParams {
    pages: 16,
    span: 256,
    hz: 50,
};
/// Steps in the QEMU runs.
const QEMU_STEPS: u64 = 40;
/// Bochs is slow: fewer, smaller steps.
const BOCHS_PARAMS: DemoParams = DemoParams {
    pages: 8,
    span: 48,
    hz: 50,
};
/// Steps in the Bochs run (several times `span / pages`, so pages are read back repeatedly).
const BOCHS_STEPS: u64 = 20;
/// Guest RAM for the runs under Castor (MiB).
const GUEST_RAM_MIB: u64 = 8;
/// The guest's report of a refused argument.
const GUEST_ERROR: &str = "demo: error: ";
/// QEMU's exit status after the guest wrote `status` to `isa-debug-exit`.
const fn qemu_exit(status: i32) -> i32 {
    (status << 1) | 1
}

fn demo_elf() -> &'static Path {
    kernel::demo().expect("building castor-demo")
}

/// What the guest prints for `params` and `steps`: the header, then one line per step with the
/// host model's chain.
fn reference_output(params: &DemoParams, steps: u64) -> Vec<String> {
    let header = params.header();
    let lines = (0..steps).map(|k| {
        let chain = demo::expected_chain(params, k);
        format!("demo: step={k} chain={chain:016x}")
    });
    std::iter::once(header).chain(lines).collect()
}

/// Asserts that the checker accepts the whole console as one complete run of `steps` steps
/// (its message names the first wrong step), and that `output` (the guest's lines) is exactly
/// the reference: the header and the step lines, nothing else.
fn assert_reference_run(outcome: &Outcome, output: &[&str], params: &DemoParams, steps: u64) {
    let why = outcome.summary();
    let summary = demo::check_released(params, outcome.lines());
    let summary = summary.unwrap_or_else(|violation| panic!("{violation} ({why})"));
    let whole = DemoSummary {
        first: 0,
        last: steps - 1,
        count: steps,
    };
    assert_eq!(summary, whole, "{why}");
    assert_eq!(
        output,
        reference_output(params, steps),
        "the guest's lines ({why})"
    );
}

/// Castor running castor-demo with `args` as its first boot module in `guest_ram` MiB.
fn castor_run(emulator: Emulator, args: &str, guest_ram: u64) -> Run {
    Run::new(emulator)
        .cmdline(&format!("guest=module guest_ram={guest_ram}"))
        .module("guest", demo_elf(), args)
}

/// Asserts that Castor ran the demo with `params` for `steps` steps under `backend`, the guest
/// printed the reference output and exited with status 0, and the machine then ended.
fn assert_castor_run(outcome: &Outcome, params: &DemoParams, steps: u64, backend: &str) {
    let why = outcome.summary();
    outcome.expect_no_timeout();
    assert!(outcome.failure.is_none(), "{why}");
    contract::assert_booted(outcome, 1);
    let start = contract::guest_start(outcome.lines()).expect("a `guest: starting` line");
    assert_eq!(
        (
            start.cmdline.as_str(),
            start.ram_mib,
            start.backend.as_str()
        ),
        (params.args(steps).as_str(), GUEST_RAM_MIB, backend),
        "{why}"
    );
    let output = contract::guest_output(outcome.lines());
    assert_reference_run(outcome, &output, params, steps);
    assert_eq!(
        contract::guest_end(outcome.lines()),
        Some(GuestEnd::Exited(0)),
        "{why}"
    );
    assert!(
        outcome.exit_code.is_some(),
        "the emulator ends by itself ({why})"
    );
    if outcome.emulator == "qemu" {
        outcome.expect_exit_code(QEMU_EXIT_PASS);
    }
}

#[test]
fn qemu_runs_the_demo_without_castor_as_the_reference() {
    let outcome = Run::new(Emulator::qemu())
        .kernel(demo_elf())
        .memory_mib(64)
        .cmdline(&QEMU_PARAMS.args(QEMU_STEPS))
        .fail_markers(&[GUEST_ERROR])
        .timeout(Duration::from_secs(60))
        .start()
        .expect("starting QEMU")
        .wait_exit();
    outcome.expect_no_timeout();
    // Without Castor the serial port carries the guest's lines and nothing else.
    let output: Vec<&str> = outcome.lines().collect();
    assert_reference_run(&outcome, &output, &QEMU_PARAMS, QEMU_STEPS);
    outcome.expect_exit_code(qemu_exit(0));
}

#[test]
fn qemu_castor_runs_the_demo_under_amd_v_like_the_bare_machine() {
    let args = QEMU_PARAMS.args(QEMU_STEPS);
    let outcome = castor_run(Emulator::qemu(), &args, GUEST_RAM_MIB)
        .fail_markers(&["PANIC", GUEST_ERROR])
        .timeout(Duration::from_secs(180))
        .start()
        .expect("starting QEMU")
        .wait_exit();
    // TCG's `-cpu max` offers SVM only; under KVM the host's vendor decides.
    let backend = match Accel::detect().expect("probing KVM") {
        Accel::Tcg => "AMD-V".to_string(),
        Accel::Kvm => contract::guest_start(outcome.lines()).map_or(String::new(), |s| s.backend),
    };
    assert_castor_run(&outcome, &QEMU_PARAMS, QEMU_STEPS, &backend);
}

#[test]
fn bochs_castor_runs_the_demo_under_vt_x_like_the_bare_machine() {
    let args = BOCHS_PARAMS.args(BOCHS_STEPS);
    assert!(
        BOCHS_STEPS > BOCHS_PARAMS.revisit_steps(),
        "pages are read back"
    );
    let outcome = castor_run(Emulator::bochs(), &args, GUEST_RAM_MIB)
        .fail_markers(&["PANIC", GUEST_ERROR])
        .timeout(Duration::from_secs(420))
        .start()
        .expect("starting Bochs")
        .wait_exit();
    assert_castor_run(&outcome, &BOCHS_PARAMS, BOCHS_STEPS, "VT-x");
}

#[test]
fn qemu_demo_refuses_pages_zero() {
    let outcome = Run::new(Emulator::qemu())
        .kernel(demo_elf())
        .cmdline("pages=0 steps=3")
        .timeout(Duration::from_secs(60))
        .start()
        .expect("starting QEMU")
        .wait_exit();
    outcome.expect_no_timeout();
    let lines: Vec<&str> = outcome.lines().collect();
    assert_eq!(
        lines,
        ["demo: error: bad argument 'pages=0': must be at least 1"],
        "{}",
        outcome.summary()
    );
    outcome.expect_exit_code(qemu_exit(2));
}

#[test]
fn qemu_castor_demo_refuses_a_span_larger_than_guest_ram() {
    // 2 MiB of guest RAM cannot hold 1024 pages (4 MiB) above the image.
    let args = "span=1024 pages=8 steps=3";
    let outcome = castor_run(Emulator::qemu(), args, 2)
        .fail_markers(&["PANIC"])
        .timeout(Duration::from_secs(120))
        .start()
        .expect("starting QEMU")
        .wait_exit();
    let why = outcome.summary();
    outcome.expect_no_timeout();
    let output = contract::guest_output(outcome.lines());
    let [refusal] = output[..] else {
        panic!("one line of guest output expected: {output:#?} ({why})");
    };
    let prefix = "demo: error: bad argument 'span=1024': 1024 pages from 0x";
    assert!(refusal.starts_with(prefix), "{refusal:?}");
    // Castor's loader reports RAM up to 2 MiB (mem_upper = 1024 KiB).
    assert!(
        refusal.ends_with(" do not fit in guest RAM, which ends at 0x200000"),
        "{refusal:?}"
    );
    assert_eq!(
        contract::guest_end(outcome.lines()),
        Some(GuestEnd::Exited(2)),
        "{why}"
    );
    assert_eq!(
        demo::check_released(
            &DemoParams {
                pages: 8,
                span: 1024,
                hz: 20
            },
            outcome.lines()
        ),
        Err(demo::DemoViolation::GuestError {
            text: refusal.to_string(),
            line: outcome.lines().position(|l| l.ends_with(refusal)).unwrap() + 1,
        }),
        "the checker reports the refusal"
    );
}
