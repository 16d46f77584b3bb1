//! Hosts of one guest on one Ethernet segment (a [`Hub`]), started one by one, all with the
//! same key: chains of failovers, re-protection, and partitions (the hub cuts paths), with a
//! witness on the segment when asked (`castor-witness --dgram` on a hub port).

use super::{Pair, Role, random_key};
use crate::error::{Context, Result};
use crate::handle::RunHandle;
use crate::hub::{Hub, free_udp_port};
use crate::kernel;
use crate::process::Process;
use std::path::Path;
use std::process::{Command, Stdio};

/// What every host of a segment is, before its role, key, wire and MAC.
pub type HostTemplate = Box<dyn Fn() -> Result<Pair>>;

/// A segment of hosts (and maybe a witness).
pub struct Segment {
    /// The hub joining them; [`Hub::set_cut`] partitions it.
    pub hub: Hub,
    key: String,
    template: HostTemplate,
    host_clock: bool,
    cpus: Option<u32>,
    hosts: usize,
}

/// A host on a segment: its run and its hub port.
pub struct SegmentHost {
    /// The running host.
    pub run: RunHandle,
    /// Its port on the hub.
    pub port: usize,
}

impl Segment {
    /// A segment whose hosts run the demo guest with `guest_args` and Castor's `args` (after
    /// `digests=on`), with `peer_timeout_ms`.
    pub fn new(guest_args: &str, args: &str, peer_timeout_ms: u32) -> Result<Segment> {
        let (guest_args, args) = (guest_args.to_string(), format!("digests=on {args}"));
        Segment::with(Box::new(move || {
            Ok(Pair::qemu()
                .guest(kernel::demo()?, &guest_args)
                .guest_ram_mib(32)
                .peer_timeout_ms(peer_timeout_ms)
                .args(&args))
        }))
    }

    /// A segment whose hosts are made by `template` (QEMU hosts: a [`Pair`] with the guest and
    /// options every host gets).
    pub fn with(template: HostTemplate) -> Result<Segment> {
        Ok(Segment {
            hub: Hub::start().context("starting the hub")?,
            key: random_key()?,
            template,
            host_clock: false,
            cpus: None,
            hosts: 0,
        })
    }

    /// Hosts keep time by the machine's clock (not an instruction count): leases need clocks
    /// that track real time.
    pub fn host_clock(mut self) -> Segment {
        self.host_clock = true;
        self
    }

    /// Hosts get `cpus` CPUs each (a primary's second runs its checkpoint pipeline).
    pub fn cpus(mut self, cpus: u32) -> Segment {
        self.cpus = Some(cpus);
        self
    }

    /// Starts host `name` as `role` on the hub, with a MAC of its own.
    pub fn start(&mut self, name: &str, role: Role) -> Result<SegmentHost> {
        self.hosts += 1;
        let qemu = free_udp_port().context("a UDP port")?;
        let (port, hub) = self.hub.add_port(qemu).context("a hub port")?;
        let mac = format!("52:54:00:00:00:{:02x}", 0x10 + self.hosts);
        let mut pair = (self.template)()?;
        if self.host_clock {
            pair = pair.host_clock();
        }
        if let Some(cpus) = self.cpus {
            pair = pair.cpus(cpus);
        }
        let run = pair
            .key(&self.key)
            .dgram((qemu, hub), (qemu, hub))
            .mac_for(role, &mac)
            .start_host(role, name)?;
        Ok(SegmentHost { run, port })
    }

    /// Starts `castor-witness` (the binary at `program`) on the hub with leases of
    /// `lease_ms`: its process (killed when dropped), its hub port, and its first line.
    pub fn start_witness(
        &mut self,
        program: &Path,
        lease_ms: u32,
    ) -> Result<(Process, usize, String)> {
        let local = free_udp_port().context("a UDP port")?;
        let (port, hub) = self.hub.add_port(local).context("a hub port")?;
        let mut cmd = Command::new(program);
        cmd.args(["--dgram", &format!("127.0.0.1:{local},127.0.0.1:{hub}")]);
        let (process, first) = spawn_witness(cmd, &self.key, lease_ms)?;
        Ok((process, port, first))
    }
}

/// Starts `castor-witness` as `cmd` (its program and transport) with `key` and leases of
/// `lease_ms`: its process (killed when dropped) and its first line; its later lines are
/// printed as they come.
pub fn spawn_witness(mut cmd: Command, key: &str, lease_ms: u32) -> Result<(Process, String)> {
    cmd.args(["--key", key, "--lease-ms", &lease_ms.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut process = Process::spawn(cmd, false).context("starting castor-witness")?;
    let stdout = process
        .take_stdout()
        .ok_or_else(|| crate::error::Error::new("castor-witness has no stdout"))?;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let first = lines
        .next()
        .transpose()
        .context("reading castor-witness")?
        .unwrap_or_default();
    // Keep reading (and showing) its lines so it never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in lines.map_while(std::result::Result::ok) {
            println!("{line}");
        }
    });
    Ok((process, first))
}

/// Waits for `marker` on `host`, panicking with its console if it does not come.
pub fn expect(host: &mut RunHandle, name: &str, marker: &str) -> String {
    host.wait_for(marker).unwrap_or_else(|e| {
        panic!(
            "{name}: no {marker:?}: {e}\n--- {name} ---\n{}",
            host.serial().unwrap_or_default()
        )
    })
}
