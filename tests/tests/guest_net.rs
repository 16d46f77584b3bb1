//! A Linux guest serves TCP over a virtio NIC, natively in plain QEMU: the baseline a guest
//! under Castor (and a failover) is measured against.
//!
//! Debian's cloud kernel boots with the network initramfs ([`castor_tests::linux::net`]) in
//! QEMU (TCG, emulated time on the host clock) inside a private network namespace
//! ([`GuestNet`]), its `virtio-net-pci` NIC on a tap on the namespace's bridge; the record
//! client (`castor-netclient`) runs in the namespace against the guest's record service for
//! [`CLIENT_SECONDS`], then reads every acknowledged record back. Offline (no Debian packages)
//! the tests say `SKIPPED` and pass, except under CI.

use castor_tests::guestnet::{GuestNet, NetClient, Tap, network_or_skip};
use castor_tests::linux::DebianGuest;
use castor_tests::linux::net::{self, CONNECTION_ENDED, NO_ETH0, NO_NIC_STATUS, SERVING};
use castor_tests::qemu::Qemu;
use castor_tests::{Emulator, Run, RunHandle, WaitError};
use std::path::Path;
use std::time::{Duration, Instant};

/// Guest RAM (MiB), as in `linux.rs`.
const GUEST_RAM_MIB: u32 = 128;
/// The guest NIC's MAC address.
const GUEST_MAC: &str = "52:54:00:12:34:56";
/// How long the client stores records.
const CLIENT_SECONDS: u64 = 10;
/// From QEMU's start to the service listening (about 13 s under TCG on two idle cores).
const BOOT_TIMEOUT: Duration = Duration::from_secs(45);
/// The whole run's limit.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The Debian kernel, its modules and busybox, fetched once into the target directory.
fn debian() -> Option<&'static DebianGuest> {
    DebianGuest::for_tests(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("linux-guest"))
}

/// Plain QEMU booting the kernel with `initrd`, its NIC options `nic` (inside `net`'s
/// namespace when given).
fn start_native(
    debian: &DebianGuest,
    initrd: &Path,
    nic: Vec<String>,
    net: Option<&GuestNet>,
) -> RunHandle {
    let qemu = Qemu::kernel().host_clock().args(nic);
    let mut run = Run::new(Emulator::Qemu(qemu))
        .linux(&debian.kernel)
        .cmdline(&net::net_cmdline(net::DEFAULT_IP))
        .memory_mib(GUEST_RAM_MIB)
        .module("initramfs", initrd, "")
        .fail_markers(&[NO_ETH0, "Kernel panic"])
        .timeout(RUN_TIMEOUT);
    if let Some(net) = net {
        run = run.netns(net.netns());
    }
    run.start().expect("starting QEMU")
}

/// A private network with the client's address on its bridge and a tap for the guest; `None`
/// (after `SKIPPED`) on a machine without taps ([`network_or_skip`]).
fn network() -> Option<(GuestNet, Tap)> {
    let (net, mut taps) = network_or_skip(1, 0.0)?;
    let tap = taps.pop()?;
    Some((net, tap))
}

/// Waits until `marker` has been on the console `count` times or `timeout` has passed; the
/// times it has.
fn wait_count(run: &mut RunHandle, marker: &str, count: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let serial = run.serial().expect("the serial log");
        let seen = serial.lines().filter(|l| l.contains(marker)).count();
        if seen >= count || Instant::now() >= deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Boots the guest on a tap with `loss` % of its packets dropped each way, runs the client
/// against it and checks that every acknowledged record reads back, and that there were at
/// least `min_records`; then that a second connection reads them all back too.
fn serve_records(loss: f64, min_records: u64) {
    let Some(debian) = debian() else { return };
    let initrd = debian.net_initramfs(&format!("net-{loss}.cpio"));
    let Some((net, tap)) = network() else { return };
    if loss > 0.0 {
        net.set_loss(&tap, loss).expect("packet loss on the tap");
    }
    let nic = tap.qemu_args("net0", "virtio-net-pci", GUEST_MAC);
    let mut run = start_native(debian, &initrd, nic, Some(&net));
    let started = Instant::now();
    let up = run
        .wait_for(net::ETH0_UP)
        .unwrap_or_else(|e| panic!("no eth0: {e}"));
    assert_eq!(
        net::parse_eth0_up(&up),
        Some((GUEST_MAC.to_string(), net::DEFAULT_IP.to_string())),
        "{up}"
    );
    run.wait_for(SERVING)
        .unwrap_or_else(|e| panic!("the service did not start: {e}"));
    let boot = started.elapsed();
    assert!(boot < BOOT_TIMEOUT, "serving after {boot:?}");
    let duration = CLIENT_SECONDS.to_string();
    let program = Path::new(env!("CARGO_BIN_EXE_castor-netclient"));
    let args = ["--duration", &duration, "--connect-timeout", "20"];
    let client = NetClient::start(&net, program, &args).expect("starting the client");
    // Loop, read-back (at most a few seconds) and slack.
    let end = client.finish(Instant::now() + Duration::from_secs(CLIENT_SECONDS + 40));
    let client_s = started.elapsed().as_secs_f64() - boot.as_secs_f64();
    let why = end.summary();
    assert!(end.report.connected, "the client never connected: {why}");
    assert_eq!(end.report.lost, None, "{why}");
    let verified = end
        .report
        .verified
        .unwrap_or_else(|| panic!("no verified line: {why}"));
    let acked = end.report.last_acked.unwrap_or(0);
    assert!(
        acked >= min_records,
        "only {acked} records in {CLIENT_SECONDS} s: {why}"
    );
    assert_eq!(
        (verified.records, verified.missing, verified.bad),
        (acked, 0, 0),
        "{why}"
    );
    assert!(end.report.bad_gets.is_empty(), "{why}");
    assert!(end.success(), "the client failed: {why}");
    // The records outlive the connection: a second one reads them all back.
    let acked_arg = acked.to_string();
    let args = ["--verify-only", &acked_arg, "--connect-timeout", "20"];
    let second_start = Instant::now();
    let again = NetClient::start(&net, program, &args).expect("starting the second client");
    let again = again.finish(Instant::now() + Duration::from_secs(40));
    let second_s = second_start.elapsed().as_secs_f64();
    let dropped = net.loss_dropped().expect("the loss count");
    // The guest saw both connections end (each client closes its own).
    let ended = wait_count(&mut run, CONNECTION_ENDED, 2, Duration::from_secs(10));
    let outcome = run.stop();
    assert_eq!(ended, 2, "connection ends seen: {}", outcome.summary());
    assert_eq!(
        again.report.verified.map(|v| (v.records, v.missing, v.bad)),
        Some((acked, 0, 0)),
        "second connection: {}",
        again.summary()
    );
    assert!(again.success(), "second connection: {}", again.summary());
    if loss > 0.0 {
        assert!(dropped > 0, "a {loss} % loss dropped nothing");
    }
    let rtt = end.report.rtt.expect("an rtt line");
    println!(
        "guest net native QEMU, {loss} % loss: serving after {:.1} s; {}; client \
         ({CLIENT_SECONDS} s of records, then the read-back) {client_s:.1} s, read-back on a \
         second connection {second_s:.1} s; packets dropped: {dropped}",
        boot.as_secs_f64(),
        rtt.line()
    );
    println!("{}", verified.line());
}

#[test]
fn native_qemu_linux_guest_serves_tcp_records() {
    serve_records(0.0, 500);
}

#[test]
fn native_qemu_linux_guest_serves_tcp_records_through_5_percent_loss() {
    serve_records(5.0, 50);
}

/// Without a NIC the guest says so and ends with [`NO_NIC_STATUS`] (QEMU: `(2 << 1) | 1`).
#[test]
fn native_qemu_linux_guest_without_a_nic_says_so_and_fails() {
    let Some(debian) = debian() else { return };
    let initrd = debian.net_initramfs("net-none.cpio");
    let nic = ["-nic", "none"].map(String::from).to_vec();
    let mut run = start_native(debian, &initrd, nic, None);
    match run.wait_for(SERVING) {
        Err(WaitError::Failure { line, .. }) => assert!(line.contains(NO_ETH0), "{line}"),
        other => panic!("expected {NO_ETH0:?}: {other:?}"),
    }
    let outcome = run.wait_exit();
    outcome.expect_exit_code((NO_NIC_STATUS << 1 | 1) as i32);
}
