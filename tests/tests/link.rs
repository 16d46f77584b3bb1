//! Two Castor hosts pair over the peer link (QEMU instances joined by a TCP `-netdev stream`
//! on 127.0.0.1; Bochs and QEMU, or two Bochs through `bxhub`, in a private network namespace)
//! and move a bulk stream whose BLAKE3 digest is checked end to end, over
//! virtio-net and over e1000; the same with frames dropped on purpose; a wrong key is refused
//! with a clear message on both consoles; a killed peer is detected within the configured
//! timeout (kernel side: `kernel/src/net/linktest.rs`).

use castor_tests::bochs::Bochs;
use castor_tests::process::Process;
use castor_tests::qemu::Qemu;
use castor_tests::router::{Router, RouterPort};
use castor_tests::{Emulator, NetNamespace, Run, RunHandle};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe";
const OTHER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// Each QEMU's clock follows its own instruction count (`-icount`), so a host starved of CPU
/// by the other emulators of a parallel test run falls silent on its peer's clock: the timeout
/// leaves room for that.
const PEER_TIMEOUT_MS: u64 = 3000;
const PEER_TIMEOUT: &str = "peer_timeout=3000";
/// Bochs' emulated clock runs several times faster than its CPU (`ips`) and its e1000 takes
/// one frame per emulated millisecond, so a busy Bochs peer is quiet for seconds of its clock.
const BOCHS_PEER_TIMEOUT: &str = "peer_timeout=10000";

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("its address").port()
}

/// One host: QEMU with `nic` on a stream netdev (`server` listens, the other connects).
fn host(name: &str, nic: &str, mac: &str, port: u16, server: bool, cmdline: &str) -> Run {
    let netdev = format!(
        "stream,id=n0,server={},addr.type=inet,addr.host=127.0.0.1,addr.port={port}",
        if server { "on" } else { "off" }
    );
    host_on(&netdev, nic, mac, name, cmdline)
}

/// A `dgram` netdev: one raw frame per UDP datagram between 127.0.0.1 ports `local` (QEMU's)
/// and `remote`.
fn dgram(local: u16, remote: u16) -> String {
    format!(
        "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port={local},\
         remote.type=inet,remote.host=127.0.0.1,remote.port={remote}"
    )
}

/// One host: QEMU with a `nic` of MAC `mac` on `netdev` (id `n0`), running Castor with
/// `cmdline`.
fn host_on(netdev: &str, nic: &str, mac: &str, name: &str, cmdline: &str) -> Run {
    let device = format!("{nic},netdev=n0,mac={mac}");
    let qemu = Qemu::kernel().args(["-netdev", netdev, "-device", device.as_str()]);
    Run::new(Emulator::Qemu(qemu))
        .name(name)
        .cpus(1)
        .cmdline(cmdline)
        .timeout(Duration::from_secs(300))
        // Pairing failures and lost peers are what some tests expect, not failures.
        .fail_markers(&["PANIC", "EXCEPTION"])
}

/// Starts the primary (listening) and then the backup.
fn pair(nic: &str, primary_args: &str, backup_args: &str) -> (RunHandle, RunHandle) {
    let port = free_port();
    let mut primary = host(
        "link-primary",
        nic,
        "52:54:00:00:00:01",
        port,
        true,
        primary_args,
    )
    .start()
    .expect("starting the primary");
    primary.wait_for("booting").expect("the primary boots");
    let backup = host(
        "link-backup",
        nic,
        "52:54:00:00:00:02",
        port,
        false,
        backup_args,
    )
    .start()
    .expect("starting the backup");
    (primary, backup)
}

fn args(role: &str, key: &str, mib: u32, extra: &str) -> String {
    format!("role={role} key={key} linktest={mib} peer_timeout={PEER_TIMEOUT_MS} {extra}")
}

/// The number after `key` in `line`.
fn number_after(line: &str, key: &str) -> u64 {
    let (_, rest) = line
        .split_once(key)
        .unwrap_or_else(|| panic!("no '{key}' in '{line}'"));
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after '{key}' in '{line}'"))
}

/// Waits for the primary to send and the backup to receive `mib` MiB intact, and prints both
/// reports.
fn expect_stream(primary: &mut RunHandle, backup: &mut RunHandle, what: &str, mib: u32) {
    let received = backup
        .wait_for("link: received")
        .expect("the backup receives the stream");
    assert!(received.contains("matches the sender's"), "{received}");
    assert!(
        received.contains(&format!("received {mib} MiB")),
        "{received}"
    );
    let sent = primary
        .wait_for("link: sent")
        .expect("the primary finishes sending");
    assert!(sent.contains(&format!("sent {mib} MiB")), "{sent}");
    println!("{what}: {sent}\n{what}: {received}");
}

/// Moves `mib` MiB primary → backup, checks the digest, then kills the primary and checks
/// the backup notices within the timeout.
fn bulk_and_peer_loss(nic: &str, mib: u32, extra: &str) {
    let (mut primary, mut backup) = pair(
        nic,
        &args("primary", KEY, mib, extra),
        &args("backup", KEY, mib, extra),
    );
    expect_stream(&mut primary, &mut backup, nic, mib);
    // Both hold the link on heartbeats; nobody is lost while both run.
    std::thread::sleep(Duration::from_millis(2 * PEER_TIMEOUT_MS));
    assert!(
        !backup
            .serial()
            .expect("backup console")
            .contains("peer lost")
    );
    let _ = primary.stop();
    let lost = backup
        .wait_for("link: peer lost after")
        .expect("the backup notices");
    let silent = number_after(&lost, "lost after");
    assert!(
        (PEER_TIMEOUT_MS..PEER_TIMEOUT_MS + 300).contains(&silent),
        "detected after {silent} ms of silence with a {PEER_TIMEOUT_MS} ms timeout: {lost}"
    );
    let outcome = backup.wait_exit();
    outcome.expect_exit_code(castor_tests::contract::QEMU_EXIT_PASS);
}

#[test]
fn virtio_net_pair_moves_64_mib_and_detects_a_lost_peer() {
    bulk_and_peer_loss("virtio-net-pci", 64, "");
}

#[test]
fn e1000_pair_moves_16_mib_and_detects_a_lost_peer() {
    bulk_and_peer_loss("e1000", 16, "");
}

#[test]
fn a_lossy_wire_still_delivers_every_byte() {
    // 10% of received frames dropped on purpose on both sides (data and acknowledgements).
    bulk_and_peer_loss("virtio-net-pci", 2, "link_loss=10");
}

#[test]
fn a_wrong_key_is_refused_on_both_sides() {
    let (primary, backup) = pair(
        "virtio-net-pci",
        &args("primary", KEY, 1, ""),
        &args("backup", OTHER_KEY, 1, ""),
    );
    for (who, run) in [("primary", primary), ("backup", backup)] {
        let outcome = run.wait_exit();
        let line = outcome.expect_line("link: pairing failed:").to_string();
        assert!(line.contains("key"), "{who} says why: {line}");
        assert!(
            outcome.line_with("link: received").is_none(),
            "{who} moved data"
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
    let (mut primary, mut backup) = pair(
        "virtio-net-pci",
        &args("primary", KEY, mib, &udp("1", "2")),
        &args("backup", KEY, mib, &udp("2", "1")),
    );
    for (run, peer_mac) in [
        (&mut primary, "52:54:00:00:00:02"),
        (&mut backup, "52:54:00:00:00:01"),
    ] {
        let line = run
            .wait_for("link: next hop 10.9.0.")
            .expect("ARP resolves the peer");
        assert!(line.contains(peer_mac), "{line}");
    }
    let banner = primary.serial().expect("console");
    assert!(
        banner.contains("over UDP 10.9.0.1/24:34997 -> 10.9.0.2 (next hop 10.9.0.2)"),
        "{banner}"
    );
    expect_stream(&mut primary, &mut backup, "UDP/IPv4 virtio-net", mib);
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
    let start = |i: usize, role: &str, peer: u8| {
        let me = i + 1;
        let udp = format!("ip=10.{me}.0.2/24 gateway=10.{me}.0.1 peer_ip=10.{peer}.0.2");
        host_on(
            &dgram(qemu_ports[i], router.ports[i]),
            "virtio-net-pci",
            &format!("52:54:00:00:04:0{me}"),
            &format!("link-routed-{role}"),
            &args(role, KEY, mib, &udp),
        )
        .start()
        .expect("starting QEMU")
    };
    let mut primary = start(0, "primary", 2);
    let mut backup = start(1, "backup", 1);
    for (run, gateway) in [
        (&mut primary, "10.1.0.1 is at 02:00:00:00:ee:01"),
        (&mut backup, "10.2.0.1 is at 02:00:00:00:ee:02"),
    ] {
        run.wait_for(&format!("link: next hop {gateway}"))
            .expect("ARP resolves the gateway");
    }
    expect_stream(&mut primary, &mut backup, "UDP/IPv4 routed", mib);
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
    let cmdline = args("primary", KEY, 1, "ip=10.9.0.1/24 peer_ip=10.9.1.2");
    let outcome = host(
        "link-noroute",
        "e1000",
        "52:54:00:00:00:01",
        free_port(),
        true,
        &cmdline,
    )
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
fn peer_link_vs_raw_frames(nic: &str) {
    let extra = "peer_timeout=5000 linkbench=1";
    let (primary, mut backup) = pair(
        nic,
        &args("primary", KEY, 8, extra).replace(PEER_TIMEOUT, ""),
        &args("backup", KEY, 8, extra).replace(PEER_TIMEOUT, ""),
    );
    let line = backup
        .wait_for("link bench:")
        .expect("the backup reports the benchmark");
    println!("{line}");
    let raw = number_after(&line, "raw");
    let link = number_after(&line, "peer link");
    assert!(raw > 0 && link > 0, "{line}");
    let _ = primary.stop();
    let _ = backup.stop();
}

#[test]
fn bench_peer_link_vs_raw_frames_virtio_net() {
    peer_link_vs_raw_frames("virtio-net-pci");
}

#[test]
fn bench_peer_link_vs_raw_frames_e1000() {
    peer_link_vs_raw_frames("e1000");
}

/// Starts a Bochs host with an e1000 on its `socket` back end, moving `mib` MiB as `role`.
/// Bochs exchanges raw frames as UDP datagrams with localhost (it listens on `port`, sends to
/// `port + 1`), on every interface, so every Bochs host runs in a private network namespace.
/// The port is given as a bare number: Bochs 2.7 reads the port of a `host:port` form from
/// freed memory.
fn start_bochs(role: &str, mib: u32, mac: &str, port: u16, netns: &Arc<NetNamespace>) -> RunHandle {
    let nic = format!("e1000: enabled=1, mac={mac}, ethmod=socket, ethdev={port}");
    let bochs = Bochs::default().config([
        "pci: enabled=1, chipset=i440fx, slot1=e1000".to_string(),
        nic,
    ]);
    let cmdline = args(role, KEY, mib, "").replace(PEER_TIMEOUT, BOCHS_PEER_TIMEOUT);
    Run::new(Emulator::Bochs(bochs))
        .name(&format!("link-bochs-{role}"))
        .cpus(1)
        .cmdline(&cmdline)
        .netns(netns)
        .timeout(Duration::from_secs(600))
        .fail_markers(&["PANIC", "EXCEPTION"])
        .start()
        .expect("starting Bochs")
}

/// Bochs (e1000) primary → QEMU (e1000) backup: Bochs' socket back end and QEMU's `dgram`
/// netdev exchange one raw frame per UDP datagram on the namespace's loopback.
#[test]
fn bochs_e1000_pairs_with_qemu_e1000() {
    let netns = Arc::new(NetNamespace::new().expect("a private network namespace"));
    let mib = 4;
    let mut primary = start_bochs("primary", mib, "52:54:00:00:02:01", 40000, &netns);
    let mut backup = host_on(
        &dgram(40001, 40000),
        "e1000",
        "52:54:00:00:02:02",
        "link-qemu",
        &args("backup", KEY, mib, "").replace(PEER_TIMEOUT, BOCHS_PEER_TIMEOUT),
    )
    .netns(&netns)
    .start()
    .expect("starting the QEMU backup");
    expect_stream(&mut primary, &mut backup, "Bochs→QEMU e1000", mib);
}

/// Two Bochs hosts (e1000) joined by `bxhub`, Bochs' Ethernet hub.
#[test]
fn bochs_e1000_pair_moves_a_stream_through_bxhub() {
    let netns = Arc::new(NetNamespace::new().expect("a private network namespace"));
    let mut hub = netns.command("bxhub");
    hub.args(["-ports=2", "-base=40000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _hub = Process::spawn(hub, false).expect("starting bxhub");
    let mib = 2;
    let mut primary = start_bochs("primary", mib, "52:54:00:00:03:01", 40000, &netns);
    let mut backup = start_bochs("backup", mib, "52:54:00:00:03:02", 40002, &netns);
    expect_stream(&mut primary, &mut backup, "Bochs↔Bochs e1000", mib);
}
