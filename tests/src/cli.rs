//! Command-line front ends of the `castor-run` and `castor-image` binaries (used by
//! `scripts/`): usage texts, argument parsing ([`run_args`]), `castor-run`'s verdicts
//! ([`judge`]) and its watch over a running pair ([`watch_pair`]).

pub mod bridge;
pub mod chain;
mod input;
mod judge;
mod run_args;
mod watch;

pub use input::{PairInput, Typed, input_target};
pub use judge::{HostView, Judgement, PairView, RunEnd, TIMED_OUT, guest_ended, judge, judge_pair};
pub use run_args::{
    EmulatorKind, GUEST_MODULE, GUEST_RAM_MIB, GuestArgs, HOST_RESERVE_MIB, MACHINE_MIB,
    MODULE_STRING_MAX, Mode, ModuleArgs, PAIR_CPUS, PEER_TIMEOUT_MS, PairArgs, RunArgs,
    SINGLE_CPUS, module_name, parse_run_args,
};
pub use watch::watch_pair;

use crate::error::{Error, Result};
use std::path::PathBuf;

/// Usage text of `scripts/run` (`castor-run`).
pub const RUN_USAGE: &str = "\
usage: scripts/run [--emulator qemu|bochs] [--guest FILE [--guest-args ARGS] [--guest-ram MIB]
                   [--initrd FILE] [--guest-module FILE[:ARGS]]...] [--duration SECONDS] [--failover-at SECONDS] [--nic virtio-net|e1000]
                   [--guest-net CIDR] [--peer-timeout MS] [--cpus N] [--append ARGS]
       scripts/run --single [--emulator qemu|bochs] [--cpus N] [--append ARGS]
                   [--timeout SECONDS] [--guest FILE [--guest-args ARGS] [--guest-ram MIB]
                   [--initrd FILE] [--guest-module FILE[:ARGS]]...]

Builds Castor and runs it headless, streaming the serial console here.

By default it runs a fault-tolerant pair: two Castor hosts, primary and backup, joined by an
emulated Ethernet (QEMU: a TCP -netdev stream; Bochs: e1000s on bxhub in a private network
namespace), both booting the guest as their boot module, with role=primary|backup and a fresh
random key=. The guest is the demo guest castor-demo unless --guest names another. Each console
line is prefixed by its host's role (\"primary | \", \"backup  | \"). The pair runs until Ctrl-C,
--duration, or the end of the guest or of a host.

Under QEMU, lines typed (or piped) here go to the serial console of the host that runs the
guest: the primary, after a failover the backup once it has taken over.

With --single it boots one Castor host (QEMU: -kernel; Bochs: a GRUB ISO) and stops when the
kernel exits or the timeout passes.

  --emulator qemu|bochs  qemu (default): KVM when it can run guests here, otherwise TCG, whose
                         CPU offers AMD-V; bochs: its Intel model, with VT-x
  --cpus N               CPUs of each host (default 2: in a pair the checkpoint pipeline runs
                         on the second, beside the guest; 1 in a Bochs pair)
  --append ARGS          more of Castor's command line (e.g. \"log=debug\"; with --single e.g.
                         \"selftest=all\"); a pair refuses role=, key=, peer_timeout=, guest=,
                         guest_ram=, selftest= and bench=
  --guest FILE           run FILE, a Linux bzImage or a Multiboot (v1) kernel, as the guest under
                         Castor: it becomes the first boot module and Castor's command line gets
                         guest=module (Bochs: module2 /boot/guest ARGS; QEMU: -initrd \"guest
                         ARGS\")
  --guest-args ARGS      the guest's own command line (e.g. \"console=ttyS0 x=1\"), at most 506
                         bytes
  --initrd FILE          a Linux guest's initrd (initramfs): the next boot module
  --guest-module FILE[:ARGS]
                         a boot module for a Multiboot guest, with ARGS as its string (split at
                         the first ':'): the next boot module. Both may be repeated and are
                         passed in the order given (module1, module2, ... after the guest); a
                         Linux guest gets them all concatenated as its initrd
  --guest-ram MIB        guest RAM in MiB, 2 to 3072 (default: 128 for a Linux bzImage, else
                         Castor's own, 64); adds guest_ram=MIB to Castor's command line and
                         enlarges the machine to fit

Pair:
  --duration SECONDS     stop both hosts after this long (default: run until Ctrl-C)
  --failover-at SECONDS  SIGKILL the primary's emulator this long after the start, to watch the
                         backup take over the guest (fractions allowed, e.g. 7.5); if the guest
                         has ended by then, nothing is killed and the run ends with its status.
                         With --reprotect it may be given several times
  --reprotect            after each takeover, start a fresh host that joins the survivor as its
                         new backup (it syncs while the guest runs); the hosts (QEMU) share one
                         emulated segment and are named A, B, C, ... on the console
  --nic virtio-net|e1000 the QEMU hosts' NIC (default: virtio-net; Bochs hosts have an e1000)
  --guest-net CIDR       give the guest a network card (guest_net=nic) reachable from this
                         machine: a bridge castorbr<pid> with address CIDR (e.g. 10.0.2.1/24)
                         and a tap per QEMU host, deleted at the end (needs root); the guest
                         configures its own address in that subnet (scripts/linux-guest --net:
                         10.0.2.15, a record service on TCP port 7000)
  --peer-timeout MS      silence after which a host counts its peer as lost, 100 to 600000
                         (default: 3000 under QEMU, 10000 under Bochs)

Single host:
  --single               boot one Castor host instead of a pair
  --timeout SECONDS      kill the emulator after this long; 0 = never
                         (default: 60 for qemu, 300 for bochs)

  -h, --help             show this help

Exit status of a pair: 0 when --duration ran out (with --failover-at: and the backup reported
taking over); the guest's status (what it wrote to port 0xf4, modulo 256) if it exited on
either host; 1 with the reason if a host ended otherwise or the backup did not take over;
130 on Ctrl-C; 2 on bad usage.
Exit status with --single: 0 if the kernel reported success, 1 if it reported failure or the
emulator ended otherwise, 124 on timeout, 2 on bad usage. With --guest: the status the guest
wrote to port 0xf4 (modulo 256) if it exited, 1 if Castor stopped it, refused to load it or
cannot run guests on this CPU, 124 on timeout.";

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

    #[test]
    fn the_usage_names_every_option() {
        for option in [
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
            "--single",
        ] {
            let described = format!("\n  {option} ");
            assert!(RUN_USAGE.contains(&described), "{option} is not described");
        }
    }
}
