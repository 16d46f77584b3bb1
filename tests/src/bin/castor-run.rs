//! `castor-run` (behind `scripts/run`): builds Castor and runs it headless under QEMU or Bochs,
//! streaming the serial console to stdout: by default a primary/backup pair with the demo guest
//! (each line prefixed by its host's role) until Ctrl-C, `--duration` or the guest's end,
//! optionally killing the primary (`--failover-at`); with `--single` one host until the kernel
//! exits or the timeout passes.

use castor_tests::cli::bridge::HostBridge;
use castor_tests::cli::{
    self, EmulatorKind, Mode, PairArgs, PairInput, Parsed, RunArgs, RunEnd, Typed,
};
use castor_tests::kernel::{self, BuildOutput};
use castor_tests::pair::segment::{HostTemplate, Segment};
use castor_tests::pair::{HostEmulator, Pair, Role};
use castor_tests::serial_input::SerialInput;
use castor_tests::{Emulator, Result, Run, process};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    let elf = match kernel::prebuilt_or_build(BuildOutput::Inherit) {
        Ok(elf) => elf,
        Err(e) => {
            eprintln!("castor-run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match &args.mode {
        Mode::Single { timeout } => run_single(&args, elf, *timeout),
        Mode::Pair(pair) => run_pair(&args, pair, elf),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("castor-run: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_single(args: &RunArgs, elf: PathBuf, timeout: Option<Option<Duration>>) -> Result<ExitCode> {
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
        for (i, module) in guest.modules.iter().enumerate() {
            eprintln!(
                "castor-run: boot module {} with string {:?}",
                module.file.display(),
                module.args
            );
            run = run.module(&cli::module_name(i), &module.file, &module.args);
        }
    }
    run = match timeout {
        None => run,
        Some(None) => run.no_timeout(),
        Some(Some(limit)) => run.timeout(limit),
    };
    if let Some(typed) = typed_input(args.emulator) {
        let input = SerialInput::new();
        run = run.serial_input(input.clone());
        typed.forward(input);
    }
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

/// `--reprotect`: hosts made by `template` on one segment, a new backup after each failover.
fn run_chain(template: HostTemplate, opts: &PairArgs) -> Result<ExitCode> {
    let mut segment = Segment::with(template)?;
    let stdout = || Box::new(std::io::stdout()) as Box<dyn Write + Send>;
    let verdict = cli::chain::run_chain(&mut segment, &opts.failover_at, opts.duration, &stdout)?;
    eprintln!("\ncastor-run: {}", verdict.message);
    Ok(ExitCode::from(verdict.code))
}

/// What the user types, for the serial console (see `cli::input`): QEMU hosts only.
fn typed_input(emulator: EmulatorKind) -> Option<Typed> {
    match emulator {
        EmulatorKind::Qemu => Typed::stdin(),
        EmulatorKind::Bochs => None,
    }
}

fn run_pair(args: &RunArgs, opts: &PairArgs, elf: PathBuf) -> Result<ExitCode> {
    let (file, guest_args) = match &args.guest {
        Some(guest) => (guest.file.clone(), guest.args.clone()),
        // The demo guest with its own defaults: it runs until stopped.
        None => (kernel::build_demo(BuildOutput::Inherit)?, String::new()),
    };
    let (emulator, name) = match args.emulator {
        EmulatorKind::Qemu => (HostEmulator::Qemu, "qemu"),
        EmulatorKind::Bochs => (HostEmulator::Bochs, "bochs"),
    };
    // Every host of the run is made alike (with --reprotect, one after another).
    let template = {
        let (args, opts) = (args.clone(), opts.clone());
        let (file, guest_args) = (file.clone(), guest_args.clone());
        move || {
            let mut pair = Pair::new(emulator)
                .name("castor-run")
                .kernel(&elf)
                .cpus(args.cpus)
                .nic(opts.nic)
                .guest(&file, &guest_args)
                .args(&args.append)
                .no_timeout()
                .fail_markers(&[]);
            if let Some(guest) = &args.guest {
                for module in &guest.modules {
                    pair = pair.guest_module(&module.file, &module.args);
                }
                if let Some(mib) = guest.ram_mib {
                    pair = pair.guest_ram_mib(mib);
                }
            }
            if let Some(ms) = opts.peer_timeout_ms {
                pair = pair.peer_timeout_ms(ms);
            }
            pair
        }
    };
    if opts.reprotect {
        eprintln!(
            "castor-run: a chain of QEMU hosts on one segment running {} with command line \
             {guest_args:?}; failovers at {:?}, each followed by a new backup",
            file.display(),
            opts.failover_at
        );
        return run_chain(Box::new(move || Ok(template())), opts);
    }
    let mut pair = template().live_console(Box::new(std::io::stdout()));
    let bridge = match &opts.guest_net {
        Some(cidr) => {
            let bridge = HostBridge::new(cidr)?;
            eprintln!(
                "castor-run: guest network on bridge {} ({cidr}); the guest's card is \
                 reachable at the address it takes in that subnet",
                bridge.name()
            );
            pair = pair.guest_network(bridge.guest_network(opts.nic));
            Some(bridge)
        }
        None => None,
    };
    eprintln!(
        "castor-run: pairing two hosts under {name} ({} CPU(s) each, peer_timeout={} ms) \
         running {} with command line {:?}{}",
        args.cpus,
        pair.effective_peer_timeout_ms(),
        file.display(),
        guest_args,
        match (opts.failover_at.first(), opts.duration) {
            (Some(at), _) => format!("; killing the primary at {:.1} s", at.as_secs_f64()),
            (None, Some(end)) => format!("; stopping at {:.1} s", end.as_secs_f64()),
            (None, None) => "; Ctrl-C stops both".into(),
        }
    );
    let mut input = None;
    if let Some(typed) = typed_input(args.emulator) {
        let lines = [SerialInput::new(), SerialInput::new()];
        pair = pair.serial_inputs(lines.clone());
        input = Some(PairInput::new(typed, lines));
    }
    let mut handle = pair.start()?;
    let verdict = cli::watch_pair(
        &mut handle,
        opts.failover_at.first().copied(),
        opts.duration,
        name,
        input.as_mut(),
    )?;
    let mut outcome = handle.stop();
    drop(bridge);
    if verdict.failed {
        let mut logs = String::new();
        for role in Role::BOTH {
            let host = match role {
                Role::Primary => &mut outcome.primary,
                Role::Backup => &mut outcome.backup,
            };
            host.keep_dir();
            logs += &format!(
                "==== {role}: {}\n{}",
                host.dir().display(),
                host.emulator_logs()
            );
        }
        eprintln!(
            "\n{logs}castor-run: {}; run directories kept (above)",
            verdict.message
        );
    } else {
        eprintln!("\ncastor-run: {}", verdict.message);
    }
    Ok(ExitCode::from(verdict.code))
}
