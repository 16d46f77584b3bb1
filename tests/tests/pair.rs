//! The pair launcher ([`castor_tests::pair`]) and `scripts/run`'s pair mode, on real hosts:
//! a QEMU pair in link-test mode streams both consoles live with role prefixes in arrival
//! order, `kill_primary` SIGKILLs the primary's emulator and the backup reports the peer lost
//! within its timeout; `castor-run` pairs a Multiboot guest and exits with the guest's status,
//! and refuses option combinations that make no sense before building anything.

use castor_tests::cli;
use castor_tests::contract::{self, PEER_LOST_MARKER, QEMU_EXIT_PASS};
use castor_tests::kernel;
use castor_tests::pair::{HostState, Pair, Role, SharedBuffer};
use castor_tests::scrape::number_after;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Splits a live console transcript into (role, line) in the order the lines arrived; panics
/// on a line without a role prefix.
fn transcript(text: &str) -> Vec<(Role, &str)> {
    text.lines()
        .map(|line| {
            Role::BOTH
                .into_iter()
                .find_map(|role| line.strip_prefix(role.prefix()).map(|rest| (role, rest)))
                .unwrap_or_else(|| panic!("a line without a role prefix: {line:?}"))
        })
        .collect()
}

#[test]
fn qemu_pair_streams_prefixed_consoles_and_the_backup_loses_a_killed_primary() {
    let console = SharedBuffer::new();
    let mut pair = Pair::qemu()
        .args("linktest=1")
        .live_console(Box::new(console.clone()))
        .start()
        .expect("starting the pair");
    let timeout = u64::from(Pair::qemu().effective_peer_timeout_ms());
    let received = pair
        .wait_for(Role::Backup, "link: received 1 MiB")
        .expect("the backup receives the stream");
    assert!(
        received.contains("identical to the sender's stream"),
        "{received}"
    );
    pair.wait_for(Role::Primary, "link: sent 1 MiB")
        .expect("the primary sends it");
    let backup_so_far = pair.console(Role::Backup).expect("the backup's console");
    assert!(!backup_so_far.contains("peer lost"), "{backup_so_far}");

    let primary_pid = pair.host(Role::Primary).pid();
    let killed = pair.kill_primary().expect("killing the primary");
    assert!(killed > pair.started());
    assert_eq!(pair.state(Role::Primary).unwrap(), HostState::Killed);
    assert!(
        !Path::new(&format!("/proc/{primary_pid}")).exists(),
        "the primary's QEMU ({primary_pid}) is gone"
    );
    assert!(pair.kill_primary().is_err(), "a second kill is refused");
    let lost = pair
        .wait_for(Role::Backup, PEER_LOST_MARKER)
        .expect("the backup notices the primary's death");
    let silent = number_after(&lost, "lost after");
    assert!(
        (timeout..timeout + 300).contains(&silent),
        "lost after {silent} ms of silence with a {timeout} ms timeout: {lost}"
    );

    let outcome = pair.wait_exit();
    outcome.backup.expect_exit_code(QEMU_EXIT_PASS);
    assert_eq!(outcome.primary.exit_code, None, "the primary was killed");
    assert!(outcome.killed[0].is_some() && outcome.killed[1].is_none());

    // The live console holds exactly both consoles, each line under its host's prefix.
    let text = console.text();
    let lines = transcript(&text);
    for role in Role::BOTH {
        let streamed: Vec<&str> = lines
            .iter()
            .filter(|(r, _)| *r == role)
            .map(|(_, l)| *l)
            .collect();
        let serial: Vec<&str> = outcome.host(role).lines().collect();
        assert_eq!(streamed, serial, "the {role}'s console, streamed:\n{text}");
    }
    // In arrival order: the hosts interleave, and the backup's verdict comes after the
    // primary's last word.
    let position = |role: Role, what: &str| {
        lines
            .iter()
            .position(|(r, l)| *r == role && l.contains(what))
            .unwrap_or_else(|| panic!("no {role} line with {what:?} in\n{text}"))
    };
    let last_primary = lines.iter().rposition(|(r, _)| *r == Role::Primary);
    let last_primary = last_primary.expect("primary lines");
    let first_backup = lines.iter().position(|(r, _)| *r == Role::Backup);
    assert!(
        first_backup.expect("backup lines") < last_primary,
        "not interleaved:\n{text}"
    );
    assert!(
        position(Role::Backup, "link: peer lost") > last_primary,
        "{text}"
    );
    println!("{text}");
}

fn castor_run(args: &[&str]) -> (Option<i32>, String, String) {
    let elf = kernel::elf().expect("building the kernel");
    let out = Command::new(env!("CARGO_BIN_EXE_castor-run"))
        .args(args)
        .env(kernel::KERNEL_ENV, elf)
        .output()
        .expect("running castor-run");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// `scripts/run --guest FILE --guest-args status=5` pairs two QEMU hosts running the guest,
/// shows role-prefixed consoles and exits with the guest's status.
#[test]
fn castor_run_pairs_a_guest_and_exits_with_its_status() {
    let mbtest = kernel::mbtest().expect("building castor-mbtest");
    let mbtest = mbtest.to_str().expect("a UTF-8 path");
    let args = ["--guest", mbtest, "--guest-args", "status=5"];
    let (code, stdout, stderr) = castor_run(&[&args[..], &["--guest-ram", "4"]].concat());
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(code, Some(5), "{context}");
    let lines = transcript(&stdout);
    assert!(
        lines
            .iter()
            .any(|(_, l)| *l == "[guest] mbtest: cmdline 'status=5'"),
        "{context}"
    );
    assert!(
        lines
            .iter()
            .any(|(r, l)| *r == Role::Primary && contract::is_banner(l)),
        "the primary's banner under its prefix: {context}"
    );
    assert!(
        stderr.contains("castor-run: pairing two hosts under qemu (2 CPU(s) each"),
        "{context}"
    );
    assert!(
        stderr.contains("ended: guest exited with status 5 after"),
        "{context}"
    );
}

/// `--failover-at` after the guest has ended (here: as soon as the backup has stood down, the
/// primary possibly still finishing) kills nothing, and the run ends with the guest's status
/// instead of failing over an ended guest and waiting out `--duration`.
#[test]
fn castor_run_does_not_fail_over_a_guest_that_has_ended() {
    let mbtest = kernel::mbtest().expect("building castor-mbtest");
    let mut pair = Pair::qemu()
        .kernel(kernel::elf().expect("building the kernel"))
        .guest(mbtest, "status=5")
        .guest_ram_mib(4)
        .start()
        .expect("starting the pair");
    pair.wait_for(Role::Backup, contract::STANDDOWN_MARKER)
        .expect("the backup stands down when the guest ends");
    let primary_running = pair.state(Role::Primary).unwrap() == HostState::Running;
    // Due now; the duration is far off.
    let failover_at = pair.started().elapsed();
    let duration = failover_at + Duration::from_secs(600);
    let verdict = cli::watch_pair(&mut pair, Some(failover_at), Some(duration), "qemu", None)
        .expect("watching the pair");
    let killed = pair.killed_after(Role::Primary);
    let outcome = pair.stop();
    let context = format!(
        "{verdict:?} (primary still running at the failover time: {primary_running})\n\
         primary:\n{}\nbackup:\n{}",
        outcome.primary.summary(),
        outcome.backup.summary()
    );
    assert_eq!(killed, None, "{context}");
    assert_eq!((verdict.code, verdict.failed), (5, false), "{context}");
    assert!(
        verdict
            .message
            .starts_with("the primary ended: guest exited with status 5"),
        "{context}"
    );
    println!("primary still running at the failover time: {primary_running}");
}

/// Usage errors come back as status 2 with the reason and the usage, before anything is
/// built or booted.
#[test]
fn castor_run_refuses_pair_options_that_do_not_fit() {
    for (args, why) in [
        (
            &["--single", "--failover-at", "3"][..],
            "--failover-at is for a pair",
        ),
        (&["--timeout", "10"], "--timeout is for --single"),
        (
            &["--duration", "5", "--failover-at", "9"],
            "must come before the end",
        ),
        (&["--append", "role=backup"], "sets role= and key= itself"),
        (
            &["--emulator", "bochs", "--nic", "virtio-net"],
            "only an e1000",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_castor-run"))
            .args(args)
            // A kernel that does not exist: nothing may get as far as booting.
            .env(kernel::KERNEL_ENV, "/nonexistent/castor")
            .output()
            .expect("running castor-run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: scripts/run"), "{args:?}: {stderr}");
    }
}

/// The backup's QEMU CPU in a pair of unlike CPUs: an AMD with SVM and nested paging (what
/// Castor needs) and little else, where the primary has TCG's `-cpu max`.
const SMALL_AMD: &str = "qemu64,+svm,+npt";

/// A pair of unlike CPUs of one vendor pairs, both hosts offer the guest the same baseline
/// (the primary withholds what the backup lacks, the backup withholds nothing), and the guest
/// runs to its end.
#[test]
fn unlike_cpus_pair_and_offer_the_guest_their_baseline() {
    let mbtest = kernel::mbtest().expect("building castor-mbtest");
    let pair = Pair::qemu()
        .guest(mbtest, "status=5")
        .guest_ram_mib(4)
        .qemu_cpu_for(Role::Backup, SMALL_AMD);
    let outcome = pair.start().expect("starting the pair").wait_exit();
    let context = format!(
        "primary:\n{}\nbackup:\n{}",
        outcome.primary.summary(),
        outcome.backup.summary()
    );
    let offered = |role: Role| {
        let line = outcome
            .host(role)
            .line_with("ft: guest CPU: ")
            .unwrap_or_else(|| panic!("no guest CPU line from the {role}: {context}"));
        let (model, withheld) = line.rsplit_once(", ").expect("a withheld count");
        let count = withheld
            .split(' ')
            .next()
            .and_then(|n| n.parse::<u32>().ok());
        (model.to_string(), count.expect("a withheld count"))
    };
    let (primary, backup) = (offered(Role::Primary), offered(Role::Backup));
    assert_eq!(primary.0, backup.0, "one baseline on both hosts: {context}");
    assert!(
        primary.1 > 0,
        "-cpu max has more than {SMALL_AMD}: {context}"
    );
    assert_eq!(backup.1, 0, "{SMALL_AMD} is the baseline: {context}");
    assert!(
        outcome
            .primary
            .serial
            .contains("[guest] mbtest: cmdline 'status=5'"),
        "{context}"
    );
    println!("primary: {primary:?}, backup: {backup:?}");
}

/// A backup whose CPU is another vendor's cannot resume the guest: both hosts refuse to pair,
/// with the reason, before the guest starts.
#[test]
fn a_backup_of_another_vendor_is_refused() {
    let mbtest = kernel::mbtest().expect("building castor-mbtest");
    let pair = Pair::qemu()
        .guest(mbtest, "status=5")
        .guest_ram_mib(4)
        .qemu_cpu_for(Role::Backup, "max,vendor=GenuineIntel");
    let outcome = pair.start().expect("starting the pair").wait_exit();
    for role in Role::BOTH {
        let console = &outcome.host(role).serial;
        assert!(
            console.contains(
                "ft: pairing refused: the CPU vendors differ: AuthenticAMD on the primary, \
                 GenuineIntel on the backup"
            ),
            "the {role}: {console}"
        );
        assert!(!console.contains("[guest]"), "a refused pair ran the guest");
    }
}

/// `scripts/run --reprotect` with two failovers: A (primary) dies, B takes over and C joins it
/// as its new backup; B dies, C takes over and D joins. The consoles stream under the hosts'
/// names, and the run ends on its duration with the guest on C, protected by D. One CPU a
/// host: with two, QEMU runs them on the host clock, and on a two-core machine three such
/// hosts (one syncing a new backup while another boots) starve each other's links past the
/// short peer timeout this run uses; with one, they run under `$CASTOR_QEMU_ICOUNT`
/// (`scripts/test` sets it), which keeps their clocks to their own progress (the pipeline
/// beside the guest has its own tests, in `guest_net_pair.rs` and `ft_bench.rs`).
#[test]
fn castor_run_reprotect_starts_a_new_backup_after_each_failover() {
    let (code, stdout, stderr) = castor_run(&[
        "--cpus",
        "1",
        "--reprotect",
        "--failover-at",
        "6",
        "--failover-at",
        "14",
        "--duration",
        "24",
        "--peer-timeout",
        "3000",
    ]);
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(code, Some(0), "{context}");
    for line in [
        "castor-run: killed A (the primary) at",
        "castor-run: C joins B as its new backup",
        "castor-run: killed B (the primary) at",
        "castor-run: D joins C as its new backup",
        "B backup  | ft: backup took over at epoch",
        "C backup  | ft: backup took over at epoch",
        "B backup  | ft: primary: protected again from epoch",
        "D backup  | ft: backup: protecting the guest from epoch",
    ] {
        assert!(stdout.contains(line), "no {line:?}: {context}");
    }
    assert!(
        stderr.contains("failovers, the guest now on C with D as backup"),
        "{context}"
    );
}
