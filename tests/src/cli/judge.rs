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
mod tests {
    use super::*;

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

    fn pair<'a>(states: [HostState; 2], serial: [&'a str; 2]) -> PairView<'a> {
        PairView {
            emulator: "qemu",
            hosts: [0, 1].map(|i| HostView {
                state: states[i],
                serial: serial[i],
            }),
            elapsed: Duration::from_secs(10),
            duration_over: false,
            failover: None,
        }
    }

    const RUNNING: [HostState; 2] = [HostState::Running, HostState::Running];

    #[test]
    fn a_running_pair_goes_on_until_its_duration() {
        let mut view = pair(RUNNING, ["[guest] tick 1\n", ""]);
        assert_eq!(judge_pair(&view), None);
        view.hosts[0].state = HostState::Killed;
        view.failover = Some(Duration::from_secs(4));
        assert_eq!(judge_pair(&view), None, "a killed primary is expected");
        view.hosts[0].state = HostState::Running;
        view.failover = None;
        view.duration_over = true;
        let j = judge_pair(&view).unwrap();
        assert_eq!((j.code, j.failed), (0, false));
        assert_eq!(j.message, "ran for 10.0s as asked; both hosts stopped");
    }

    #[test]
    fn a_failover_must_show_the_takeover_by_the_end() {
        let mut view = pair([HostState::Killed, HostState::Running], ["", "link: up\n"]);
        view.failover = Some(Duration::from_millis(2500));
        view.duration_over = true;
        let j = judge_pair(&view).unwrap();
        assert_eq!((j.code, j.failed), (1, true));
        assert_eq!(
            j.message,
            "the backup did not report taking over (\"ft: backup took over\") in the 7.5s \
             after the primary was killed"
        );
        let took = "ft: backup took over at epoch 41 (primary silent for 3000 ms)";
        view.hosts[1].serial = took;
        let j = judge_pair(&view).unwrap();
        assert_eq!((j.code, j.failed), (0, false));
        assert_eq!(
            j.message,
            format!("ran for 10.0s as asked; the backup took over: {took}")
        );
    }

    #[test]
    fn a_backup_that_stands_down_leaves_the_verdict_to_the_primary() {
        let stood_down = "ft: backup: the guest ended on the primary (status 5); standing down\n";
        let mut view = pair(
            [HostState::Running, HostState::Exited(Some(QEMU_EXIT_PASS))],
            ["[guest] bye\n", stood_down],
        );
        assert_eq!(judge_pair(&view), None, "the primary is still finishing");
        view.hosts[0].state = HostState::Exited(Some(QEMU_EXIT_PASS));
        view.hosts[0].serial = "[guest] bye\nguest exited with status 5\n";
        let j = judge_pair(&view).unwrap();
        assert_eq!((j.code, j.failed), (5, false), "{}", j.message);
    }

    /// `--failover-at` after the guest ended: nothing to take over, so no kill, and the
    /// guest's status is the run's (the backup stood down, the primary is still finishing).
    #[test]
    fn a_guest_that_ended_before_the_failover_is_not_failed_over() {
        let stood_down = "ft: backup: the guest ended on the primary (status 5); standing down\n";
        let mut view = pair(
            [HostState::Running, HostState::Exited(Some(QEMU_EXIT_PASS))],
            ["[guest] bye\n", stood_down],
        );
        assert!(guest_ended(&view), "the backup stood down");
        view.hosts[1] = HostView {
            state: HostState::Running,
            serial: "ft: backup: standing by\n",
        };
        assert!(!guest_ended(&view), "the guest runs: a failover is due");
        view.hosts[0].serial = "[guest] bye\nguest exited with status 5\n";
        assert!(guest_ended(&view), "the primary reported the guest's end");
        // The kill raced the primary's own exit: its report of the guest's end still decides.
        view.hosts[0].state = HostState::Killed;
        view.failover = Some(Duration::from_secs(9));
        let j = judge_pair(&view).unwrap();
        assert_eq!((j.code, j.failed), (5, false), "{}", j.message);
        assert_eq!(
            j.message,
            "the primary ended: guest exited with status 5 after 10.0s"
        );
        // Still finishing when the duration ran out: the guest's end decides too.
        view.hosts[0].state = HostState::Running;
        view.failover = None;
        assert_eq!(judge_pair(&view), None, "the primary is finishing");
        view.duration_over = true;
        assert_eq!(judge_pair(&view).map(|j| j.code), Some(5));
        view.duration_over = false;
        // A primary killed while the guest ran is a failover, judged at the duration's end.
        view.hosts[0].state = HostState::Killed;
        view.hosts[0].serial = "[guest] tick\n";
        assert!(!guest_ended(&view));
        assert_eq!(judge_pair(&view), None);
    }

    #[test]
    fn a_host_that_ends_by_itself_ends_the_run() {
        let exited = "[guest] bye\nguest exited with status 5\n";
        let view = pair(
            [HostState::Exited(Some(QEMU_EXIT_PASS)), HostState::Running],
            [exited, ""],
        );
        let j = judge_pair(&view).unwrap();
        assert_eq!((j.code, j.failed), (5, false));
        assert_eq!(
            j.message,
            "the primary ended: guest exited with status 5 after 10.0s"
        );
        // After a takeover the guest ends on the backup.
        let view = pair(
            [HostState::Killed, HostState::Exited(Some(33))],
            ["", exited],
        );
        let j = judge_pair(&view).unwrap();
        assert_eq!(
            (
                j.code,
                j.message.starts_with("the backup ended: guest exited")
            ),
            (5, true)
        );
        // A host that dies without a guest end fails the run, even with the duration over.
        let mut view = pair(
            [HostState::Running, HostState::Exited(Some(QEMU_EXIT_FAIL))],
            ["", "PANIC at x.rs:1: boom (cpu 0)\n"],
        );
        view.duration_over = true;
        let j = judge_pair(&view).unwrap();
        assert_eq!((j.code, j.failed), (1, true));
        assert!(
            j.message.starts_with(
                "the backup ended: Castor reported no end of the guest (kernel reported failure"
            ),
            "{}",
            j.message
        );
        let view = pair([HostState::Exited(None), HostState::Running], ["", ""]);
        let j = judge_pair(&view).unwrap();
        assert!(
            j.failed && j.message.contains("qemu was killed by a signal"),
            "{j:?}"
        );
        // Refusing the guest is the guest's or the machine's fault, but still a failed run.
        let refused = "guest: cannot load 'x': no Multiboot header\n";
        let view = pair(
            [HostState::Exited(Some(QEMU_EXIT_FAIL)), HostState::Running],
            [refused, ""],
        );
        let j = judge_pair(&view).unwrap();
        assert_eq!((j.code, j.failed), (1, false));
    }
}
