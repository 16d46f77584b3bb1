//! Unit tests of castor-run's verdicts.

use super::*;

fn end(emulator: &'static str, exit_code: Option<i32>, serial: &'static str) -> RunEnd<'static> {
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
