//! Benchmarks: figures printed, not timed tests (absolute emulator times are noisy; the ratios
//! come from one run). Run with `--nocapture` to see them; `scripts/test` does.
//!
//! VM-exit round trips under Bochs' VT-x and QEMU's SVM: CPUID (absorbed in the VMX back end), VMCALL and an
//! I/O exit (through the generic loop), timed inside the guest and on the host; VMCALL also
//! through a bare hypercall-and-resume loop, so the ratio shows what Castor's exit path costs. Bochs' TSC counts instructions, so
//! under Bochs these figures are instruction counts.

use castor_tests::bochs::Bochs;
use castor_tests::{Emulator, Run};
use std::time::Duration;

/// The numbers following each `key` in `line`.
fn figures<const N: usize>(line: &str, keys: [&str; N]) -> [f64; N] {
    keys.map(|key| {
        let (_, rest) = line
            .split_once(key)
            .unwrap_or_else(|| panic!("no '{key}' in '{line}'"));
        let number: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        number
            .parse()
            .unwrap_or_else(|_| panic!("no number after '{key}' in '{line}'"))
    })
}

#[test]
fn bench_vmexit_round_trips_under_bochs_vtx() {
    // VM-entry failure reporting would log every exit and slow the run: off for benchmarks.
    vmexit_round_trips(Emulator::Bochs(
        Bochs::default().config(["error: action=ignore"]),
    ));
}

#[test]
fn bench_vmexit_round_trips_under_qemu_svm() {
    vmexit_round_trips(Emulator::qemu());
}

fn vmexit_round_trips(emulator: Emulator) {
    let run = Run::new(emulator)
        .cpus(1)
        .cmdline("bench=vmexit")
        .timeout(Duration::from_secs(300));
    let outcome = run.start().expect("starting the emulator").wait_exit();
    outcome.expect_line("CASTOR-BENCH-DONE");
    let guest = outcome.expect_line("(guest TSC ticks per exit").to_string();
    let per_exit = outcome.expect_line("(host TSC ticks per exit").to_string();
    let host = outcome
        .expect_line("(host TSC ticks per hypercall round trip")
        .to_string();
    let [cpuid, vmcall, io] = figures(&guest, ["cpuid", "hypercall", "io-out"]);
    let [host_cpuid, host_io, host_vmcall] = figures(&per_exit, ["cpuid", "io-out", "hypercall"]);
    let [generic, bare, ratio] = figures(&host, ["generic loop", "resume loop", "ratio"]);
    println!("{guest}\n{per_exit}\n{host}");
    assert!(
        host_cpuid > 0.0 && host_io > 0.0,
        "host-side figures missing: {per_exit}"
    );
    assert_eq!(
        host_vmcall, generic,
        "one VMCALL figure: {per_exit} / {host}"
    );
    for (name, v) in [
        ("cpuid", cpuid),
        ("vmcall", vmcall),
        ("io", io),
        ("generic", generic),
        ("bare", bare),
    ] {
        assert!(v > 0.0, "{name} figure missing: {guest} / {host}");
    }
    assert!(
        bare < generic,
        "the bare loop does strictly less per exit: {host}"
    );
    assert!(
        (ratio - generic / bare).abs() < 0.05,
        "ratio consistent with its figures: {host}"
    );
}

// Dirty-page harvests: the same 256 pages written by a guest on tracked RAM of 8 and 128 MiB,
// harvested by walking the nested page table (cost follows the RAM size) and, under VT-x, by
// draining the page-modification log (cost follows the dirty pages). Both must find exactly
// the pages written.

#[test]
fn bench_harvest_under_bochs_vtx() {
    harvest(
        Emulator::Bochs(Bochs::default().config(["error: action=ignore"])),
        true,
    );
}

#[test]
fn bench_harvest_under_qemu_svm() {
    harvest(Emulator::qemu(), false);
}

/// Checks one harvest figure line: what was found equals what was written, ratio consistent.
fn harvest_line(line: &str) {
    let [written, small, big, ratio, found_small, found_big] = figures(
        line,
        [
            "written",
            "small",
            "big",
            "ratio",
            "found-small",
            "found-big",
        ],
    );
    assert_eq!(written, 256.0, "{line}");
    assert_eq!(
        (found_small, found_big),
        (written, written),
        "every written page harvested, no other: {line}"
    );
    assert!(small > 0.0 && big > 0.0, "figures missing: {line}");
    assert!(
        (ratio - big / small).abs() < 0.05,
        "ratio consistent with its figures: {line}"
    );
}

fn harvest(emulator: Emulator, pml: bool) {
    let run = Run::new(emulator)
        .cpus(1)
        .cmdline("bench=harvest")
        .timeout(Duration::from_secs(600));
    let outcome = run.start().expect("starting the emulator").wait_exit();
    outcome.expect_line("CASTOR-BENCH-DONE");
    let line = |what: &str| {
        outcome
            .lines()
            .find(|l| l.contains("bench harvest") && l.contains(what))
            .unwrap_or_else(|| panic!("no harvest {what} line ({})", outcome.summary()))
            .to_string()
    };
    let walk = line(" walk (");
    harvest_line(&walk);
    let log = line(" pml");
    println!("{walk}\n{log}");
    if pml {
        harvest_line(&log);
    } else {
        assert!(log.contains("no hardware dirty log"), "{log}");
    }
}
