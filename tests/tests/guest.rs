//! Castor runs an unmodified Multiboot (v1) guest kernel from its first boot module
//! (`guest=module`): the test guest `castor-mbtest` (tests/guests/mbtest/) reports its command
//! line and memory information on its serial port and exits with the `status=` from its command
//! line, which Castor reports and passes on, and the boot modules it is given after it. A module
//! that is not a kernel Castor can boot is refused.
//! `scripts/run --guest` is checked end to end through the `castor-run` binary.
//!
//! Under Bochs (Intel model) the guest runs under VT-x; under QEMU's TCG (`-cpu max`: SVM
//! without next-RIP) under AMD-V, with the same expectations.

use castor_tests::accel::Accel;
use castor_tests::bochs::Bochs;
use castor_tests::contract::{self, GuestEnd, QEMU_EXIT_PASS};
use castor_tests::{Emulator, Outcome, Run, kernel};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Guest RAM for the test runs (MiB).
const GUEST_RAM_MIB: u64 = 8;
/// The guest's command line in the harness tests.
const GUEST_ARGS: &str = "status=7 hello=world";

fn mbtest() -> &'static Path {
    kernel::mbtest().expect("building castor-mbtest")
}

/// Castor with `guest=module guest_ram=8` and castor-mbtest as its first boot module.
fn mbtest_run(emulator: Emulator) -> Run {
    Run::new(emulator)
        .cmdline(&format!("guest=module guest_ram={GUEST_RAM_MIB}"))
        .module("guest", mbtest(), GUEST_ARGS)
}

/// Asserts that Castor ran castor-mbtest with [`GUEST_ARGS`] and [`GUEST_RAM_MIB`] and
/// reported its exit with status 7, and that the machine then ended by itself.
fn assert_mbtest_exited(outcome: &Outcome, backend: &str) {
    let why = outcome.summary();
    outcome.expect_no_timeout();
    assert!(
        outcome.exit_code.is_some(),
        "the emulator must exit by itself ({why})"
    );
    contract::assert_booted(outcome, 1);

    let start = contract::guest_start(outcome.lines()).expect("a `guest: starting` line");
    let bytes = std::fs::metadata(mbtest()).expect("castor-mbtest").len();
    assert_eq!(
        start,
        contract::GuestStart {
            cmdline: GUEST_ARGS.into(),
            bytes,
            ram_mib: GUEST_RAM_MIB,
            backend: backend.into(),
        },
        "{why}"
    );

    // Castor's loader: 639 KiB of low memory below the EBDA, RAM from 1 MiB to the top.
    let upper_kib = (GUEST_RAM_MIB - 1) * 1024;
    let expected = [
        "mbtest: hello from a Multiboot guest".to_string(),
        format!("mbtest: cmdline '{GUEST_ARGS}'"),
        format!("mbtest: mem_upper {upper_kib} KiB"),
        format!("mbtest: mmap 4 entries, {} KiB available", 639 + upper_kib),
        "mbtest: exit status 7".to_string(),
    ];
    assert_eq!(
        contract::guest_output(outcome.lines()),
        expected,
        "the guest's serial output, each line prefixed [guest] ({why})"
    );
    assert_eq!(
        contract::guest_end(outcome.lines()),
        Some(GuestEnd::Exited(7)),
        "`guest exited with status 7` ({why})"
    );

    // In order: start, the guest's lines, the verdict; nothing after but Castor's exit.
    let lines: Vec<&str> = outcome.lines().collect();
    let at = |what: &str, pred: &dyn Fn(&str) -> bool| {
        let found = lines.iter().position(|l| pred(l));
        found.unwrap_or_else(|| panic!("no {what} line"))
    };
    let started = at("start", &|l| l.contains(contract::GUEST_STARTING));
    let hello = at("hello", &|l| l.contains("mbtest: hello"));
    let exited = at("exit", &|l| GuestEnd::parse(l).is_some());
    assert!(started < hello && hello < exited, "order of {lines:#?}");
    assert!(
        outcome.line_with("PANIC").is_none(),
        "Castor panicked ({why})"
    );
    if outcome.emulator == "qemu" {
        outcome.expect_exit_code(QEMU_EXIT_PASS);
    }
}

#[test]
fn bochs_runs_a_multiboot_guest_kernel() {
    let outcome = mbtest_run(Emulator::bochs())
        .start()
        .expect("starting Bochs")
        .wait_exit();
    assert_mbtest_exited(&outcome, "VT-x");
}

#[test]
fn bochs_ryzen_runs_a_multiboot_guest_kernel_under_amd_v() {
    // SVM with next-RIP, the path QEMU's TCG (no next-RIP) does not take.
    let outcome = mbtest_run(Emulator::Bochs(Bochs::model("ryzen")))
        .start()
        .expect("starting Bochs")
        .wait_exit();
    assert_mbtest_exited(&outcome, "AMD-V");
}

/// A deterministic 8 KiB of noise holding no Multiboot header magic.
fn noise_file() -> PathBuf {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..8192)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let magic = 0x1bad_b002_u32.to_le_bytes();
    assert!(!bytes.windows(4).any(|w| w == magic), "noise with a magic");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("castor-guest-noise.bin");
    std::fs::write(&path, bytes).expect("writing the noise module");
    path
}

#[test]
fn bochs_refuses_a_module_that_is_not_a_multiboot_kernel() {
    let outcome = Run::new(Emulator::bochs())
        .cmdline("guest=module")
        .module("guest", noise_file(), "junk=1")
        .start()
        .expect("starting Bochs")
        .wait_exit();
    let why = outcome.summary();
    outcome.expect_no_timeout();
    assert!(
        outcome.exit_code.is_some(),
        "the emulator must exit by itself ({why})"
    );
    let line = outcome.expect_line("guest: cannot load 'junk=1': ");
    let (_, reason) = line.split_once("'junk=1': ").expect("the marker");
    assert!(!reason.trim().is_empty(), "a reason: {line:?}");
    assert!(
        matches!(
            contract::guest_end(outcome.lines()),
            Some(GuestEnd::CannotLoad(_))
        ),
        "the refusal is Castor's last word on the guest ({why})"
    );
    assert!(
        contract::guest_start(outcome.lines()).is_none(),
        "nothing was started ({why})"
    );
    assert!(contract::guest_output(outcome.lines()).is_empty());
    // Bochs always exits with status 1; castor-run's judgement reads the console.
    let end = castor_tests::cli::RunEnd {
        emulator: outcome.emulator,
        exit_code: outcome.exit_code,
        timed_out: outcome.timed_out,
        elapsed: outcome.elapsed,
        serial: &outcome.serial,
    };
    let verdict = castor_tests::cli::judge(&end, true);
    assert_eq!(verdict.code, 1, "{verdict:?}");
}

/// A 64-byte Multiboot (a.out kludge) kernel at 1 MiB that loads an empty IDT and executes
/// INT3 at 0x100027: #GP, #DF, triple fault.
fn triple_fault_kernel() -> PathBuf {
    const MAGIC: u32 = 0x1bad_b002;
    const FLAGS: u32 = 1 << 16;
    const BASE: u32 = 0x10_0000;
    let header = [
        MAGIC,
        FLAGS,
        MAGIC.wrapping_add(FLAGS).wrapping_neg(),
        BASE,        // header_addr
        BASE,        // load_addr
        0,           // load_end_addr: the whole file
        0,           // bss_end_addr: no bss
        BASE + 0x20, // entry_addr
    ];
    let mut image: Vec<u8> = header.iter().flat_map(|w| w.to_le_bytes()).collect();
    image.resize(0x20, 0);
    image.extend([0x0f, 0x01, 0x1d]); // lidt [BASE + 0x30] (six zero bytes)
    image.extend((BASE + 0x30).to_le_bytes());
    image.extend([0xcc, 0xf4]); // int3 at BASE + 0x27; hlt
    image.resize(0x40, 0);
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("castor-guest-triple-fault.bin");
    std::fs::write(&path, image).expect("writing the triple-fault kernel");
    path
}

#[test]
fn bochs_stops_a_guest_that_triple_faults_and_dumps_its_registers() {
    let outcome = Run::new(Emulator::bochs())
        .cmdline("guest=module guest_ram=2")
        .module("guest", triple_fault_kernel(), "crash=1")
        .fail_markers(&["PANIC"])
        .start()
        .expect("starting Bochs")
        .wait_exit();
    let why = outcome.summary();
    outcome.expect_no_timeout();
    assert!(
        outcome.exit_code.is_some(),
        "the emulator must exit by itself ({why})"
    );
    let start = contract::guest_start(outcome.lines()).expect("a `guest: starting` line");
    assert_eq!((start.cmdline.as_str(), start.bytes), ("crash=1", 64));
    let Some(GuestEnd::Stopped(reason)) = contract::guest_end(outcome.lines()) else {
        panic!("expected `guest stopped: <reason>` ({why})");
    };
    assert!(!reason.trim().is_empty(), "a reason ({why})");
    // The register dump follows, prefixed like guest output.
    let output = contract::guest_output(outcome.lines());
    let stop = output
        .iter()
        .position(|l| l.starts_with(contract::GUEST_STOPPED));
    let dump = &output[stop.map_or(output.len(), |i| i + 1)..];
    let rip = dump
        .iter()
        .find(|l| l.to_ascii_lowercase().contains("rip="));
    let rip = rip.unwrap_or_else(|| panic!("no RIP= in the register dump {dump:#?} ({why})"));
    assert!(rip.contains("100027"), "RIP at the INT3: {rip:?}");
    let end = castor_tests::cli::RunEnd {
        emulator: outcome.emulator,
        exit_code: outcome.exit_code,
        timed_out: outcome.timed_out,
        elapsed: outcome.elapsed,
        serial: &outcome.serial,
    };
    let verdict = castor_tests::cli::judge(&end, true);
    assert_eq!(verdict.code, 1, "{verdict:?}");
    assert!(verdict.message.starts_with("Castor stopped the guest"));
}

/// QEMU boots the module through `-initrd "guest ARGS"`. Without VT-x or (for now) AMD-V
/// support Castor must refuse cleanly; with it the guest runs as under Bochs.
#[test]
fn qemu_runs_the_guest_under_amd_v() {
    let outcome = mbtest_run(Emulator::qemu())
        .start()
        .expect("starting QEMU")
        .wait_exit();
    // TCG's `-cpu max` offers SVM without next-RIP (Castor decodes instruction lengths); under
    // KVM the host's own vendor decides.
    let backend = match Accel::detect().expect("probing KVM") {
        Accel::Tcg => "AMD-V",
        Accel::Kvm => contract::guest_start(outcome.lines()).map_or("AMD-V", |s| {
            if s.backend == "VT-x" { "VT-x" } else { "AMD-V" }
        }),
    };
    assert_mbtest_exited(&outcome, backend);
    outcome.expect_exit_code(QEMU_EXIT_PASS);
}

/// `scripts/run --single --emulator bochs --guest FILE --guest-args ARGS` (its `castor-run`
/// binary) exits with the guest's status.
#[test]
fn castor_run_exits_with_the_guest_status() {
    castor_run_guest("bochs");
}

#[test]
fn castor_run_exits_with_the_guest_status_under_qemu() {
    castor_run_guest("qemu");
}

/// `scripts/run --single --emulator EMULATOR --guest mbtest --guest-args status=5` exits with
/// status 5 and shows the guest's output.
fn castor_run_guest(emulator: &str) {
    let elf = kernel::elf().expect("building the kernel");
    let out = Command::new(env!("CARGO_BIN_EXE_castor-run"))
        .args(["--single", "--emulator", emulator, "--cpus", "1", "--guest"])
        .arg(mbtest())
        .args(["--guest-args", "status=5", "--guest-ram", "4"])
        .env(kernel::KERNEL_ENV, elf)
        .output()
        .expect("running castor-run");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(5), "{context}");
    assert!(
        stdout.contains("[guest] mbtest: cmdline 'status=5'"),
        "{context}"
    );
    assert!(
        stdout.contains("[guest] mbtest: mem_upper 3072 KiB"),
        "{context}"
    );
    assert!(
        stderr.contains("castor-run: guest exited with status 5 after "),
        "{context}"
    );
}

/// `scripts/run --single --emulator qemu --guest mbtest --guest-module FILE:ARGS --initrd FILE`:
/// Castor hands both files to the Multiboot guest as boot modules, in order, each page aligned
/// above the kernel, with their strings and every byte intact.
#[test]
fn castor_run_passes_boot_modules_to_a_multiboot_guest_under_qemu() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let (first, second) = (dir.join("castor-module-a"), dir.join("castor-module-b"));
    let second_bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    std::fs::write(&first, b"hello").expect("writing a module");
    std::fs::write(&second, &second_bytes).expect("writing a module");
    let sum = |bytes: &[u8]| bytes.iter().map(|&b| u32::from(b)).sum::<u32>();
    let elf = kernel::elf().expect("building the kernel");
    let out = Command::new(env!("CARGO_BIN_EXE_castor-run"))
        .args(["--single", "--emulator", "qemu", "--cpus", "1", "--guest"])
        .arg(mbtest())
        .args([
            "--guest-args",
            "status=6",
            "--guest-ram",
            "4",
            "--guest-module",
        ])
        .arg(format!("{}:a=1 b=2", first.display()))
        .arg("--initrd")
        .arg(&second)
        .env(kernel::KERNEL_ENV, elf)
        .output()
        .expect("running castor-run");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(6), "{context}");
    assert!(
        stdout.contains("guest: Multiboot kernel with 2 module(s)"),
        "{context}"
    );
    let modules: Vec<(u64, String)> = stdout
        .lines()
        .filter_map(|l| l.split_once("[guest] mbtest: module ").map(|(_, m)| m))
        .map(|m| {
            let (_, rest) = m.split_once(" at ").expect("an address");
            let (at, rest) = rest.split_once(' ').expect("a string");
            (at.parse().expect("a decimal address"), rest.to_string())
        })
        .collect();
    let expected = [
        format!("'a=1 b=2' 5 bytes, sum {}", sum(b"hello")),
        format!("'' 10000 bytes, sum {}", sum(&second_bytes)),
    ];
    let found: Vec<&str> = modules.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(found, expected, "{context}");
    let (a, b) = (modules[0].0, modules[1].0);
    assert!(
        a >= 1 << 20 && a % 4096 == 0 && b > a && b % 4096 == 0,
        "{context}"
    );
}

/// Usage errors come back as status 2 before anything is built or booted.
#[test]
fn castor_run_rejects_bad_guest_options() {
    for args in [
        &["--guest-args", "status=1"][..],
        &["--guest", "/nonexistent/castor-guest"],
        &["--guest", "Cargo.toml", "--guest-ram", "1"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_castor-run"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("running castor-run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: scripts/run"), "{args:?}: {stderr}");
    }
}
