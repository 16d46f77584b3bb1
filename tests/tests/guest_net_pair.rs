//! A Linux guest serving TCP through Castor's guest network card (`guest_net=nic`): under one
//! Castor host, and protected by a QEMU pair whose primary is SIGKILLed while a client talks to
//! the guest over one TCP connection. The connection must survive (no reset, no reconnect)
//! and every record the guest acknowledged before the kill must still be there afterwards —
//! output commit at work: the guest's acknowledgement reaches the client only once the backup
//! holds the state that produced it.
//!
//! The network: a private namespace ([`GuestNet`]) with a bridge, the client's address
//! [`CLIENT_IP`] and one tap per Castor host (a second `virtio-net-pci`, which Castor drives and
//! bridges to the guest's virtio-mmio card). The guest is Debian's cloud kernel with the
//! record-service initramfs of [`castor_tests::linux::net`].

use castor_tests::contract::{APPLIED_EPOCH_MARKER, TAKEOVER_MARKER};
use castor_tests::guestnet::{GuestNet, NetClient, Tap, network_or_skip};
use castor_tests::linux::DebianGuest;
use castor_tests::linux::net::{self, SERVING};
use castor_tests::netclient::{RttSummary, parse_acked};
use castor_tests::pair::{GuestNetwork, Nic, Pair, PairHandle, Role};
use castor_tests::qemu::Qemu;
use castor_tests::random::Random;
use castor_tests::{Emulator, Run, RunHandle};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Guest RAM (MiB), as in `linux.rs`.
const GUEST_RAM_MIB: u32 = 128;
/// The pair's peer timeout (as in `linux_pair.rs`: the first whole-memory checkpoint takes
/// the backup a while to verify and apply).
const PEER_TIMEOUT_MS: u32 = 10_000;
/// From the hosts' start to the guest's service listening.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
/// How long the client keeps storing records after the takeover.
const AFTER_TAKEOVER: Duration = Duration::from_secs(8);

/// One Linux guest at a time: each keeps both of the suite's CPUs busy.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The Debian kernel, its modules and busybox, fetched once into the target directory.
fn debian() -> Option<&'static DebianGuest> {
    DebianGuest::for_tests(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("linux-guest"))
}

/// Starts the record client against the guest.
fn client(net: &GuestNet, extra: &[&str]) -> NetClient {
    let mut args = vec!["--get-every", "4"];
    args.extend_from_slice(extra);
    NetClient::start(
        net,
        Path::new(env!("CARGO_BIN_EXE_castor-netclient")),
        &args,
    )
    .expect("starting castor-netclient")
}

/// The number of the last `client: acked N` line so far.
fn last_acked(client: &mut NetClient) -> u64 {
    client
        .lines()
        .iter()
        .rev()
        .find_map(|l| parse_acked(l))
        .unwrap_or(0)
}

/// One Castor host (QEMU, AMD-V, `host_clock`: figures in wall time) running the guest with
/// its card on the only tap of `net`.
fn start_single(debian: &DebianGuest, net: &GuestNet, tap: &Tap, host_clock: bool) -> RunHandle {
    let initrd = debian.net_initramfs("net-castor.cpio");
    let mut qemu = Qemu::kernel().args(tap.qemu_args("g0", "virtio-net-pci", "52:54:00:00:01:09"));
    if host_clock {
        qemu = qemu.host_clock();
    }
    Run::new(Emulator::Qemu(qemu))
        .cmdline(&format!(
            "guest=module guest_ram={GUEST_RAM_MIB} guest_net=nic"
        ))
        .memory_mib(GUEST_RAM_MIB + 128)
        .module("guest", &debian.kernel, &net::net_cmdline(net::DEFAULT_IP))
        .module("module1", &initrd, "")
        .netns(net.netns())
        .timeout(BOOT_TIMEOUT + Duration::from_secs(60))
        .start()
        .expect("starting Castor")
}

/// The client stores records for `secs` seconds against the serving guest and reads them all
/// back; panics with `console` unless every one is there. Its round trips.
fn serve_for(net: &GuestNet, secs: u64, console: impl FnOnce() -> String) -> RttSummary {
    let c = client(net, &["--duration", &secs.to_string()]);
    let end = c.finish(Instant::now() + Duration::from_secs(secs + 90));
    assert!(end.success(), "{}\n{}", end.summary(), console());
    let verified = end.report.verified.map_or(0, |v| v.records);
    assert!(verified >= 20, "{}", end.summary());
    end.report.rtt.expect("the client's round trips")
}

/// One Castor host (QEMU, AMD-V) runs the guest with its card on a tap; the guest's driver
/// refuses an MTU above the card's 1500; the client stores records for a while and reads every
/// one back.
#[test]
fn castor_linux_guest_serves_tcp_over_its_network_card() {
    let Some(debian) = debian() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some((net, taps)) = network_or_skip(1, 0.0) else {
        return;
    };
    let mut run = start_single(debian, &net, &taps[0], false);
    run.wait_for(SERVING)
        .unwrap_or_else(|e| panic!("the guest's service did not start: {e}"));
    let console = run.serial().unwrap_or_default();
    assert!(
        console.contains(net::MTU_REFUSED),
        "the card offers a 1500-byte MTU (VIRTIO_NET_F_MTU), so Linux refuses 9000:\n{console}"
    );
    let rtt = serve_for(&net, 10, || run.serial().unwrap_or_default());
    eprintln!("castor, no pair: {rtt:?}");
}

/// How the hosts reach the guest network.
#[derive(Debug, Clone, Copy)]
struct Wiring {
    /// The model of their NIC on it.
    nic: Nic,
    /// That NIC carries the peer link too (`guest_net=shared`).
    shared: bool,
}

/// A second virtio-net NIC for the guest beside the peer link's.
const OWN_VIRTIO: Wiring = Wiring {
    nic: Nic::VirtioNet,
    shared: false,
};

/// One virtio-net NIC per host for both the peer link and the guest's frames
/// (`guest_net=shared`).
const SHARED_VIRTIO: Wiring = Wiring {
    nic: Nic::VirtioNet,
    shared: true,
};

/// A QEMU pair protecting the guest on `net` (`taps`: the primary's, the backup's), with the
/// pair's default epochs unless `tune` changes them.
fn start_pair(
    debian: &DebianGuest,
    net: &GuestNet,
    taps: &[Tap],
    wiring: Wiring,
    tune: impl FnOnce(Pair) -> Pair,
) -> PairHandle {
    let initrd = debian.net_initramfs("net-pair.cpio");
    let pair = Pair::qemu()
        .guest(&debian.kernel, &net::net_cmdline(net::DEFAULT_IP))
        .guest_module(&initrd, "")
        .guest_ram_mib(GUEST_RAM_MIB)
        .memory_mib(GUEST_RAM_MIB + 128)
        .peer_timeout_ms(PEER_TIMEOUT_MS)
        .guest_network(GuestNetwork {
            netns: Some(Arc::clone(net.netns())),
            taps: [taps[0].name().to_string(), taps[1].name().to_string()],
            nic: wiring.nic,
            shared: wiring.shared,
        })
        .timeout(Duration::from_secs(600));
    tune(pair).start().expect("starting the pair")
}

/// The guest serves the client through the pair (its hosts' guest-traffic NICs of model
/// `nic`); the primary is SIGKILLed once the client has `kill_after` records acknowledged; the backup takes over, and the same connection goes on
/// storing records; at the end every acknowledged record reads back.
fn survives_the_primary_killed(kill_after: u64, loss: f64, wiring: Wiring) {
    survives_the_primary_killed_on(kill_after, loss, wiring, 1);
}

/// [`survives_the_primary_killed`] with `cpus` CPUs per host.
fn survives_the_primary_killed_on(kill_after: u64, loss: f64, wiring: Wiring, cpus: u32) {
    let Some(debian) = debian() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some((net, taps)) = network_or_skip(2, loss) else {
        return;
    };
    let mut h = start_pair(debian, &net, &taps, wiring, |p| p.cpus(cpus));
    h.wait_for(Role::Primary, SERVING)
        .unwrap_or_else(|e| panic!("the guest's service did not start: {e}"));
    let mut c = client(&net, &[]);
    let deadline = Instant::now() + BOOT_TIMEOUT;
    while last_acked(&mut c) < kill_after {
        assert!(
            Instant::now() < deadline,
            "only {} records acknowledged: {:?}",
            last_acked(&mut c),
            c.lines().last()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    h.kill_primary().expect("killing the primary");
    let acked_before = last_acked(&mut c);
    h.wait_for(Role::Backup, TAKEOVER_MARKER)
        .expect("the backup takes over");
    let resumed = Instant::now() + Duration::from_secs(120);
    while last_acked(&mut c) <= acked_before {
        let lost = c.lines().iter().any(|l| l.contains("connection lost"));
        assert!(
            !lost && Instant::now() < resumed,
            "no record acknowledged after the takeover: {:?}",
            c.lines().last()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(AFTER_TAKEOVER);
    c.stop().expect("stopping the client");
    let end = c.finish(Instant::now() + Duration::from_secs(120));
    let backup = h.console(Role::Backup).unwrap_or_default();
    let primary = h.console(Role::Primary).unwrap_or_default();
    h.stop();
    assert_eq!(
        primary.contains("the checkpoint pipeline runs on cpu 1"),
        cpus > 1,
        "where the pipeline ran"
    );
    assert!(
        end.success(),
        "the connection or a record was lost: {}\n--- backup ---\n{backup}",
        end.summary()
    );
    let verified = end.report.verified.map_or(0, |v| v.records);
    assert!(
        verified > acked_before,
        "{verified} records verified, {acked_before} acknowledged before the kill"
    );
    eprintln!(
        "killed after record {acked_before} (loss {loss}%): {}",
        end.summary()
    );
}

#[test]
fn qemu_pair_guest_tcp_connection_survives_the_primary_killed() {
    let mut random = Random::from_clock("kill points");
    // Early (the connection barely started) and later in the same run.
    for range in [3..15, 40..90] {
        survives_the_primary_killed(random.between(range.start, range.end), 0.0, OWN_VIRTIO);
    }
}

#[test]
fn qemu_pair_guest_tcp_connection_survives_the_primary_killed_with_frame_loss_over_e1000() {
    let mut random = Random::from_clock("kill point");
    // The hosts bridge the guest through e1000s here (virtio-net above).
    let wiring = Wiring {
        nic: Nic::E1000,
        shared: false,
    };
    survives_the_primary_killed(random.between(5, 40), 5.0, wiring);
}

/// Each host has one NIC, on the guest network, carrying the peer link (raw Ethernet over the
/// bridge) and the guest's frames (`guest_net=shared`).
#[test]
fn qemu_pair_guest_tcp_connection_survives_the_primary_killed_on_a_shared_nic() {
    let mut random = Random::from_clock("kill point");
    survives_the_primary_killed(random.between(5, 60), 0.0, SHARED_VIRTIO);
}

/// The shared NIC again, on hosts with two CPUs: the primary's checkpoint pipeline (and with
/// it the link's half of the NIC, and the release of the guest's frames) runs on the second,
/// while the guest's CPU drives the guest's half.
#[test]
fn qemu_pair_guest_tcp_connection_survives_the_primary_killed_with_the_pipeline_on_cpu_1() {
    let mut random = Random::from_clock("kill point");
    survives_the_primary_killed_on(random.between(5, 60), 0.0, SHARED_VIRTIO, 2);
}

/// The record service's round trips (wall time, emulated time on the host clock): (a) under
/// one Castor host without fault tolerance, (b) protected by a pair with fixed 25 ms epochs,
/// (c) by a pair whose epochs end as soon as frames wait (`epoch_min=2`, at most 25 ms). What
/// the pair adds to a round trip is the wait for the checkpoint that releases the answer;
/// the target is (c)'s addition at most a quarter of (b)'s.
#[test]
fn bench_guest_net_round_trips() {
    const SECS: u64 = 10;
    let Some(debian) = debian() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let single = {
        let Some((net, taps)) = network_or_skip(1, 0.0) else {
            return;
        };
        let mut run = start_single(debian, &net, &taps[0], true);
        run.wait_for(SERVING)
            .unwrap_or_else(|e| panic!("the guest's service did not start: {e}"));
        serve_for(&net, SECS, || run.serial().unwrap_or_default())
    };
    let pair = |epochs: &str| {
        let Some((net, taps)) = network_or_skip(2, 0.0) else {
            panic!("no taps for the pair after the single host had them");
        };
        let mut h = start_pair(debian, &net, &taps, OWN_VIRTIO, |p| {
            p.host_clock().args(epochs)
        });
        h.wait_for(Role::Primary, SERVING)
            .unwrap_or_else(|e| panic!("the guest's service did not start: {e}"));
        let rtt = serve_for(&net, SECS, || h.console(Role::Primary).unwrap_or_default());
        // Where the added time goes: the primary's last figures (kernel/src/pair/stats.rs).
        let console = h.console(Role::Primary).unwrap_or_default();
        let figures: Vec<&str> = console
            .lines()
            .filter(|l| l.starts_with("ft: primary: ") && !l.contains("protecting"))
            .collect();
        for line in figures.iter().skip(figures.len().saturating_sub(2)) {
            println!("bench guest net: {epochs}: {line}");
        }
        // And the backup's share: its last report of how long epochs took to apply.
        let backup = h.console(Role::Backup).unwrap_or_default();
        if let Some(line) = backup.lines().rfind(|l| l.contains(APPLIED_EPOCH_MARKER)) {
            println!("bench guest net: {epochs}: {line}");
        }
        h.stop();
        rtt
    };
    let fixed = pair("epoch_min=25 epoch_max=25");
    let adaptive = pair("epoch_min=2 epoch_max=25");
    let ms = |us: u64| us as f64 / 1000.0;
    for (name, r) in [
        ("(a) no FT", &single),
        ("(b) pair, 25 ms epochs", &fixed),
        ("(c) pair, adaptive", &adaptive),
    ] {
        println!(
            "bench guest net: {name}: round trip mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms; {:.0} \
             requests/s",
            ms(r.mean_us),
            ms(r.p50_us),
            ms(r.p99_us),
            r.per_s
        );
    }
    // The mean follows every outlier of a wall-clock run; the median shows the usual request.
    for (what, pick) in [
        (
            "mean",
            (|r: &RttSummary| r.mean_us) as fn(&RttSummary) -> u64,
        ),
        ("p50", |r: &RttSummary| r.p50_us),
    ] {
        let added = |r: &RttSummary| pick(r).saturating_sub(pick(&single));
        println!(
            "bench guest net: added round trip ({what}): (b) {:.2} ms, (c) {:.2} ms; (c)/(b) \
             {:.3} (target <= 0.25)",
            ms(added(&fixed)),
            ms(added(&adaptive)),
            added(&adaptive) as f64 / added(&fixed).max(1) as f64
        );
    }
}
