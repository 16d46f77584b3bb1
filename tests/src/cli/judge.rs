//! `castor-run`'s verdicts: how a finished single run ([`judge`]) or a pair that is still
//! running ([`judge_pair`]) turns into an exit status and a sentence for a person.

use crate::contract::{
    self, GuestEnd, PASS_MARKER, QEMU_EXIT_FAIL, QEMU_EXIT_PASS, STANDDOWN_MARKER, TAKEOVER_MARKER,
};
use crate::pair::{HostState, Role};
use std::time::Duration;

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

/// One host of a running pair, as [`judge_pair`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct HostView<'a> {
    /// Whether it runs, ended by itself or was killed.
    pub state: HostState,
    /// Its console so far.
    pub serial: &'a str,
}

/// A running pair, as [`judge_pair`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct PairView<'a> {
    /// `"qemu"` or `"bochs"`.
    pub emulator: &'a str,
    /// The primary and the backup.
    pub hosts: [HostView<'a>; 2],
    /// Time since the pair started.
    pub elapsed: Duration,
    /// `--duration` has run out.
    pub duration_over: bool,
    /// When the primary was killed (`--failover-at`), after the start.
    pub failover: Option<Duration>,
}

/// Whether the guest has ended on the primary: the primary reported Castor's verdict on it
/// (`guest exited with status N` and the like), or the backup stood down because of it
/// ([`STANDDOWN_MARKER`]; the primary may still be finishing). A failover after that has no
/// guest to take over, so `castor-run` kills nothing and waits for the primary's end.
pub fn guest_ended(view: &PairView<'_>) -> bool {
    let [primary, backup] = view.hosts;
    contract::guest_end(lines(primary.serial)).is_some()
        || lines(backup.serial).any(|l| l.contains(STANDDOWN_MARKER))
}

/// Decides whether a pair run is over and how it went; `None` while it should go on.
///
/// A host that ends by itself ends the run, judged like a single `--guest` run ([`judge`]):
/// a guest that exits there gives its status (on the backup too: after a takeover the guest
/// runs there); any other end is a failure. So does a host that had reported the guest's end
/// and was killed (as it was finishing) or is still finishing when `--duration` runs out: its
/// report decides. When `--duration`
/// runs out the run succeeded, unless the primary was killed and the backup never reported
/// taking over ([`TAKEOVER_MARKER`]).
pub fn judge_pair(view: &PairView<'_>) -> Option<Judgement> {
    for role in Role::BOTH {
        let host = view.hosts[role.index()];
        let exit_code = match host.state {
            HostState::Exited(exit_code) => exit_code,
            // Killed as it was finishing, or still finishing when the duration ran out.
            HostState::Killed | HostState::Running
                if (host.state == HostState::Killed || view.duration_over)
                    && contract::guest_end(lines(host.serial)).is_some() =>
            {
                None
            }
            HostState::Running | HostState::Killed => continue,
        };
        if role == Role::Backup && lines(host.serial).any(|l| l.contains(STANDDOWN_MARKER)) {
            continue;
        }
        let end = RunEnd {
            emulator: view.emulator,
            exit_code,
            timed_out: false,
            elapsed: view.elapsed,
            serial: host.serial,
        };
        let j = judge(&end, true);
        return Some(Judgement {
            message: format!("the {role} ended: {}", j.message),
            ..j
        });
    }
    if !view.duration_over {
        return None;
    }
    let elapsed = format!("{:.1}s", view.elapsed.as_secs_f64());
    let backup = view.hosts[Role::Backup.index()].serial;
    let takeover = lines(backup).find(|l| l.contains(TAKEOVER_MARKER));
    Some(match (view.failover, takeover) {
        (None, _) => Judgement {
            code: 0,
            message: format!("ran for {elapsed} as asked; both hosts stopped"),
            failed: false,
        },
        (Some(_), Some(line)) => Judgement {
            code: 0,
            message: format!("ran for {elapsed} as asked; the backup took over: {line}"),
            failed: false,
        },
        (Some(killed), None) => Judgement {
            code: 1,
            message: format!(
                "the backup did not report taking over ({TAKEOVER_MARKER:?}) in the {:.1}s \
                 after the primary was killed",
                (view.elapsed.saturating_sub(killed)).as_secs_f64()
            ),
            failed: true,
        },
    })
}

/// All lines of a console, the unterminated last one too.
fn lines(serial: &str) -> impl Iterator<Item = &str> {
    crate::serial::lines(serial, true)
}

#[cfg(test)]
mod tests;
