//! Re-protection: a primary whose guest runs unprotected takes a new backup, which gets the
//! guest's memory while the guest runs (pre-copy rounds, then a first checkpoint), and the
//! pair is protected again.
//!
//! Hosts meet on a [`Hub`] (a shared Ethernet segment of QEMU `dgram` netdevs on loopback), so
//! new hosts can join the survivors at any time. What the chain of failovers proves:
//! - each backup takes over at an epoch whose memory digest equals the one its primary
//!   computed when it finished sending that epoch (the memory of the takeover is exact);
//! - a host that took over waits for a new backup, syncs it while the guest runs, and says it
//!   is protected again (both consoles, with the sync's figures);
//! - the guest output the four hosts released, in turn, is the demo's step sequence with no
//!   gap, no repeat and every chain value equal to a host-side model of the guest: identical
//!   to an unprotected run (except the lines each takeover announces may repeat).

use castor_tests::contract::{APPLIED_EPOCH_MARKER, BACKUP_LOST_MARKER, TAKEOVER_MARKER};
use castor_tests::demo::{DemoParams, WorkLine, WorkParams, check_released, parse_work_line};
use castor_tests::handle::RunHandle;
use castor_tests::outcome::Outcome;
use castor_tests::pair::Role;
use castor_tests::pair::released::{check_digest_between, released_by_chain};
use castor_tests::pair::segment::{Segment, expect};
use castor_tests::random::Random;
use castor_tests::scrape::number_after;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Peer timeout of the chain's hosts (see `ft.rs`: a loaded machine starves QEMU clocks).
const PEER_TIMEOUT_MS: u32 = 6000;
/// What a primary says once a new backup acknowledged its first checkpoint.
const PROTECTED_AGAIN: &str = "ft: primary: protected again from epoch";
/// What the new backup says when it applied that checkpoint.
const BACKUP_PROTECTING: &str = "ft: backup: protecting the guest from epoch";
/// What a host that runs its guest without a backup says.
const AWAITING: &str = "ft: primary: the guest runs unprotected; waiting for a new backup";

/// `primary` has a backup it syncs: waits until both say the guest is protected again, and
/// prints the sync's figures.
fn await_protection(primary: (&mut RunHandle, &str), backup: (&mut RunHandle, &str)) {
    let again = expect(primary.0, primary.1, PROTECTED_AGAIN);
    let synced = expect(backup.0, backup.1, BACKUP_PROTECTING);
    println!("reprotect: {}: {again}", primary.1);
    println!("reprotect: {}: {synced}", backup.1);
}

#[test]
fn qemu_guest_survives_three_failovers_in_a_row_with_a_new_backup_each_time() {
    let mut random = Random::from_clock("reprotect chain");
    let params = DemoParams {
        pages: 16,
        span: 512,
        hz: 20,
    };
    let mut seg = Segment::new(&params.args(0), "", PEER_TIMEOUT_MS).expect("a segment");
    let names = ["A", "B", "C", "D"];
    let mut primary = seg
        .start(names[0], Role::Primary)
        .expect("starting a host")
        .run;
    let mut backup = seg
        .start(names[1], Role::Backup)
        .expect("starting a host")
        .run;
    expect(&mut backup, names[1], &format!("{APPLIED_EPOCH_MARKER}0"));
    expect(&mut primary, names[0], "[guest] demo: step=");
    let mut outcomes: Vec<Outcome> = Vec::new();
    for round in 1..=3 {
        let (dying, taking) = (names[round - 1], names[round]);
        let delay = random.millis(500, 2500);
        sleep(delay);
        primary.kill().expect("killing the primary");
        let took = expect(&mut backup, taking, TAKEOVER_MARKER);
        println!(
            "reprotect: {dying} killed {} ms in, {taking} {}",
            delay.as_millis(),
            took.trim()
        );
        expect(&mut backup, taking, AWAITING);
        outcomes.push(primary.stop());
        primary = backup;
        if round == 3 {
            break;
        }
        let next = names[round + 1];
        backup = seg.start(next, Role::Backup).expect("starting a host").run;
        await_protection((&mut primary, taking), (&mut backup, next));
    }
    // The last host runs the guest on for a while.
    let before = primary.serial().unwrap_or_default().lines().count();
    sleep(Duration::from_secs(2));
    assert!(primary.serial().unwrap_or_default().lines().count() > before);
    outcomes.push(primary.stop());
    for (i, pair) in outcomes.windows(2).enumerate() {
        let epoch = check_digest_between(&pair[0], &pair[1])
            .unwrap_or_else(|e| panic!("takeover by {}: {e}", names[i + 1]));
        println!(
            "reprotect: {}'s memory at its takeover (epoch {epoch}) is {}'s",
            names[i + 1],
            names[i]
        );
    }
    let hosts: Vec<&Outcome> = outcomes.iter().collect();
    let summary = check_released(&params, released_by_chain(&hosts)).unwrap_or_else(|v| {
        let consoles: Vec<String> = outcomes
            .iter()
            .zip(names)
            .map(|(o, n)| format!("--- {n} ---\n{}", o.summary()))
            .collect();
        panic!("released output is wrong: {v}\n{}", consoles.join("\n"))
    });
    let per_host: Vec<usize> = outcomes
        .iter()
        .map(|o| castor_tests::pair::released::guest_lines(o).len())
        .collect();
    println!(
        "reprotect: steps {}..={} released by A, B, C, D ({per_host:?} lines each)",
        summary.first, summary.last
    );
    assert!(
        per_host.iter().all(|&n| n > 0),
        "every host released output: {per_host:?}"
    );
    let epochs: Vec<u64> = outcomes[1..]
        .iter()
        .filter_map(|o| {
            o.line_with(TAKEOVER_MARKER)
                .map(|l| number_after(l, "at epoch"))
        })
        .collect();
    assert_eq!(epochs.len(), 3, "three takeovers");
}

/// The guest's work rate (steps per second of its own clock) over the work lines of a console
/// between the lines holding `from` and `to` (`None`: to the end): the rate and how many
/// one-second reports it covers.
fn work_rate(console: &str, from: &str, to: Option<&str>) -> (f64, usize) {
    let (mut steps, mut ms, mut reports) = (0, 0, 0);
    let mut inside = false;
    for line in console.lines() {
        if line.contains(from) {
            inside = true;
        } else if to.is_some_and(|to| line.contains(to)) {
            break;
        } else if let (true, Some(WorkLine::Interval(i))) = (inside, parse_work_line(line)) {
            steps += i.steps;
            ms += i.ms;
            reports += 1;
        }
    }
    (steps as f64 * 1000.0 / ms.max(1) as f64, reports)
}

/// The original primary loses its backup, runs on unprotected, and takes a new one while the
/// guest keeps working: prints the guest's work rate before, during and after the sync (a
/// working set of random pages too large to send in the time of an epoch makes the sync last
/// seconds). The hosts have two CPUs: the primary's checkpoint pipeline runs on the second
/// while protected, on the guest's while not, and on the second again once protected anew.
#[test]
fn qemu_primary_that_lost_its_backup_takes_a_new_one_while_the_guest_works() {
    let work = WorkParams {
        pages: 16,
        span: 6144,
        words: 512,
        secs: 120,
    };
    let mut seg = Segment::new(&work.args(), "", PEER_TIMEOUT_MS)
        .expect("a segment")
        .cpus(2);
    let mut a = seg.start("A", Role::Primary).expect("starting a host").run;
    let mut b = seg.start("B", Role::Backup).expect("starting a host").run;
    expect(&mut b, "B", &format!("{APPLIED_EPOCH_MARKER}0"));
    expect(&mut a, "A", "[guest] demo: work ");
    sleep(Duration::from_secs(3));
    b.kill().expect("killing the backup");
    expect(&mut a, "A", BACKUP_LOST_MARKER);
    expect(&mut a, "A", AWAITING);
    sleep(Duration::from_secs(3));
    let mut c = seg.start("C", Role::Backup).expect("starting a host").run;
    expect(&mut a, "A", "ft: primary: a new backup joined");
    await_protection((&mut a, "A"), (&mut c, "C"));
    // Output is released once its epoch is acknowledged, and with the guest dirtying all of
    // its 24 MiB working set an epoch takes seconds to send (more on a loaded machine): wait
    // for the first work report C's protection releases, then a little longer.
    let released_under_c = Instant::now() + Duration::from_secs(90);
    while work_rate(&a.serial().expect("A's console"), PROTECTED_AGAIN, None).1 == 0 {
        assert!(
            Instant::now() < released_under_c,
            "no work report released under C's protection in 90 s"
        );
        sleep(Duration::from_millis(250));
    }
    sleep(Duration::from_secs(2));
    let console = a.serial().expect("A's console");
    let joined = "ft: primary: a new backup joined";
    let phases = [
        (
            "protected by B",
            "ft: primary: protecting",
            Some(BACKUP_LOST_MARKER),
        ),
        ("unprotected", AWAITING, Some(joined)),
        ("syncing C", joined, Some(PROTECTED_AGAIN)),
        ("protected by C", PROTECTED_AGAIN, None),
    ];
    let rates: Vec<(f64, usize)> = phases
        .iter()
        .map(|(_, from, to)| work_rate(&console, from, *to))
        .collect();
    for ((name, ..), (rate, reports)) in phases.iter().zip(&rates) {
        println!("reprotect: guest work rate {name}: {rate:.0} steps/s over {reports} reports");
    }
    if rates[1].0 > 0.0 {
        println!(
            "reprotect: work rate during the sync / unprotected = {:.2}",
            rates[2].0 / rates[1].0
        );
    }
    assert!(
        rates[1].1 > 0 && rates[3].1 > 0,
        "work reports unprotected and after"
    );
    assert!(
        rates.iter().all(|r| r.1 == 0 || r.0 > 0.0),
        "the guest kept working"
    );
    // The pipeline on cpu 1 while B protected the guest, and again once C did.
    let beside = "ft: primary: the checkpoint pipeline runs on cpu 1";
    let starts: Vec<usize> = console.match_indices(beside).map(|(at, _)| at).collect();
    let (lost, again) = (
        console.find(BACKUP_LOST_MARKER).expect("the loss"),
        console.find(PROTECTED_AGAIN).expect("protected again"),
    );
    assert!(
        starts.first().is_some_and(|&s| s < lost) && starts.iter().any(|&s| s > lost && s < again),
        "the pipeline ran on cpu 1 under both backups: at {starts:?}, backup lost at {lost}, \
         protected again at {again}"
    );
    drop(c);
    a.stop();
}
