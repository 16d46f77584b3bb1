//! Command-line parsing for the `castor-run` and `castor-image` binaries (used by `scripts/`).

use crate::contract::{self, GuestEnd, PASS_MARKER, QEMU_EXIT_FAIL, QEMU_EXIT_PASS};
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Usage text of `scripts/run` (`castor-run`).
pub const RUN_USAGE: &str = "\
usage: scripts/run [--emulator qemu|bochs] [--cpus N] [--append ARGS] [--timeout SECONDS]
                   [--guest FILE [--guest-args ARGS] [--guest-ram MIB]]

Builds Castor and boots it headless, streaming its serial console here.
QEMU boots the kernel ELF directly (-kernel); Bochs boots a GRUB ISO.

  --emulator qemu|bochs  emulator to use (default: qemu)
  --cpus N               number of CPUs (default: 2)
  --append ARGS          Castor's kernel command line (e.g. \"selftest=all log=debug\")
  --timeout SECONDS      kill the emulator after this long; 0 = never
                         (default: 60 for qemu, 300 for bochs)
  --guest FILE           run FILE, a Multiboot (v1) kernel, as a guest under Castor: it becomes
                         the first boot module and Castor's command line gets guest=module
                         (Bochs: module2 /boot/guest ARGS; QEMU: -initrd \"guest ARGS\").
                         Runs under VT-x (Bochs' Intel models) or AMD-V (QEMU TCG)
  --guest-args ARGS      the guest's own Multiboot command line (e.g. \"console=ttyS0 x=1\")
  --guest-ram MIB        guest RAM in MiB, 2 to 4096 (Castor's default: 64); adds guest_ram=MIB
                         to Castor's command line and enlarges the machine to fit
  -h, --help             show this help

Exit status: 0 if the kernel reported success, 1 if it reported failure or the emulator
ended otherwise, 124 on timeout, 2 on bad usage. With --guest: the status the guest wrote to
port 0xf4 (modulo 256) if it exited, 1 if Castor stopped it, refused to load it or cannot run
guests on this CPU, 124 on timeout.";

/// Usage text of `scripts/build-iso` (`castor-image`).
pub const IMAGE_USAGE: &str = "\
usage: scripts/build-iso [--append ARGS] [-o OUT]

Builds Castor and a bootable BIOS GRUB ISO (write it to a USB stick or CD for bare metal).

  --append ARGS  Castor's kernel command line baked into grub.cfg (default: empty)
  -o, --output OUT  where to write the ISO (default: target/castor.iso)
  -h, --help     show this help";

/// A parsed command line: either a request for help or the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// `-h` / `--help`.
    Help,
    /// The arguments to act on.
    Args(T),
}

/// Which emulator `castor-run` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmulatorKind {
    /// QEMU with `-kernel`.
    Qemu,
    /// Bochs with the GRUB ISO.
    Bochs,
}

/// `castor-run`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    /// The emulator.
    pub emulator: EmulatorKind,
    /// Number of CPUs.
    pub cpus: u32,
    /// Castor's command line.
    pub append: String,
    /// `None`: the emulator's default; `Some(None)`: no timeout.
    pub timeout: Option<Option<Duration>>,
    /// `--guest`: a guest kernel for Castor to run, with its command line and RAM.
    pub guest: Option<GuestArgs>,
}

/// `castor-run --guest FILE [--guest-args ARGS] [--guest-ram MIB]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestArgs {
    /// The guest kernel file (a Multiboot 1 image), checked to exist.
    pub file: PathBuf,
    /// The guest's command line.
    pub args: String,
    /// Guest RAM in MiB; `None`: Castor's default.
    pub ram_mib: Option<u32>,
}

/// Name of the guest kernel's boot module (`/boot/guest` on the ISO).
pub const GUEST_MODULE: &str = "guest";
/// Smallest and largest `--guest-ram` (Castor's `guest_ram=` range).
pub const GUEST_RAM_MIB: std::ops::RangeInclusive<u32> = 2..=4096;
/// Machine memory `castor-run` gives Castor (MiB), unless the guest needs more.
pub const MACHINE_MIB: u32 = 256;
/// Machine memory beyond the guest's RAM kept for Castor itself (MiB).
pub const HOST_RESERVE_MIB: u32 = 128;

impl RunArgs {
    /// Castor's full command line: `guest=module` and `guest_ram=MIB` with `--guest`, then
    /// `--append`.
    pub fn cmdline(&self) -> String {
        let mut words = Vec::new();
        if let Some(guest) = &self.guest {
            words.push("guest=module".to_string());
            if let Some(mib) = guest.ram_mib {
                words.push(format!("guest_ram={mib}"));
            }
        }
        words.extend(self.append.split_whitespace().map(String::from));
        words.join(" ")
    }

    /// Machine memory in MiB: [`MACHINE_MIB`], or the guest's RAM plus
    /// [`HOST_RESERVE_MIB`] if that is more.
    pub fn memory_mib(&self) -> u32 {
        let guest = self.guest.as_ref().and_then(|g| g.ram_mib).unwrap_or(0);
        MACHINE_MIB.max(guest + HOST_RESERVE_MIB)
    }
}

/// `castor-image`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageArgs {
    /// Castor's command line.
    pub append: String,
    /// Where the ISO goes.
    pub output: PathBuf,
}

/// Splits the arguments into (option, value) pairs, accepting `--opt=value` and `--opt value`
/// for the options in `valued` and no value for those in `flags`.
fn options(
    args: impl IntoIterator<Item = String>,
    flags: &[&str],
    valued: &[&str],
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        if flags.contains(&name.as_str()) && inline.is_none() {
            out.push((name, String::new()));
        } else if valued.contains(&name.as_str()) {
            let value = match inline {
                Some(value) => value,
                None => args
                    .next()
                    .ok_or_else(|| Error::new(format!("{name} needs a value")))?,
            };
            out.push((name, value));
        } else if arg.starts_with('-') {
            return Err(Error::new(format!("unknown option {name}")));
        } else {
            return Err(Error::new(format!("unexpected argument {arg:?}")));
        }
    }
    Ok(out)
}

/// Parses `castor-run`'s arguments (without the program name).
pub fn parse_run_args(args: impl IntoIterator<Item = String>) -> Result<Parsed<RunArgs>> {
    let mut run = RunArgs {
        emulator: EmulatorKind::Qemu,
        cpus: 2,
        append: String::new(),
        timeout: None,
        guest: None,
    };
    let (mut guest_file, mut guest_args, mut guest_ram) = (None, None, None);
    let valued = [
        "--emulator",
        "--cpus",
        "--append",
        "--timeout",
        "--guest",
        "--guest-args",
        "--guest-ram",
    ];
    for (name, value) in options(args, &["-h", "--help"], &valued)? {
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--emulator" => {
                run.emulator = match value.as_str() {
                    "qemu" => EmulatorKind::Qemu,
                    "bochs" => EmulatorKind::Bochs,
                    _ => {
                        return Err(Error::new(format!(
                            "--emulator {value:?}: expected qemu or bochs"
                        )));
                    }
                }
            }
            "--cpus" => {
                run.cpus = value
                    .parse()
                    .ok()
                    .filter(|&n| (1..=255).contains(&n))
                    .ok_or_else(|| {
                        Error::new(format!("--cpus {value:?}: expected a number from 1 to 255"))
                    })?
            }
            "--append" => run.append = value,
            "--timeout" => {
                let secs: u64 = value.parse().map_err(|_| {
                    Error::new(format!("--timeout {value:?}: expected whole seconds"))
                })?;
                run.timeout = Some((secs > 0).then(|| Duration::from_secs(secs)));
            }
            "--guest" => guest_file = Some(PathBuf::from(value)),
            "--guest-args" => guest_args = Some(value),
            "--guest-ram" => {
                let mib = value.parse().ok().filter(|n| GUEST_RAM_MIB.contains(n));
                guest_ram = Some(mib.ok_or_else(|| {
                    Error::new(format!(
                        "--guest-ram {value:?}: expected MiB from {} to {}",
                        GUEST_RAM_MIB.start(),
                        GUEST_RAM_MIB.end()
                    ))
                })?);
            }
            _ => return Err(Error::new(format!("unknown option {name}"))),
        }
    }
    run.guest = guest_options(guest_file, guest_args, guest_ram, &run.append)?;
    Ok(Parsed::Args(run))
}

/// Checks the `--guest*` options together.
fn guest_options(
    file: Option<PathBuf>,
    args: Option<String>,
    ram_mib: Option<u32>,
    append: &str,
) -> Result<Option<GuestArgs>> {
    let Some(file) = file else {
        return match (args.is_some(), ram_mib.is_some()) {
            (true, _) => Err(Error::new("--guest-args needs --guest FILE")),
            (_, true) => Err(Error::new("--guest-ram needs --guest FILE")),
            _ => Ok(None),
        };
    };
    if !file.is_file() {
        return Err(Error::new(format!(
            "--guest {}: no such file",
            file.display()
        )));
    }
    let args = args.unwrap_or_default();
    // GRUB's script syntax (the ISO's grub.cfg) has no way to write a single quote.
    if args.contains('\'') {
        return Err(Error::new(format!(
            "--guest-args {args:?}: single quotes cannot be passed"
        )));
    }
    for word in append.split_whitespace() {
        let clash = match word.split_once('=').map(|(key, _)| key) {
            Some("guest") => Some("--guest sets guest=module itself"),
            Some("guest_ram") if ram_mib.is_some() => Some("use either --guest-ram or guest_ram="),
            _ => None,
        };
        if let Some(why) = clash {
            return Err(Error::new(format!("--append {word:?}: {why}")));
        }
    }
    Ok(Some(GuestArgs {
        file,
        args,
        ram_mib,
    }))
}

/// How a `castor-run` run ended, as [`judge`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd<'a> {
    /// `"qemu"` or `"bochs"`.
    pub emulator: &'a str,
    /// The emulator's own exit status (`None`: killed).
    pub exit_code: Option<i32>,
    /// The run hit its timeout.
    pub timed_out: bool,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The serial console.
    pub serial: &'a str,
}

/// Exit status on timeout (as `timeout(1)` uses).
pub const TIMED_OUT: u8 = 124;

/// `castor-run`'s verdict on a finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// The exit status.
    pub code: u8,
    /// A sentence for a person.
    pub message: String,
    /// Castor or the emulator went wrong (worth keeping the run directory); a guest's own
    /// non-zero exit status is not.
    pub failed: bool,
}

/// Judges a finished run; `guest`: the run had `--guest`, so Castor's verdict on the guest
/// decides (see [`RUN_USAGE`]).
pub fn judge(end: &RunEnd<'_>, guest: bool) -> Judgement {
    let elapsed = format!("{:.1}s", end.elapsed.as_secs_f64());
    let (code, message) = match (end.timed_out, guest) {
        (true, _) => (
            TIMED_OUT,
            format!("timed out after {elapsed}; emulator killed"),
        ),
        (false, true) => match contract::guest_end(crate::serial::lines(end.serial, true)) {
            Some(GuestEnd::Exited(status)) => {
                let message = format!("guest exited with status {status} after {elapsed}");
                return Judgement {
                    code: (status % 256) as u8,
                    message,
                    failed: false,
                };
            }
            Some(GuestEnd::Stopped(why)) => (
                1,
                format!("Castor stopped the guest after {elapsed}: {why}"),
            ),
            // The module or the CPU is not suitable: nothing went wrong in Castor.
            Some(GuestEnd::CannotLoad(why)) => {
                let message = format!("Castor cannot load the guest: '{why}");
                return Judgement {
                    code: 1,
                    message,
                    failed: false,
                };
            }
            Some(GuestEnd::CannotRun(why)) => {
                let message = format!("Castor cannot run guests here: {why}");
                return Judgement {
                    code: 1,
                    message,
                    failed: false,
                };
            }
            None => {
                let (_, how) = judge_kernel(end, &elapsed);
                (1, format!("Castor reported no end of the guest ({how})"))
            }
        },
        (false, false) => judge_kernel(end, &elapsed),
    };
    Judgement {
        code,
        message,
        failed: code != 0,
    }
}

/// The exit status and a sentence for a run judged by the kernel's own exit.
fn judge_kernel(end: &RunEnd<'_>, elapsed: &str) -> (u8, String) {
    let passed = || crate::serial::lines(end.serial, true).any(|l| l.contains(PASS_MARKER));
    match (end.emulator, end.exit_code) {
        ("qemu", Some(QEMU_EXIT_PASS)) => (0, format!("kernel reported success after {elapsed}")),
        ("qemu", Some(QEMU_EXIT_FAIL)) => (1, format!("kernel reported failure after {elapsed}")),
        ("qemu", Some(code)) => (
            1,
            format!(
                "QEMU exited with status {code} without a debug exit (reset, triple fault or QEMU error)"
            ),
        ),
        // Bochs always exits with status 1 after the kernel's shutdown: judge by the console.
        (_, Some(_)) if passed() => (0, format!("kernel reported success after {elapsed}")),
        (emulator, Some(code)) => (
            1,
            format!("{emulator} exited with status {code} without {PASS_MARKER}"),
        ),
        (emulator, None) => (1, format!("{emulator} was killed by a signal")),
    }
}

/// Parses `castor-image`'s arguments (without the program name).
pub fn parse_image_args(args: impl IntoIterator<Item = String>) -> Result<Parsed<ImageArgs>> {
    let mut image = ImageArgs {
        append: String::new(),
        output: crate::target_dir().join("castor.iso"),
    };
    for (name, value) in options(args, &["-h", "--help"], &["--append", "-o", "--output"])? {
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--append" => image.append = value,
            "-o" | "--output" => image.output = PathBuf::from(value),
            _ => return Err(Error::new(format!("unknown option {name}"))),
        }
    }
    Ok(Parsed::Args(image))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Parsed<RunArgs>> {
        parse_run_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn run_defaults_and_options() {
        let Parsed::Args(a) = run(&[]).unwrap() else {
            panic!()
        };
        assert_eq!(
            (a.emulator, a.cpus, a.append.as_str(), a.timeout),
            (EmulatorKind::Qemu, 2, "", None)
        );
        let args = [
            "--emulator",
            "bochs",
            "--cpus=4",
            "--append",
            "selftest=all log=debug",
            "--timeout",
            "0",
        ];
        let Parsed::Args(a) = run(&args).unwrap() else {
            panic!()
        };
        assert_eq!(
            (a.emulator, a.cpus, a.append.as_str()),
            (EmulatorKind::Bochs, 4, "selftest=all log=debug")
        );
        assert_eq!(a.timeout, Some(None));
        let Parsed::Args(a) = run(&["--timeout=5"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.timeout, Some(Some(Duration::from_secs(5))));
        assert_eq!(run(&["--cpus", "2", "-h"]).unwrap(), Parsed::Help);
    }

    #[test]
    fn run_rejects_nonsense() {
        for bad in [
            &["--emulator", "vbox"][..],
            &["--cpus", "0"],
            &["--cpus", "many"],
            &["--timeout", "-1"],
            &["--append"],
            &["--frobnicate", "1"],
            &["--help=yes"],
            &["stray"],
        ] {
            assert!(run(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// A file that exists, to stand in for a guest kernel.
    fn some_file() -> String {
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").to_string()
    }

    fn args(args: &[&str]) -> RunArgs {
        match run(args) {
            Ok(Parsed::Args(a)) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn guest_options() {
        let file = some_file();
        let a = args(&[
            "--emulator=bochs",
            "--guest",
            &file,
            "--guest-args",
            "status=7 hello=world",
            "--append",
            "log=debug",
        ]);
        let guest = a.guest.clone().unwrap();
        assert_eq!(
            (guest.file, guest.args.as_str(), guest.ram_mib),
            (PathBuf::from(&file), "status=7 hello=world", None)
        );
        assert_eq!(a.cmdline(), "guest=module log=debug");
        assert_eq!(a.memory_mib(), MACHINE_MIB);

        let a = args(&[
            "--guest-ram=4096",
            "--guest",
            &file,
            "--append",
            " cpus=1  ",
        ]);
        let guest = a.guest.clone().unwrap();
        assert_eq!((guest.args.as_str(), guest.ram_mib), ("", Some(4096)));
        assert_eq!(a.cmdline(), "guest=module guest_ram=4096 cpus=1");
        assert_eq!(a.memory_mib(), 4096 + HOST_RESERVE_MIB);
        assert_eq!(
            args(&["--guest", &file, "--guest-ram", "2"]).memory_mib(),
            256
        );
        // guest_ram= in --append is fine on its own.
        let a = args(&["--guest", &file, "--append", "guest_ram=16"]);
        assert_eq!(a.cmdline(), "guest=module guest_ram=16");

        let a = args(&["--append", "selftest=all"]);
        assert_eq!((&a.guest, a.cmdline().as_str()), (&None, "selftest=all"));
    }

    #[test]
    fn guest_options_are_checked() {
        let file = some_file();
        let cases: [(&[&str], &str); 10] = [
            (&["--guest-args", "x=1"], "--guest-args needs --guest FILE"),
            (&["--guest-ram", "8"], "--guest-ram needs --guest FILE"),
            (&["--guest", "/nonexistent/guest"], "no such file"),
            (&["--guest", "/"], "no such file"),
            (
                &["--guest", &file, "--guest-ram", "1"],
                "expected MiB from 2 to 4096",
            ),
            (&["--guest", &file, "--guest-ram", "4097"], "expected MiB"),
            (&["--guest", &file, "--guest-ram", "lots"], "expected MiB"),
            (&["--guest", &file, "--guest-args", "it's"], "single quotes"),
            (
                &["--guest", &file, "--append", "guest=module"],
                "sets guest=module",
            ),
            (
                &["--guest", &file, "--guest-ram=8", "--append", "guest_ram=9"],
                "either --guest-ram or guest_ram=",
            ),
        ];
        for (bad, why) in cases {
            let err = run(bad).expect_err(&format!("{bad:?} accepted"));
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
        assert!(run(&["--guest"]).is_err(), "--guest needs a value");
    }

    fn end(
        emulator: &'static str,
        exit_code: Option<i32>,
        serial: &'static str,
    ) -> RunEnd<'static> {
        RunEnd {
            emulator,
            exit_code,
            timed_out: false,
            elapsed: Duration::from_millis(1500),
            serial,
        }
    }

    #[test]
    fn guest_runs_are_judged_by_castors_verdict() {
        let exited = "guest: starting 'status=300' (100 bytes, 64 MiB RAM) under VT-x\n\
                      [guest] mbtest: exit status 300\nguest exited with status 300\n";
        let j = judge(&end("bochs", Some(1), exited), true);
        assert_eq!((j.code, j.failed), (44, false));
        assert_eq!(j.message, "guest exited with status 300 after 1.5s");
        let j = judge(
            &end("qemu", Some(QEMU_EXIT_PASS), "guest exited with status 0\n"),
            true,
        );
        assert_eq!((j.code, j.failed), (0, false));

        let stopped = "[guest] guest stopped: Shutdown\n[guest] RIP=0x0\n";
        let j = judge(&end("qemu", Some(QEMU_EXIT_FAIL), stopped), true);
        assert_eq!((j.code, j.failed), (1, true));
        assert_eq!(j.message, "Castor stopped the guest after 1.5s: Shutdown");
        let refused = "guest: cannot load 'junk': no Multiboot header\n";
        let j = judge(&end("bochs", Some(1), refused), true);
        assert_eq!((j.code, j.failed), (1, false));
        assert_eq!(
            j.message,
            "Castor cannot load the guest: 'junk': no Multiboot header"
        );
        let no_vmx = "[cpu0 ERROR] guest: cannot run guests: no VT-x or AMD-V\n";
        let j = judge(&end("qemu", Some(QEMU_EXIT_FAIL), no_vmx), true);
        assert_eq!((j.code, j.failed), (1, false));
        assert_eq!(j.message, "Castor cannot run guests here: no VT-x or AMD-V");
        let j = judge(
            &end("qemu", Some(QEMU_EXIT_FAIL), "config error: guest\n"),
            true,
        );
        assert_eq!((j.code, j.failed), (1, true));
        assert!(
            j.message
                .starts_with("Castor reported no end of the guest (kernel reported failure")
        );

        let mut late = end("bochs", None, exited);
        late.timed_out = true;
        let j = judge(&late, true);
        assert_eq!((j.code, j.failed), (TIMED_OUT, true));
    }

    #[test]
    fn kernel_runs_are_judged_by_the_exit_and_markers() {
        let j = judge(&end("qemu", Some(QEMU_EXIT_PASS), ""), false);
        assert_eq!((j.code, j.failed), (0, false));
        let j = judge(&end("qemu", Some(QEMU_EXIT_FAIL), ""), false);
        assert_eq!(j.code, 1);
        let j = judge(&end("qemu", Some(1), ""), false);
        assert!(j.message.contains("without a debug exit"), "{}", j.message);
        let j = judge(&end("bochs", Some(1), "CASTOR-SELFTEST-PASS"), false);
        assert_eq!(j.code, 0);
        let j = judge(
            &end("bochs", Some(1), "guest exited with status 3\n"),
            false,
        );
        assert_eq!(j.code, 1, "without --guest the kernel's markers decide");
        let j = judge(&end("bochs", None, ""), false);
        assert_eq!(j.message, "bochs was killed by a signal");
    }

    #[test]
    fn image_options() {
        let args = ["-o", "/tmp/x.iso", "--append=selftest=all"].map(String::from);
        let Parsed::Args(a) = parse_image_args(args).unwrap() else {
            panic!()
        };
        assert_eq!(
            (a.output, a.append),
            (PathBuf::from("/tmp/x.iso"), "selftest=all".to_string())
        );
        let Parsed::Args(a) = parse_image_args([]).unwrap() else {
            panic!()
        };
        assert!(a.output.ends_with("target/castor.iso"));
        let err = parse_image_args(["--cpus".to_string(), "2".to_string()]).unwrap_err();
        assert_eq!(err.to_string(), "unknown option --cpus");
    }
}
