//! Command-line parsing for the `castor-run` and `castor-image` binaries (used by `scripts/`).

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Usage text of `scripts/run` (`castor-run`).
pub const RUN_USAGE: &str = "\
usage: scripts/run [--emulator qemu|bochs] [--cpus N] [--append ARGS] [--timeout SECONDS]

Builds Castor and boots it headless, streaming its serial console here.
QEMU boots the kernel ELF directly (-kernel); Bochs boots a GRUB ISO.

  --emulator qemu|bochs  emulator to use (default: qemu)
  --cpus N               number of CPUs (default: 2)
  --append ARGS          Castor's kernel command line (e.g. \"selftest=all log=debug\")
  --timeout SECONDS      kill the emulator after this long; 0 = never
                         (default: 60 for qemu, 300 for bochs)
  -h, --help             show this help

Exit status: 0 if the kernel reported success, 1 if it reported failure or the emulator
ended otherwise, 124 on timeout, 2 on bad usage.";

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
    };
    let valued = ["--emulator", "--cpus", "--append", "--timeout"];
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
            _ => return Err(Error::new(format!("unknown option {name}"))),
        }
    }
    Ok(Parsed::Args(run))
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
