//! A private network for guests that serve TCP: a [`NetNamespace`] with a Linux bridge
//! ([`BRIDGE`]), tap devices on it for the emulators' NICs ([`GuestNet::add_tap`]), the
//! bridge's own address for the client ([`GuestNet::set_address`], [`CLIENT_IP`] by
//! convention), random packet loss on a tap ([`GuestNet::set_loss`]), and the record client
//! run inside it ([`NetClient`], the `castor-netclient` binary; [`crate::netclient`]).
//!
//! Everything lives in the namespace, so names are fixed (`br0`, `tap0`, `tap1`, ...) and
//! never meet another test's; dropping the [`GuestNet`] kills the namespace's holder process by
//! its PID, and the namespace, bridge and taps go when the last process in it (an emulator run
//! with [`Run::netns`](crate::Run::netns), which keeps its own reference) has ended.
//!
//! # Packet loss without netem
//!
//! `sch_netem` is not available on every test machine (this harness's own VM kernel has no
//! `CONFIG_NET_SCH_NETEM` and no modules), so [`GuestNet::set_loss`] builds the same effect from
//! parts that are: a `clsact` qdisc on the tap whose ingress and egress filters are a classic
//! BPF program (`cls_bpf`) matching a packet when the kernel's random number (`ld rand`, the
//! `SKF_AD_RANDOM` extension) is below P% of 2³², with a `mirred` action redirecting the
//! matches to an `ifb` device whose root qdisc is `blackhole`, which drops them. Unlike netem on
//! the tap (which drops only what goes to the guest), this drops P% in each direction. It
//! needs only `iproute2`'s `tc` and `ip` and works in a user namespace too.
//!
//! # Two Castor hosts on one network
//!
//! A fault-tolerant pair's guest is reached the same way as a native one: each Castor host is a
//! QEMU with a second NIC, on a tap of its own in this namespace, which Castor's kernel drives
//! itself (`virtio-net-pci` or `e1000`) to carry the guest's frames. A later test would do
//!
//! ```no_run
//! # use castor_tests::{Emulator, Run, guestnet::{GuestNet, CLIENT_IP}, qemu::Qemu};
//! # fn main() -> castor_tests::Result<()> {
//! let net = GuestNet::new()?;
//! net.set_address(CLIENT_IP)?;
//! let (primary_tap, backup_tap) = (net.add_tap()?, net.add_tap()?);
//! // Each host's QEMU, inside the namespace, with its guest NIC on its own tap (the MACs are
//! // the hosts' NICs', not the guest's: Castor forwards the guest's frames with the guest's
//! // own MAC).
//! let primary = Qemu::kernel().args(primary_tap.qemu_args("guestnet", "virtio-net-pci", "52:54:00:00:01:01"));
//! let backup = Qemu::kernel().args(backup_tap.qemu_args("guestnet", "virtio-net-pci", "52:54:00:00:01:02"));
//! let primary = Run::new(Emulator::Qemu(primary)).netns(net.netns()); // ... then start both
//! # Ok(()) }
//! ```
//!
//! and run [`NetClient::start`] against the guest's address. Both taps are bridge ports, so
//! the backup host sees the guest's traffic too and must not transmit for the guest until it
//! takes over. The bridge learns the guest's MAC on the primary's tap; after a failover it moves
//! to the backup's tap when the backup first sends a frame with that source (a gratuitous ARP
//! at takeover makes that immediate, as QEMU's `announce-self` does after a migration; the
//! guest's TCP retransmissions also do it, later). When the primary's QEMU dies its tap loses
//! carrier and the bridge forgets what it learned there; a primary that is only stopped keeps
//! its tap up, and frames for the guest go there until the bridge relearns. To take learning
//! out of the picture, `net.run("ip", &["link", "set", "br0", "type", "bridge",
//! "ageing_time", "0"])` makes the bridge flood every frame to all ports.

use crate::error::{Context, Error, Result};
use crate::netclient::ClientReport;
use crate::netns::NetNamespace;
use crate::process::Process;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The bridge every tap joins.
pub const BRIDGE: &str = "br0";
/// The client's (the bridge's) address by convention, on the guest's default network
/// ([`crate::linux::net::DEFAULT_IP`]).
pub const CLIENT_IP: &str = "10.0.2.1/24";
/// The `ifb` device that swallows the packets [`GuestNet::set_loss`] drops.
const LOSS_SINK: &str = "lossdrop";

/// A tap device on the bridge, for one emulator NIC (`-netdev tap,ifname=NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tap {
    name: String,
}

impl Tap {
    /// The interface's name in the namespace (`tap0`, `tap1`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// QEMU's arguments for a NIC of `model` (`virtio-net-pci`, `e1000`, ...) with address
    /// `mac` on this tap, its netdev called `id`: `-netdev tap,id=ID,ifname=NAME,script=no,
    /// downscript=no -device MODEL,netdev=ID,mac=MAC`. QEMU must run in the namespace.
    pub fn qemu_args(&self, id: &str, model: &str, mac: &str) -> Vec<String> {
        vec![
            "-netdev".into(),
            format!("tap,id={id},ifname={},script=no,downscript=no", self.name),
            "-device".into(),
            format!("{model},netdev={id},mac={mac}"),
        ]
    }
}

/// A private network namespace with a bridge (see the module's documentation).
pub struct GuestNet {
    netns: Arc<NetNamespace>,
    taps: AtomicU32,
    sink: Mutex<bool>,
}

impl GuestNet {
    /// Creates the namespace (loopback up) and the bridge, up, without an address.
    pub fn new() -> Result<GuestNet> {
        let net = GuestNet {
            netns: Arc::new(NetNamespace::new()?),
            taps: AtomicU32::new(0),
            sink: Mutex::new(false),
        };
        net.ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        net.ip(&["link", "set", BRIDGE, "up"])?;
        Ok(net)
    }

    /// The namespace, for [`Run::netns`](crate::Run::netns).
    pub fn netns(&self) -> &Arc<NetNamespace> {
        &self.netns
    }

    /// A command running `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        self.netns.command(program)
    }

    /// Runs `program args` inside the namespace to its end; its stdout, or an error with its
    /// stderr if it failed.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        crate::linux::output(self.command(program).args(args).stdin(Stdio::null()))
    }

    fn ip(&self, args: &[&str]) -> Result<String> {
        self.run("ip", args)
    }

    fn tc(&self, args: &[&str]) -> Result<String> {
        self.run("tc", args)
    }

    /// Gives the bridge the address `cidr` (`10.0.2.1/24`): programs in the namespace (the
    /// client) then reach the guests on that network.
    pub fn set_address(&self, cidr: &str) -> Result<()> {
        self.ip(&["addr", "add", cidr, "dev", BRIDGE]).map(drop)
    }

    /// A new tap on the bridge, up (its carrier comes when an emulator opens it).
    pub fn add_tap(&self) -> Result<Tap> {
        let name = format!("tap{}", self.taps.fetch_add(1, Ordering::Relaxed));
        self.ip(&["tuntap", "add", "dev", &name, "mode", "tap"])?;
        self.ip(&["link", "set", &name, "master", BRIDGE])?;
        self.ip(&["link", "set", &name, "up"])?;
        Ok(Tap { name })
    }

    /// Takes `tap` up or down (down: the bridge neither sends to nor receives from it).
    pub fn set_up(&self, tap: &Tap, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        self.ip(&["link", "set", &tap.name, state]).map(drop)
    }

    /// Drops `percent` % of the packets through `tap`, chosen at random, in each direction
    /// (see the module's documentation); 0 ends the loss. Replaces any loss set before.
    pub fn set_loss(&self, tap: &Tap, percent: f64) -> Result<()> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(Error::new(format!("a loss of {percent} %")));
        }
        let _ = self.tc(&["qdisc", "del", "dev", &tap.name, "clsact"]);
        if percent == 0.0 {
            return Ok(());
        }
        self.loss_sink()?;
        self.tc(&["qdisc", "add", "dev", &tap.name, "clsact"])?;
        let program = loss_program(percent);
        for direction in ["ingress", "egress"] {
            self.tc(&[
                "filter", "add", "dev", &tap.name, direction, "bpf", "bytecode", &program,
                "action", "mirred", "egress", "redirect", "dev", LOSS_SINK,
            ])?;
        }
        Ok(())
    }

    /// Packets [`GuestNet::set_loss`] has dropped so far, on all taps.
    pub fn loss_dropped(&self) -> Result<u64> {
        if !*self.sink.lock().map_err(|_| Error::new("loss sink lock"))? {
            return Ok(0);
        }
        let stats = self.tc(&["-s", "qdisc", "show", "dev", LOSS_SINK])?;
        parse_dropped(&stats).ok_or_else(|| Error::new(format!("no drop count in {stats:?}")))
    }

    /// Makes the `ifb` device whose `blackhole` qdisc drops what is redirected to it (once).
    fn loss_sink(&self) -> Result<()> {
        let mut made = self.sink.lock().map_err(|_| Error::new("loss sink lock"))?;
        if !*made {
            self.ip(&["link", "add", LOSS_SINK, "type", "ifb"])?;
            self.ip(&["link", "set", LOSS_SINK, "up"])?;
            self.tc(&["qdisc", "add", "dev", LOSS_SINK, "root", "blackhole"])?;
            *made = true;
        }
        Ok(())
    }
}

/// The classic BPF program (`tc`'s `bytecode` syntax: the count, then `code jt jf k` each) that
/// matches `percent` % of packets: `ld rand; jge #T, pass; ret #-1 (match); pass: ret #0`.
fn loss_program(percent: f64) -> String {
    const LD_RAND: u32 = 0x20; // BPF_LD | BPF_W | BPF_ABS, at SKF_AD_OFF + SKF_AD_RANDOM
    const SKF_AD_RANDOM: u32 = 0xFFFF_F000 + 56;
    const JGE_K: u32 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u32 = 0x06; // BPF_RET | BPF_K
    let threshold = (percent / 100.0 * 4_294_967_296.0)
        .round()
        .min(u32::MAX as f64) as u32;
    format!(
        "4,{LD_RAND} 0 0 {SKF_AD_RANDOM},{JGE_K} 1 0 {threshold},{RET_K} 0 0 {},{RET_K} 0 0 0",
        u32::MAX
    )
}

/// The `dropped N` count of `tc -s qdisc show`'s output.
fn parse_dropped(stats: &str) -> Option<u64> {
    let at = stats.find("(dropped ")? + "(dropped ".len();
    let digits: String = stats[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A running `castor-netclient` inside a [`GuestNet`]: its stdout lines as they come, `stop`
/// on its stdin, its end. Killed (by its PID's process group) when dropped.
pub struct NetClient {
    process: Process,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl NetClient {
    /// Starts the client `program` (`env!("CARGO_BIN_EXE_castor-netclient")` in a test) with
    /// `args` ([`crate::netclient::ClientConfig::from_args`]) inside `net`; its stderr is the
    /// test's.
    pub fn start(net: &GuestNet, program: &Path, args: &[&str]) -> Result<NetClient> {
        let mut cmd = net.command(&program.display().to_string());
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut process = Process::spawn(cmd, false).context("starting castor-netclient")?;
        let stdout = process
            .take_stdout()
            .ok_or_else(|| Error::new("castor-netclient has no output pipe"))?;
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(NetClient {
            stdin: process.take_stdin(),
            process,
            lines,
            seen: Vec::new(),
        })
    }

    /// Waits until the client prints a line starting with `prefix` (returned) or `deadline`
    /// passes or its output ends (`None`). Lines before it are kept for [`NetClient::finish`].
    pub fn wait_for(&mut self, prefix: &str, deadline: Instant) -> Option<String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.starts_with(prefix);
                    self.seen.push(line.clone());
                    if found {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// The lines printed so far (reading what has arrived).
    pub fn lines(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// The last record acknowledged so far (`client: acked N`), reading what has arrived.
    pub fn last_acked(&mut self) -> Option<u64> {
        let lines = self.lines();
        lines
            .iter()
            .rev()
            .find_map(|l| crate::netclient::parse_acked(l))
    }

    /// Asks the client to stop storing and report (`stop` on its stdin).
    pub fn stop(&mut self) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Error::new("castor-netclient's stdin is closed"))?;
        stdin
            .write_all(b"stop\n")
            .and_then(|()| stdin.flush())
            .context("telling castor-netclient to stop")
    }

    /// Waits for the client to end (killing it at `deadline`); its exit status (`None` if
    /// killed), its lines and their report.
    pub fn finish(mut self, deadline: Instant) -> ClientEnd {
        let status = self.process.wait_until(Some(deadline)).ok().flatten();
        let _ = self.process.kill();
        // The pipe ends with the process: the reader thread has sent every line.
        let last = deadline.max(Instant::now() + Duration::from_secs(1));
        while let Ok(line) = self
            .lines
            .recv_timeout(last.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        ClientEnd {
            status,
            report: ClientReport::parse(self.seen.iter().map(String::as_str)),
            lines: self.seen,
        }
    }
}

/// How a [`NetClient`] ended.
#[derive(Debug)]
pub struct ClientEnd {
    /// Its exit status; `None` if it was still running at the deadline (then killed).
    pub status: Option<ExitStatus>,
    /// Every line it printed.
    pub lines: Vec<String>,
    /// Those lines read ([`ClientReport::parse`]).
    pub report: ClientReport,
}

impl ClientEnd {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Its lines without the `acked` ones, for messages.
    pub fn summary(&self) -> String {
        let kept: Vec<&str> = self
            .lines
            .iter()
            .map(String::as_str)
            .filter(|l| crate::netclient::parse_acked(l).is_none())
            .collect();
        format!(
            "status {:?}, last acked {:?}; {}",
            self.status,
            self.report.last_acked,
            kept.join(" | ")
        )
    }
}

/// Why this machine cannot give the tests tap devices, if it cannot: `/dev/net/tun` is missing
/// or does not open for this user (only root may open it on most machines). That is a
/// property of the machine, not of Castor: tests that need taps say `SKIPPED` then.
pub fn taps_unavailable() -> Option<String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .err()
        .map(|e| format!("/dev/net/tun: {e}"))
}

/// A private network with `CLIENT_IP` on its bridge and `taps` taps, each dropping `loss` % of
/// frames; `None` after saying `SKIPPED` and why if this machine has no taps to give
/// ([`taps_unavailable`]). Where it has, any failure to build the network panics.
pub fn network_or_skip(taps: usize, loss: f64) -> Option<(GuestNet, Vec<Tap>)> {
    if let Some(why) = taps_unavailable() {
        eprintln!("SKIPPED: this machine gives no tap devices ({why})");
        return None;
    }
    let net = GuestNet::new().expect("a private network namespace");
    net.set_address(CLIENT_IP).expect("the client's address");
    let taps: Vec<Tap> = (0..taps).map(|_| net.add_tap().expect("a tap")).collect();
    if loss > 0.0 {
        for tap in &taps {
            net.set_loss(tap, loss).expect("frame loss on the tap");
        }
    }
    Some((net, taps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_program_matches_the_share_asked() {
        assert_eq!(
            loss_program(5.0),
            "4,32 0 0 4294963256,53 1 0 214748365,6 0 0 4294967295,6 0 0 0"
        );
        assert!(loss_program(100.0).contains(",53 1 0 4294967295,"));
        assert!(loss_program(0.0).contains(",53 1 0 0,"));
    }

    #[test]
    fn drop_counts_parse() {
        let stats = "qdisc blackhole 8001: root refcnt 2 \n Sent 0 bytes 0 pkt (dropped 174, \
                     overlimits 0 requeues 0) \n backlog 0b 0p requeues 0";
        assert_eq!(parse_dropped(stats), Some(174));
        assert_eq!(parse_dropped("qdisc noqueue"), None);
    }

    #[test]
    fn tap_args_name_the_tap_and_the_model() {
        let tap = Tap {
            name: "tap3".into(),
        };
        assert_eq!(
            tap.qemu_args("n0", "virtio-net-pci", "52:54:00:12:34:56")
                .join(" "),
            "-netdev tap,id=n0,ifname=tap3,script=no,downscript=no \
             -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"
        );
    }

    /// A bridge with two taps and loss on one, torn down with the namespace (needs `unshare`
    /// and `ip`, like the Bochs pair's namespace; skipped where namespaces cannot be made).
    #[test]
    fn bridge_taps_and_loss_in_a_private_namespace() {
        let net = match GuestNet::new() {
            Ok(net) => net,
            Err(e) => {
                eprintln!("SKIPPED: no private network namespace here: {e}");
                return;
            }
        };
        net.set_address(CLIENT_IP).unwrap();
        let a = match net.add_tap() {
            Ok(tap) => tap,
            // SAFETY: geteuid has no preconditions and cannot fail.
            Err(e) if unsafe { libc::geteuid() } != 0 => {
                eprintln!("SKIPPED: no taps without root here (/dev/net/tun's mode?): {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let b = net.add_tap().unwrap();
        assert_eq!((a.name(), b.name()), ("tap0", "tap1"));
        let links = net.ip(&["-o", "link", "show", "master", BRIDGE]).unwrap();
        assert!(
            links.contains(": tap0:") && links.contains(": tap1:"),
            "{links}"
        );
        let addr = net.ip(&["-o", "addr", "show", "dev", BRIDGE]).unwrap();
        assert!(addr.contains("inet 10.0.2.1/24"), "{addr}");
        assert_eq!(net.loss_dropped().unwrap(), 0);
        net.set_loss(&a, 5.0).unwrap();
        net.set_loss(&a, 20.0).unwrap(); // replaces
        let filters = net
            .tc(&["filter", "show", "dev", "tap0", "egress"])
            .unwrap();
        assert!(filters.contains("858993459"), "{filters}");
        assert!(filters.contains("Redirect to device lossdrop"), "{filters}");
        net.set_loss(&a, 0.0).unwrap();
        let qdiscs = net.tc(&["qdisc", "show", "dev", "tap0"]).unwrap();
        assert!(!qdiscs.contains("clsact"), "{qdiscs}");
        assert!(net.set_loss(&a, 101.0).is_err());
        net.set_up(&b, false).unwrap();
        assert!(
            net.run("sh", &["-c", "exit 3"]).is_err(),
            "a failing command is an error"
        );
    }
}
