//! `castor-run`'s arguments: a primary/backup pair (the default) or one host (`--single`),
//! checked together so that combinations that make no sense are refused with the reason.

use super::{Parsed, options};
use crate::error::{Error, Result};
use crate::pair::Nic;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which emulator `castor-run` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmulatorKind {
    /// QEMU with `-kernel` (KVM when usable, else TCG with AMD-V).
    Qemu,
    /// Bochs with the GRUB ISO (its Intel model: VT-x).
    Bochs,
}

/// `castor-run`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    /// The emulator.
    pub emulator: EmulatorKind,
    /// Number of CPUs (of each host in a pair).
    pub cpus: u32,
    /// Extra words for Castor's command line.
    pub append: String,
    /// `--guest`: a guest kernel for Castor to run, with its command line and RAM (a pair
    /// without it runs the demo guest).
    pub guest: Option<GuestArgs>,
    /// A pair or one host.
    pub mode: Mode,
}

/// What `castor-run` starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `--single`: one Castor host, as `castor-run` always did.
    Single {
        /// `None`: the emulator's default; `Some(None)`: no timeout.
        timeout: Option<Option<Duration>>,
    },
    /// A primary/backup pair (the default).
    Pair(PairArgs),
}

/// The pair-mode options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairArgs {
    /// `--duration`: stop both hosts after this long; `None`: run until Ctrl-C.
    pub duration: Option<Duration>,
    /// `--failover-at`: SIGKILL the primary this long after the start, once the guest is
    /// protected (several, ascending, with `--reprotect`).
    pub failover_at: Vec<Duration>,
    /// `--reprotect`: a fresh backup joins after each takeover.
    pub reprotect: bool,
    /// `--peer-timeout` in ms; `None`: the pair's default for the emulator.
    pub peer_timeout_ms: Option<u32>,
    /// `--nic`: the QEMU hosts' NIC.
    pub nic: Nic,
    /// `--guest-net`: the address (with prefix) of a bridge on this machine for the guest's
    /// network card.
    pub guest_net: Option<String>,
}

/// `castor-run --guest FILE [--guest-args ARGS] [--guest-ram MIB] [--initrd FILE]
/// [--guest-module FILE[:ARGS]]...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestArgs {
    /// The guest kernel file (a Linux bzImage or a Multiboot 1 image), checked to exist.
    pub file: PathBuf,
    /// The guest's command line.
    pub args: String,
    /// Guest RAM in MiB; `None`: Castor's default.
    pub ram_mib: Option<u32>,
    /// `--initrd` and `--guest-module` files in the order given: the boot modules after the
    /// kernel (a Linux guest's initrd, concatenated; a Multiboot guest's modules).
    pub modules: Vec<ModuleArgs>,
}

/// A boot module after the guest kernel: `--initrd FILE` or `--guest-module FILE[:ARGS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleArgs {
    /// The file, checked to exist.
    pub file: PathBuf,
    /// Its string (a Multiboot module's arguments).
    pub args: String,
}

/// The boot module name of the guest's `index`th module after the kernel (`/boot/module1` on
/// the ISO for the first).
pub fn module_name(index: usize) -> String {
    format!("module{}", index + 1)
}

/// Name of the guest kernel's boot module (`/boot/guest` on the ISO).
pub const GUEST_MODULE: &str = "guest";
/// Longest boot module string Castor keeps (its `bootinfo` module command line, which under
/// QEMU's `-initrd` holds the module's name, a space and its arguments).
pub const MODULE_STRING_MAX: usize = 512;
/// Guest RAM (MiB) for a Linux guest when neither `--guest-ram` nor `guest_ram=` says:
/// Debian's kernel needs about 68 MiB from 16 MiB up before it reads its memory map, more than
/// Castor's own default of 64 MiB.
pub const LINUX_GUEST_RAM_MIB: u32 = 128;
/// Smallest and largest `--guest-ram` (Castor's `guest_ram=` range).
pub const GUEST_RAM_MIB: std::ops::RangeInclusive<u32> = 2..=3072;
/// Smallest and largest `--peer-timeout` (Castor's `peer_timeout=` range).
pub const PEER_TIMEOUT_MS: std::ops::RangeInclusive<u32> = 100..=600_000;
/// Machine memory `castor-run` gives Castor (MiB), unless the guest needs more.
pub const MACHINE_MIB: u32 = 256;
/// Machine memory beyond the guest's RAM kept for Castor itself (MiB).
pub const HOST_RESERVE_MIB: u32 = 128;
/// Default CPUs of a single host.
pub const SINGLE_CPUS: u32 = 2;
/// Default CPUs of each pair host under QEMU: the guest's, and one for the checkpoint pipeline
/// beside it.
pub const PAIR_CPUS: u32 = 2;
/// Default CPUs of each pair host under Bochs, which runs a second CPU at the cost of the
/// first (it emulates them in turns on one host thread).
pub const BOCHS_PAIR_CPUS: u32 = 1;
/// Longest `--duration` / `--failover-at` (about 115 days).
const MAX_SECONDS: f64 = 1e7;

impl RunArgs {
    /// Castor's full command line for `--single`: `guest=module` and `guest_ram=MIB` with
    /// `--guest`, then `--append` (a pair's hosts get theirs from [`crate::pair::Pair`]).
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

/// Every option as given, before the combination is checked.
#[derive(Default)]
struct Given {
    emulator: Option<EmulatorKind>,
    cpus: Option<u32>,
    append: String,
    single: bool,
    timeout: Option<Option<Duration>>,
    guest_file: Option<PathBuf>,
    guest_args: Option<String>,
    guest_ram: Option<u32>,
    modules: Vec<(&'static str, PathBuf, String)>,
    duration: Option<Duration>,
    failover_at: Vec<Duration>,
    reprotect: bool,
    peer_timeout_ms: Option<u32>,
    nic: Option<Nic>,
    guest_net: Option<String>,
}

/// The options that take a value.
const VALUED: [&str; 14] = [
    "--emulator",
    "--cpus",
    "--append",
    "--timeout",
    "--guest",
    "--guest-args",
    "--guest-ram",
    "--initrd",
    "--guest-module",
    "--duration",
    "--failover-at",
    "--peer-timeout",
    "--nic",
    "--guest-net",
];

/// Parses `castor-run`'s arguments (without the program name).
pub fn parse_run_args(args: impl IntoIterator<Item = String>) -> Result<Parsed<RunArgs>> {
    let mut given = Given::default();
    for (name, value) in options(args, &["-h", "--help", "--single", "--reprotect"], &VALUED)? {
        let bad = |expected: &str| Error::new(format!("{name} {value:?}: expected {expected}"));
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--single" => given.single = true,
            "--reprotect" => given.reprotect = true,
            "--emulator" => {
                given.emulator = Some(match value.as_str() {
                    "qemu" => EmulatorKind::Qemu,
                    "bochs" => EmulatorKind::Bochs,
                    _ => return Err(bad("qemu or bochs")),
                })
            }
            "--cpus" => {
                let cpus = value.parse().ok().filter(|n| (1..=255).contains(n));
                given.cpus = Some(cpus.ok_or_else(|| bad("a number from 1 to 255"))?);
            }
            "--append" => given.append = value,
            "--timeout" => {
                let secs: u64 = value.parse().map_err(|_| bad("whole seconds"))?;
                given.timeout = Some((secs > 0).then(|| Duration::from_secs(secs)));
            }
            "--guest" => given.guest_file = Some(PathBuf::from(value)),
            "--guest-args" => given.guest_args = Some(value),
            "--initrd" => given
                .modules
                .push(("--initrd", PathBuf::from(value), String::new())),
            "--guest-module" => {
                let (file, args) = value.split_once(':').unwrap_or((&value, ""));
                let module = ("--guest-module", PathBuf::from(file), args.to_string());
                given.modules.push(module);
            }
            "--guest-ram" => {
                let mib = value.parse().ok().filter(|n| GUEST_RAM_MIB.contains(n));
                let range = format!(
                    "MiB from {} to {}",
                    GUEST_RAM_MIB.start(),
                    GUEST_RAM_MIB.end()
                );
                given.guest_ram = Some(mib.ok_or_else(|| bad(&range))?);
            }
            "--duration" => given.duration = Some(seconds(&value).ok_or_else(|| bad("seconds"))?),
            "--failover-at" => given
                .failover_at
                .push(seconds(&value).ok_or_else(|| bad("seconds"))?),
            "--peer-timeout" => {
                let ms = value.parse().ok().filter(|n| PEER_TIMEOUT_MS.contains(n));
                let range = format!(
                    "milliseconds from {} to {}",
                    PEER_TIMEOUT_MS.start(),
                    PEER_TIMEOUT_MS.end()
                );
                given.peer_timeout_ms = Some(ms.ok_or_else(|| bad(&range))?);
            }
            "--nic" => {
                given.nic = Some(match value.as_str() {
                    "virtio-net" => Nic::VirtioNet,
                    "e1000" => Nic::E1000,
                    _ => return Err(bad("virtio-net or e1000")),
                })
            }
            "--guest-net" => {
                if !super::bridge::is_cidr(&value) {
                    return Err(bad("an IPv4 address and prefix, e.g. 10.0.2.1/24"));
                }
                given.guest_net = Some(value)
            }
            _ => return Err(Error::new(format!("unknown option {name}"))),
        }
    }
    given.into_args().map(Parsed::Args)
}

/// A positive number of seconds (fractions allowed), at most [`MAX_SECONDS`].
fn seconds(value: &str) -> Option<Duration> {
    let secs: f64 = value.parse().ok()?;
    (secs > 0.0 && secs <= MAX_SECONDS).then(|| Duration::from_secs_f64(secs))
}

impl Given {
    /// Checks the options together and picks the mode.
    fn into_args(self) -> Result<RunArgs> {
        let emulator = self.emulator.unwrap_or(EmulatorKind::Qemu);
        let mode = match self.single {
            true => self.single_mode()?,
            false => self.pair_mode(emulator)?,
        };
        let guest = guest_options(
            self.guest_file,
            self.guest_args,
            self.guest_ram,
            self.modules,
            &self.append,
        )?;
        let cpus = match mode {
            Mode::Single { .. } => self.cpus.unwrap_or(SINGLE_CPUS),
            Mode::Pair(_) => self.cpus.unwrap_or(match emulator {
                EmulatorKind::Qemu => PAIR_CPUS,
                EmulatorKind::Bochs => BOCHS_PAIR_CPUS,
            }),
        };
        Ok(RunArgs {
            emulator,
            cpus,
            append: self.append,
            guest,
            mode,
        })
    }

    fn single_mode(&self) -> Result<Mode> {
        let pair_only = [
            ("--duration", self.duration.is_some()),
            ("--failover-at", !self.failover_at.is_empty()),
            ("--reprotect", self.reprotect),
            ("--peer-timeout", self.peer_timeout_ms.is_some()),
            ("--nic", self.nic.is_some()),
            ("--guest-net", self.guest_net.is_some()),
        ];
        if let Some((name, _)) = pair_only.iter().find(|(_, given)| *given) {
            return Err(Error::new(format!(
                "{name} is for a pair: drop --single to run one"
            )));
        }
        Ok(Mode::Single {
            timeout: self.timeout,
        })
    }

    fn pair_mode(&self, emulator: EmulatorKind) -> Result<Mode> {
        if self.timeout.is_some() {
            return Err(Error::new(
                "--timeout is for --single: a pair runs until Ctrl-C, --duration or the guest's \
                 end",
            ));
        }
        let mut failovers = self.failover_at.clone();
        failovers.sort();
        if failovers.len() > 1 && !self.reprotect {
            return Err(Error::new(
                "--failover-at more than once needs --reprotect: after a takeover the guest has \
                 no backup to fail over to",
            ));
        }
        if self.reprotect && (emulator == EmulatorKind::Bochs || self.guest_net.is_some()) {
            return Err(Error::new(
                "--reprotect runs QEMU hosts on one emulated segment, without --guest-net \
                 (use --emulator qemu and leave out --guest-net)",
            ));
        }
        if let (Some(&at), Some(end)) = (failovers.last(), self.duration)
            && at >= end
        {
            return Err(Error::new(format!(
                "--failover-at {}s must come before the end of --duration {}s",
                at.as_secs_f64(),
                end.as_secs_f64()
            )));
        }
        if emulator == EmulatorKind::Bochs && self.nic == Some(Nic::VirtioNet) {
            return Err(Error::new(
                "--nic virtio-net: Bochs hosts have only an e1000 (use --nic e1000 or \
                 --emulator qemu)",
            ));
        }
        if emulator == EmulatorKind::Bochs && self.guest_net.is_some() {
            return Err(Error::new(
                "--guest-net: only QEMU hosts get a guest network card (use --emulator qemu)",
            ));
        }
        check_pair_append(&self.append)?;
        Ok(Mode::Pair(PairArgs {
            duration: self.duration,
            failover_at: failovers,
            reprotect: self.reprotect,
            peer_timeout_ms: self.peer_timeout_ms,
            nic: self.nic.unwrap_or(match emulator {
                EmulatorKind::Qemu => Nic::VirtioNet,
                EmulatorKind::Bochs => Nic::E1000,
            }),
            guest_net: self.guest_net.clone(),
        }))
    }
}

/// Refuses `--append` words that a pair sets itself or that make a host end on its own.
fn check_pair_append(append: &str) -> Result<()> {
    for word in append.split_whitespace() {
        let key = word.split_once('=').map_or(word, |(key, _)| key);
        let why = match key {
            "role" | "key" => "a pair sets role= and key= itself",
            "peer_timeout" => "use --peer-timeout MS",
            "guest" => "a pair always runs a guest (--guest FILE; default: the demo guest)",
            "guest_ram" => "use --guest-ram MIB",
            "guest_net" => "use --guest-net CIDR",
            "selftest" | "bench" => "that runs one host: add --single",
            _ => continue,
        };
        return Err(Error::new(format!("--append {word:?}: {why}")));
    }
    Ok(())
}

/// Checks a boot module's file and string (`option` names it in the error): the file exists,
/// the string has no single quote (GRUB's script syntax, the ISO's grub.cfg, has no way to
/// write one) and fits the [`MODULE_STRING_MAX`] bytes Castor keeps after the module's `name`.
fn check_module(option: &str, file: &std::path::Path, name: &str, args: &str) -> Result<()> {
    if !file.is_file() {
        return Err(Error::new(format!(
            "{option} {}: no such file",
            file.display()
        )));
    }
    if args.contains('\'') {
        return Err(Error::new(format!(
            "{option} {args:?}: single quotes cannot be passed"
        )));
    }
    let room = MODULE_STRING_MAX - name.len() - 1;
    if args.len() > room {
        return Err(Error::new(format!(
            "{option} {args:?}: {} bytes, but Castor keeps at most {room} of a module's \
             arguments",
            args.len()
        )));
    }
    Ok(())
}

/// Checks the `--guest*`, `--initrd` and `--guest-module` options together.
fn guest_options(
    file: Option<PathBuf>,
    args: Option<String>,
    ram_mib: Option<u32>,
    modules: Vec<(&'static str, PathBuf, String)>,
    append: &str,
) -> Result<Option<GuestArgs>> {
    let Some(file) = file else {
        return match (args.is_some(), ram_mib.is_some(), modules.first()) {
            (true, _, _) => Err(Error::new("--guest-args needs --guest FILE")),
            (_, true, _) => Err(Error::new("--guest-ram needs --guest FILE")),
            (_, _, Some((option, _, _))) => Err(Error::new(format!("{option} needs --guest FILE"))),
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
    check_module("--guest-args", &file, GUEST_MODULE, &args)?;
    let mut checked = Vec::new();
    for (i, (option, file, args)) in modules.into_iter().enumerate() {
        check_module(option, &file, &module_name(i), &args)?;
        checked.push(ModuleArgs { file, args });
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
    let ram_unset = ram_mib.is_none()
        && !append
            .split_whitespace()
            .any(|w| w.starts_with("guest_ram="));
    let ram_mib = match ram_unset && is_bzimage(&file) {
        true => Some(LINUX_GUEST_RAM_MIB),
        false => ram_mib,
    };
    Ok(Some(GuestArgs {
        file,
        args,
        ram_mib,
        modules: checked,
    }))
}

/// Whether `file` is a Linux bzImage: the setup header's magic `HdrS` at offset 0x202 (the
/// Linux/x86 boot protocol), as QEMU's `-kernel` tells one.
fn is_bzimage(file: &Path) -> bool {
    let mut head = [0u8; 0x206];
    std::fs::File::open(file)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| &head[0x202..] == b"HdrS")
}

#[cfg(test)]
mod tests;
