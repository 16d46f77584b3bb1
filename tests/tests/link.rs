//! Two Castor hosts pair over the peer link (QEMU instances joined by a TCP `-netdev stream`
//! on 127.0.0.1; Bochs and QEMU, or two Bochs through `bxhub`, in a private network namespace)
//! and move a bulk stream checked byte for byte end to end, over
//! virtio-net and over e1000; the same with frames dropped on purpose; a wrong key is refused
//! with a clear message on both consoles; a killed peer is detected within the configured
//! timeout (kernel side: `kernel/src/link/linktest.rs`).

use castor_tests::contract::PEER_LOST_MARKER;
use castor_tests::pair::{self, HostEmulator, Nic, Pair, PairHandle, Role};
use castor_tests::qemu::Qemu;
use castor_tests::router::{Router, RouterPort};
use castor_tests::scrape::number_after;
use castor_tests::{Emulator, Run};
use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe";
const OTHER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// The QEMU pairs' peer timeout (the pair's default; see [`pair::QEMU_PEER_TIMEOUT_MS`]).
const PEER_TIMEOUT_MS: u64 = pair::QEMU_PEER_TIMEOUT_MS as u64;

/// A pair (two QEMU hosts on a stream unless changed) moving `mib` MiB primary → backup.
fn link_pair(nic: Nic, mib: u32, extra: &str) -> Pair {
    Pair::qemu()
        .nic(nic)
        .key(KEY)
        .args(&format!("linktest={mib} {extra}"))
}

/// Waits for the primary to send and the backup to receive `mib` MiB intact, and prints both
/// reports.
fn expect_stream(pair: &mut PairHandle, what: &str, mib: u32) {
    let received = pair
        .wait_for(Role::Backup, "link: received")
        .expect("the backup receives the stream");
    assert!(
        received.contains("identical to the sender's stream"),
        "{received}"
    );
    assert!(
        received.contains(&format!("received {mib} MiB")),
        "{received}"
    );
    let sent = pair
        .wait_for(Role::Primary, "link: sent")
        .expect("the primary finishes sending");
    assert!(sent.contains(&format!("sent {mib} MiB")), "{sent}");
    println!("{what}: {sent}\n{what}: {received}");
}

/// Moves `mib` MiB primary → backup, checks the digest, then kills the primary and checks
/// the backup notices within the timeout.
fn bulk_and_peer_loss(nic: Nic, mib: u32, extra: &str) {
    let mut pair = link_pair(nic, mib, extra)
        .start()
        .expect("starting the pair");
    expect_stream(&mut pair, nic.qemu_device(), mib);
    // Both hold the link on heartbeats; nobody is lost while both run.
    std::thread::sleep(Duration::from_millis(2 * PEER_TIMEOUT_MS));
    let console = pair.console(Role::Backup).expect("backup console");
    assert!(!console.contains("peer lost"), "{console}");
    pair.kill_primary().expect("killing the primary");
    let lost = pair
        .wait_for(Role::Backup, PEER_LOST_MARKER)
        .expect("the backup notices");
    let silent = number_after(&lost, "lost after");
    assert!(
        (PEER_TIMEOUT_MS..PEER_TIMEOUT_MS + 300).contains(&silent),
        "detected after {silent} ms of silence with a {PEER_TIMEOUT_MS} ms timeout: {lost}"
    );
    let outcome = pair.wait_exit();
    outcome
        .backup
        .expect_exit_code(castor_tests::contract::QEMU_EXIT_PASS);
}

#[test]
fn virtio_net_pair_moves_64_mib_and_detects_a_lost_peer() {
    bulk_and_peer_loss(Nic::VirtioNet, 64, "");
}

#[test]
fn e1000_pair_moves_16_mib_and_detects_a_lost_peer() {
    bulk_and_peer_loss(Nic::E1000, 16, "");
}

#[test]
fn a_lossy_wire_still_delivers_every_byte() {
    // 10% of received frames dropped on purpose on both sides (data and acknowledgements).
    bulk_and_peer_loss(Nic::VirtioNet, 2, "link_loss=10");
}

#[test]
fn a_wrong_key_is_refused_on_both_sides() {
    let outcome = link_pair(Nic::VirtioNet, 1, "")
        .key_for(Role::Backup, OTHER_KEY)
        .start()
        .expect("starting the pair")
        .wait_exit();
    for role in Role::BOTH {
        let outcome = outcome.host(role);
        let line = outcome.expect_line("link: pairing failed:").to_string();
        assert!(line.contains("key"), "{role} says why: {line}");
        assert!(
            outcome.line_with("link: received").is_none(),
            "{role} moved data"
        );
        outcome.expect_exit_code(castor_tests::contract::QEMU_EXIT_FAIL);
    }
}

/// The peer link in UDP/IPv4 datagrams: each host resolves the other by ARP, then the stream
/// moves and the digest matches; the hosts' addresses are on one /24.
#[test]
fn udp_ipv4_pair_resolves_the_peer_by_arp_and_moves_a_stream() {
    let mib = 4;
    let udp = |me: &str, peer: &str| format!("ip=10.9.0.{me}/24 peer_ip=10.9.0.{peer}");
    let mut pair = link_pair(Nic::VirtioNet, mib, "")
        .args_for(Role::Primary, &udp("1", "2"))
        .args_for(Role::Backup, &udp("2", "1"))
        .start()
        .expect("starting the pair");
    for (role, peer) in [(Role::Primary, Role::Backup), (Role::Backup, Role::Primary)] {
        let line = pair
            .wait_for(role, "link: next hop 10.9.0.")
            .expect("ARP resolves the peer");
        assert!(line.contains(peer.mac()), "{line}");
    }
    let banner = pair.console(Role::Primary).expect("console");
    assert!(
        banner.contains("over UDP 10.9.0.1/24:34997 -> 10.9.0.2 (next hop 10.9.0.2)"),
        "{banner}"
    );
    expect_stream(&mut pair, "UDP/IPv4 virtio-net", mib);
}

/// A free UDP port on 127.0.0.1 (for a QEMU `dgram` netdev's local end).
fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a free loopback UDP port");
    socket.local_addr().expect("its address").port()
}

/// The peer link across a router: the hosts sit on 10.1.0.0/24 and 10.2.0.0/24, each reaches
/// the other through its gateway (resolved by ARP), and the router forwards the datagrams.
#[test]
fn udp_ipv4_pair_talks_across_a_router() {
    let mib = 2;
    let router_port = |i: u8| RouterPort {
        mac: [0x02, 0, 0, 0, 0xee, i],
        ip: Ipv4Addr::new(10, i, 0, 1),
        prefix: 24,
    };
    let qemu_ports = [free_udp_port(), free_udp_port()];
    let router = Router::start([router_port(1), router_port(2)], qemu_ports).expect("the router");
    let udp =
        |me: u8, peer: u8| format!("ip=10.{me}.0.2/24 gateway=10.{me}.0.1 peer_ip=10.{peer}.0.2");
    let mut pair = link_pair(Nic::VirtioNet, mib, "")
        .dgram(
            (qemu_ports[0], router.ports[0]),
            (qemu_ports[1], router.ports[1]),
        )
        .args_for(Role::Primary, &udp(1, 2))
        .args_for(Role::Backup, &udp(2, 1))
        .start()
        .expect("starting the pair");
    for (role, gateway) in [
        (Role::Primary, "10.1.0.1 is at 02:00:00:00:ee:01"),
        (Role::Backup, "10.2.0.1 is at 02:00:00:00:ee:02"),
    ] {
        pair.wait_for(role, &format!("link: next hop {gateway}"))
            .expect("ARP resolves the gateway");
    }
    expect_stream(&mut pair, "UDP/IPv4 routed", mib);
    let forwarded = router.forwarded();
    println!("router: {forwarded} datagrams forwarded");
    assert!(
        forwarded > (mib as u64) << 20 >> 11,
        "only {forwarded} datagrams went through the router"
    );
}

/// A peer outside the subnet without a router is refused with the reason, before any traffic.
#[test]
fn udp_peer_off_the_subnet_without_a_gateway_is_refused() {
    let port = pair::free_tcp_port().expect("a free port");
    let netdev = pair::stream_netdev(port, true);
    let qemu = Qemu::kernel().args(Nic::E1000.qemu_args(&netdev, Role::Primary.mac()));
    let outcome = Run::new(Emulator::Qemu(qemu))
        .cmdline(&format!(
            "role=primary key={KEY} linktest=1 ip=10.9.0.1/24 peer_ip=10.9.1.2"
        ))
        .timeout(Duration::from_secs(300))
        .fail_markers(pair::PAIR_FAIL_MARKERS)
        .start()
        .expect("starting QEMU")
        .wait_exit();
    let line = outcome
        .expect_line("link: no route to peer_ip=10.9.1.2")
        .to_string();
    assert!(
        line.contains("outside this host's subnet and no gateway="),
        "{line}"
    );
    outcome.expect_exit_code(castor_tests::contract::QEMU_EXIT_FAIL);
}

/// The `net` self test: two NICs of the same kind on one QEMU hub exchange 2000 frames of
/// every size each way, intact and in order (the drivers, without the protocol), taking
/// interrupts for what they receive.
/// Each NIC must also report the interrupts it took (`mode`: MSI-X or INTx).
fn two_nics_on_a_hub(nic: &str, mode: &str) {
    let mut qemu = Qemu::kernel();
    for (i, mac) in ["52:54:00:00:01:01", "52:54:00:00:01:02"]
        .iter()
        .enumerate()
    {
        let netdev = format!("hubport,id=h{i},hubid=0");
        let device = format!("{nic},netdev=h{i},mac={mac}");
        qemu = qemu.args(["-netdev", netdev.as_str(), "-device", device.as_str()]);
    }
    let outcome = Run::new(Emulator::Qemu(qemu))
        .cpus(1)
        .cmdline("selftest=net")
        .start()
        .expect("starting QEMU")
        .wait_exit();
    let line = outcome.expect_line("selftest net: ok").to_string();
    assert!(
        line.contains("2000 frames of 60..1514 bytes each way"),
        "{line}"
    );
    assert_eq!(
        line.matches(&format!(" {mode} interrupts")).count(),
        2,
        "{line}"
    );
    println!("{nic}: {line}");
    outcome.expect_exit_code(castor_tests::contract::QEMU_EXIT_PASS);
}

#[test]
fn two_virtio_nets_exchange_frames_of_every_size() {
    two_nics_on_a_hub("virtio-net-pci", "MSI-X");
}

#[test]
fn two_e1000s_exchange_frames_of_every_size() {
    two_nics_on_a_hub("e1000", "INTx");
}

/// Benchmark (figures printed, not a timed test): the peer link's data frame rate at the
/// receiver divided by the raw frame rate of the same wire, measured in one run.
fn peer_link_vs_raw_frames(nic: Nic) {
    let mut pair = link_pair(nic, 8, "linkbench=1")
        .peer_timeout_ms(5000)
        .start()
        .expect("starting the pair");
    let line = pair
        .wait_for(Role::Backup, "link bench:")
        .expect("the backup reports the benchmark");
    println!("{line}");
    // What the link's ciphers cost, which one the session got, and where each side's time
    // went.
    for role in [Role::Primary, Role::Backup] {
        let console = pair.console(role).expect("the console");
        for l in console.lines().filter(|l| {
            ["TSC cycles/KiB", "frames under", "TSC cycles per frame"]
                .iter()
                .any(|m| l.contains(m))
        }) {
            println!("link bench: {role}: {l}");
        }
    }
    let raw = number_after(&line, "raw");
    let link = number_after(&line, "peer link");
    assert!(raw > 0 && link > 0, "{line}");
    pair.stop();
}

#[test]
fn bench_peer_link_vs_raw_frames_virtio_net() {
    peer_link_vs_raw_frames(Nic::VirtioNet);
}

#[test]
fn bench_peer_link_vs_raw_frames_e1000() {
    peer_link_vs_raw_frames(Nic::E1000);
}

/// Bochs (e1000) primary → QEMU (e1000) backup: Bochs' socket back end and QEMU's `dgram`
/// netdev exchange one raw frame per UDP datagram on a private namespace's loopback.
#[test]
fn bochs_e1000_pairs_with_qemu_e1000() {
    let mib = 4;
    let mut pair = link_pair(Nic::E1000, mib, "")
        .emulator_for(Role::Primary, HostEmulator::Bochs)
        .start()
        .expect("starting Bochs and QEMU");
    expect_stream(&mut pair, "Bochs→QEMU e1000", mib);
}

/// Two Bochs hosts (e1000) joined by `bxhub`, Bochs' Ethernet hub.
#[test]
fn bochs_e1000_pair_moves_a_stream_through_bxhub() {
    let mib = 2;
    let mut pair = Pair::bochs()
        .key(KEY)
        .args(&format!("linktest={mib}"))
        .start()
        .expect("starting two Bochs and bxhub");
    expect_stream(&mut pair, "Bochs↔Bochs e1000", mib);
}
