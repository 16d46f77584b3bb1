//! Split-brain protection with a witness (`witness=on`, `castor-witness`): real partitions of
//! the segment the hosts and the witness share (the [`Hub`](castor_tests::hub::Hub) cuts
//! paths), and a witness that dies. In every case at most one side runs the guest and releases
//! its output, and the output the hosts released, in turn, is the demo's step sequence with no
//! gap and no repeat (except the lines a takeover announces it may repeat).
//!
//! The hosts keep time by the machine's clock: leases need clocks that track real time (see
//! `castor_ft::witness`, timing rules).

use castor_ft::witness::WITNESS_UDP_PORT;
use castor_tests::contract::{APPLIED_EPOCH_MARKER, BACKUP_LOST_MARKER, TAKEOVER_MARKER};
use castor_tests::demo::{DemoParams, check_released};
use castor_tests::guestnet::{BRIDGE, CLIENT_IP, network_or_skip};
use castor_tests::handle::RunHandle;
use castor_tests::kernel;
use castor_tests::outcome::Outcome;
use castor_tests::pair::released::{check_digest_between, guest_lines, released_by_chain};
use castor_tests::pair::segment::spawn_witness;
use castor_tests::pair::segment::{Segment, SegmentHost, expect};
use castor_tests::pair::{GuestNetwork, Nic, Pair, PairOutcome, Role, random_key};
use castor_tests::process::Process;
use std::path::Path;
use std::sync::Arc;
use std::thread::sleep;
use std::time::Duration;

const PEER_TIMEOUT_MS: u32 = 3000;
const LEASE_MS: u32 = 3000;
const HOLDS: &str = "ft: primary: holds the witness's lease";
const PROTECTED_AGAIN: &str = "ft: primary: protected again from epoch";
const BACKUP_PROTECTING: &str = "ft: backup: protecting the guest from epoch";

fn params() -> DemoParams {
    DemoParams {
        pages: 8,
        span: 256,
        hz: 20,
    }
}

fn witness_program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_castor-witness"))
}

/// A segment, its witness (process and hub port), primary A and backup B.
struct Formed {
    seg: Segment,
    witness: Process,
    witness_port: usize,
    a: SegmentHost,
    b: SegmentHost,
}

/// A segment with a witness, primary A and backup B, paired and with A holding the lease.
fn formed() -> Formed {
    let mut seg = Segment::new(&params().args(0), "witness=on", PEER_TIMEOUT_MS)
        .expect("a segment")
        .host_clock();
    let (witness, port, first) = seg
        .start_witness(witness_program(), LEASE_MS)
        .expect("the witness");
    println!("witness: {first}");
    let mut a = seg.start("A", Role::Primary).expect("A");
    let mut b = seg.start("B", Role::Backup).expect("B");
    expect(&mut b.run, "B", &format!("{APPLIED_EPOCH_MARKER}0"));
    expect(&mut a.run, "A", "[guest] demo: step=");
    expect(&mut a.run, "A", HOLDS);
    Formed {
        seg,
        witness,
        witness_port: port,
        a,
        b,
    }
}

/// The guest lines `host` released so far.
fn released_now(host: &mut RunHandle) -> usize {
    let text = host.serial().unwrap_or_default();
    text.lines().filter(|l| l.starts_with("[guest] ")).count()
}

/// Cuts (or heals) both directions between hub ports `x` and `y`.
fn cut(seg: &Segment, x: usize, y: usize, on: bool) {
    seg.hub.set_cut(x, y, on);
    seg.hub.set_cut(y, x, on);
}

/// The released output of `hosts` in turn is the demo's sequence; prints the steps.
fn check_chain(hosts: &[&Outcome], names: &str) {
    let summary = check_released(&params(), released_by_chain(hosts)).unwrap_or_else(|v| {
        let consoles: Vec<String> = hosts.iter().map(|o| o.summary()).collect();
        panic!(
            "released output is wrong: {v}\n{}",
            consoles.join("\n---\n")
        )
    });
    println!(
        "witness: steps {}..={} released by {names} with no gap",
        summary.first, summary.last
    );
}

#[test]
fn qemu_partitions_with_a_witness_leave_one_side_running() {
    let Formed {
        seg,
        witness: _witness,
        witness_port: w,
        mut a,
        mut b,
    } = formed();
    // 1. The link between A and B breaks; both still reach the witness. A holds the lease: it
    //    goes on unprotected with no gap, B stands by without taking over.
    cut(&seg, a.port, b.port, true);
    expect(&mut a.run, "A", BACKUP_LOST_MARKER);
    let waiting = expect(&mut b.run, "B", "not taking over");
    assert!(waiting.contains("holds the witness's lease"), "{waiting}");
    let before = released_now(&mut a.run);
    sleep(Duration::from_secs(3));
    assert!(released_now(&mut a.run) > before, "A's output went on");
    let console = b.run.serial().unwrap_or_default();
    assert!(!console.contains(TAKEOVER_MARKER) && !console.contains("[guest] "));
    // The link heals: B joins A again as a new backup.
    cut(&seg, a.port, b.port, false);
    expect(&mut b.run, "B", "paired with a running primary");
    expect(&mut a.run, "A", PROTECTED_AGAIN);
    expect(&mut b.run, "B", BACKUP_PROTECTING);
    println!("witness: the cut link healed and B protects A's guest again");
    // 2. A is cut off from both: it loses its majority and stops; B gets the lease and takes
    //    over.
    cut(&seg, a.port, b.port, true);
    cut(&seg, a.port, w, true);
    let deposed = expect(&mut a.run, "A", "ft: primary: no majority");
    expect(&mut b.run, "B", "the witness granted this host the lease");
    let took = expect(&mut b.run, "B", TAKEOVER_MARKER);
    println!("witness: A: {deposed}\nwitness: B: {took}");
    // 3. A comes back: it discards its copy and re-syncs as B's backup.
    cut(&seg, a.port, b.port, false);
    cut(&seg, a.port, w, false);
    expect(&mut a.run, "A", "ft: backup: paired with a running primary");
    expect(&mut b.run, "B", PROTECTED_AGAIN);
    expect(&mut a.run, "A", BACKUP_PROTECTING);
    println!("witness: deposed A rejoined as B's backup");
    sleep(Duration::from_secs(2));
    let (a, b) = (a.run.stop(), b.run.stop());
    let epoch = check_digest_between(&a, &b).unwrap_or_else(|e| panic!("takeover: {e}"));
    println!("witness: B's memory at its takeover (epoch {epoch}) is A's");
    assert!(
        !guest_lines(&a).is_empty() && !guest_lines(&b).is_empty(),
        "both released in turn"
    );
    check_chain(&[&a, &b], "A, then B");
}

#[test]
fn qemu_pair_without_its_witness_stays_protected_but_no_side_runs_alone() {
    let Formed {
        mut seg,
        mut witness,
        mut a,
        mut b,
        ..
    } = formed();
    witness.kill().expect("killing the witness");
    let silent = expect(&mut a.run, "A", "the witness does not answer");
    assert!(silent.contains("stays protected"), "{silent}");
    let before = released_now(&mut a.run);
    sleep(Duration::from_secs(2));
    assert!(
        released_now(&mut a.run) > before,
        "A's output still committed"
    );
    assert!(
        !a.run
            .serial()
            .unwrap_or_default()
            .contains(BACKUP_LOST_MARKER)
    );
    // The primary dies too: the backup has no majority and does not run.
    a.run.kill().expect("killing A");
    let why = expect(&mut b.run, "B", "does not take over without a majority");
    assert!(why.contains("witness does not answer"), "{why}");
    sleep(Duration::from_secs(5));
    assert!(!b.run.serial().unwrap_or_default().contains(TAKEOVER_MARKER));
    println!("witness: B did not take over without a majority: {why}");
    // A witness again (it grants nothing for its first lease): B takes over.
    let (_witness, _, first) = seg
        .start_witness(witness_program(), LEASE_MS)
        .expect("the witness again");
    println!("witness: {first}");
    expect(&mut b.run, "B", TAKEOVER_MARKER);
    expect(&mut b.run, "B", "[guest] demo: step=");
    sleep(Duration::from_secs(1));
    let (a, b) = (a.run.stop(), b.run.stop());
    check_digest_between(&a, &b).unwrap_or_else(|e| panic!("takeover: {e}"));
    check_chain(&[&a, &b], "A, then B");
}

/// The deployment the README describes: the hosts' peer link on a Linux bridge, and
/// `castor-witness --interface` (a packet socket) on that bridge. The primary holds the lease;
/// killed, its backup takes over with the witness's grant.
#[test]
fn qemu_pair_on_a_linux_bridge_uses_a_witness_on_that_bridge() {
    bridge_witness_takeover(&["--interface", BRIDGE], "raw Ethernet on", |_| {
        String::new()
    });
}

/// The same over UDP/IPv4: the peer link in UDP datagrams between the hosts' addresses, and the
/// witness a UDP socket at the bridge's address (`witness_ip=`), reached through the hosts' ARP
/// and the namespace's own IP stack.
#[test]
fn qemu_pair_over_udp_reaches_its_witness_at_its_address() {
    let witness_ip = CLIENT_IP.split('/').next().expect("an address");
    let listen = format!("{witness_ip}:{WITNESS_UDP_PORT}");
    let Some(outcome) = bridge_witness_takeover(&["--udp", &listen], "UDP", |role| {
        let (me, peer) = match role {
            Role::Primary => (11, 12),
            Role::Backup => (12, 11),
        };
        format!("ip=10.0.2.{me}/24 peer_ip=10.0.2.{peer} witness_ip={witness_ip}")
    }) else {
        return;
    };
    for host in [&outcome.primary, &outcome.backup] {
        let link = host.expect_line(" over UDP ");
        assert!(link.contains(&format!("witness at {listen}")), "{link}");
    }
}

/// A pair on a Linux bridge (its peer link on each host's tap, shared with the guest's card),
/// with `link_args` for each host, and a witness in the bridge's namespace started with
/// `witness_args` (its first line naming `transport`): the primary holds the lease; killed, its
/// backup takes over with the witness's grant, from the epoch the primary last sent. `None`
/// (skipped) where this machine gives no tap devices.
fn bridge_witness_takeover(
    witness_args: &[&str],
    transport: &str,
    link_args: impl Fn(Role) -> String,
) -> Option<PairOutcome> {
    let (net, taps) = network_or_skip(2, 0.0)?;
    let key = random_key().expect("a key");
    let mut cmd = net.command(witness_program().to_str().expect("a UTF-8 path"));
    cmd.args(witness_args);
    let (_witness, first) = spawn_witness(cmd, &key, LEASE_MS).expect("the witness");
    println!("witness: {first}");
    assert!(first.contains(transport), "{first}");
    let mut pair = Pair::qemu()
        .guest(
            kernel::demo().expect("building castor-demo"),
            &params().args(0),
        )
        .guest_ram_mib(32)
        .peer_timeout_ms(PEER_TIMEOUT_MS)
        .key(&key)
        .args("digests=on witness=on")
        .args_for(Role::Primary, &link_args(Role::Primary))
        .args_for(Role::Backup, &link_args(Role::Backup))
        .guest_network(GuestNetwork {
            netns: Some(Arc::clone(net.netns())),
            taps: [taps[0].name().to_string(), taps[1].name().to_string()],
            nic: Nic::VirtioNet,
            shared: true,
        })
        .host_clock()
        .start()
        .expect("starting the pair");
    pair.wait_for(Role::Backup, &format!("{APPLIED_EPOCH_MARKER}0"))
        .expect("the backup applies the full copy");
    pair.wait_for(Role::Primary, HOLDS)
        .expect("the primary holds the lease");
    pair.wait_for(Role::Primary, "[guest] demo: step=")
        .expect("the primary releases output");
    sleep(Duration::from_secs(2));
    pair.kill_primary().expect("killing the primary");
    pair.wait_for(Role::Backup, "the witness granted this host the lease")
        .expect("the witness grants the backup the lease");
    pair.wait_for(Role::Backup, TAKEOVER_MARKER)
        .expect("the backup takes over");
    pair.wait_for(Role::Backup, "[guest] demo: step=")
        .expect("the backup releases output");
    let outcome = pair.stop();
    check_digest_between(&outcome.primary, &outcome.backup)
        .unwrap_or_else(|e| panic!("takeover: {e}"));
    check_chain(
        &[&outcome.primary, &outcome.backup],
        "the primary, then the backup",
    );
    Some(outcome)
}
