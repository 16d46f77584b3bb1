//! `castor-run` (behind `scripts/run`): builds Castor, boots it headless under QEMU or Bochs and
//! streams its serial console to stdout until the kernel exits or the timeout passes.

use castor_tests::cli::{self, EmulatorKind, Parsed, RunArgs};
use castor_tests::contract::{PASS_MARKER, QEMU_EXIT_FAIL, QEMU_EXIT_PASS};
use castor_tests::kernel::{self, BuildOutput};
use castor_tests::{Emulator, Outcome, Result, Run, process};
use std::io::Write;
use std::process::ExitCode;

/// Exit status on timeout (as `timeout(1)` uses).
const TIMED_OUT: u8 = 124;

fn main() -> ExitCode {
    process::kill_children_on_signals();
    let args = match cli::parse_run_args(std::env::args().skip(1)) {
        Ok(Parsed::Args(args)) => args,
        Ok(Parsed::Help) => {
            // Ignore a closed pipe (e.g. `| head`).
            let _ = writeln!(std::io::stdout(), "{}", cli::RUN_USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("castor-run: {e}\n\n{}", cli::RUN_USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("castor-run: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &RunArgs) -> Result<ExitCode> {
    let elf = kernel::prebuilt_or_build(BuildOutput::Inherit)?;
    let emulator = match args.emulator {
        EmulatorKind::Qemu => Emulator::qemu(),
        EmulatorKind::Bochs => Emulator::bochs(),
    };
    eprintln!(
        "castor-run: booting {} under {} with {} CPU(s), command line {:?}",
        elf.display(),
        emulator.name(),
        args.cpus,
        args.append
    );
    let mut run = Run::new(emulator)
        .name("castor-run")
        .kernel(elf)
        .cpus(args.cpus)
        .cmdline(&args.append)
        .fail_markers(&[])
        .echo_serial(Box::new(std::io::stdout()));
    run = match args.timeout {
        None => run,
        Some(None) => run.no_timeout(),
        Some(Some(limit)) => run.timeout(limit),
    };
    let mut outcome = run.start()?.wait_exit();
    let (code, verdict) = judge(&outcome);
    if code == 0 {
        eprintln!("\ncastor-run: {verdict}");
    } else {
        outcome.keep_dir();
        eprintln!(
            "\n{}castor-run: {verdict}; run directory kept: {}",
            outcome.emulator_logs(),
            outcome.dir().display()
        );
    }
    Ok(ExitCode::from(code))
}

/// The exit status and a sentence for a finished run.
fn judge(outcome: &Outcome) -> (u8, String) {
    let elapsed = format!("{:.1}s", outcome.elapsed.as_secs_f64());
    if outcome.timed_out {
        return (
            TIMED_OUT,
            format!("timed out after {elapsed}; emulator killed"),
        );
    }
    match (outcome.emulator, outcome.exit_code) {
        ("qemu", Some(QEMU_EXIT_PASS)) => (0, format!("kernel reported success after {elapsed}")),
        ("qemu", Some(QEMU_EXIT_FAIL)) => (1, format!("kernel reported failure after {elapsed}")),
        ("qemu", Some(code)) => (
            1,
            format!(
                "QEMU exited with status {code} without a debug exit (reset, triple fault or QEMU error)"
            ),
        ),
        // Bochs always exits with status 1 after the kernel's shutdown: judge by the console.
        (_, Some(_)) if outcome.line_with(PASS_MARKER).is_some() => {
            (0, format!("kernel reported success after {elapsed}"))
        }
        (emulator, Some(code)) => (
            1,
            format!("{emulator} exited with status {code} without {PASS_MARKER}"),
        ),
        (emulator, None) => (1, format!("{emulator} was killed by a signal")),
    }
}
