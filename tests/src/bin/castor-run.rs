//! `castor-run` (behind `scripts/run`): builds Castor, boots it headless under QEMU or Bochs and
//! streams its serial console to stdout until the kernel exits or the timeout passes.

use castor_tests::cli::{self, EmulatorKind, Parsed, RunArgs, RunEnd};
use castor_tests::kernel::{self, BuildOutput};
use castor_tests::{Emulator, Result, Run, process};
use std::io::Write;
use std::process::ExitCode;

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
    let cmdline = args.cmdline();
    eprintln!(
        "castor-run: booting {} under {} with {} CPU(s), command line {:?}",
        elf.display(),
        emulator.name(),
        args.cpus,
        cmdline
    );
    let mut run = Run::new(emulator)
        .name("castor-run")
        .kernel(elf)
        .cpus(args.cpus)
        .memory_mib(args.memory_mib())
        .cmdline(&cmdline)
        .fail_markers(&[])
        .echo_serial(Box::new(std::io::stdout()));
    if let Some(guest) = &args.guest {
        eprintln!(
            "castor-run: guest {} with command line {:?}",
            guest.file.display(),
            guest.args
        );
        run = run.module(cli::GUEST_MODULE, &guest.file, &guest.args);
    }
    run = match args.timeout {
        None => run,
        Some(None) => run.no_timeout(),
        Some(Some(limit)) => run.timeout(limit),
    };
    let mut outcome = run.start()?.wait_exit();
    let end = RunEnd {
        emulator: outcome.emulator,
        exit_code: outcome.exit_code,
        timed_out: outcome.timed_out,
        elapsed: outcome.elapsed,
        serial: &outcome.serial,
    };
    let verdict = cli::judge(&end, args.guest.is_some());
    if verdict.failed {
        outcome.keep_dir();
        eprintln!(
            "\n{}castor-run: {}; run directory kept: {}",
            outcome.emulator_logs(),
            verdict.message,
            outcome.dir().display()
        );
    } else {
        eprintln!("\ncastor-run: {}", verdict.message);
    }
    Ok(ExitCode::from(verdict.code))
}
