//! Primary/backup pairs: two Castor hosts joined by an emulated Ethernet, started in the right
//! order and watched together ([`Pair`] starts them, [`PairHandle`] watches and kills them).
//!
//! Each host boots Castor with `role=primary|backup key=K peer_timeout=MS`, then
//! `guest=module guest_ram=MIB` when the pair has a guest (the guest kernel is the first boot
//! module: QEMU `-initrd "guest ARGS"`, Bochs `module2 /boot/guest ARGS`; its further modules
//! follow as `module1`, `module2`, ...), then
//! `epoch_min=MS epoch_max=MS` when set, then the pair's and the host's extra arguments.
//! The primary has MAC 52:54:00:00:00:01, the backup 52:54:00:00:00:02. The wire depends on
//! the emulators:
//!
//! * QEMU ↔ QEMU: `-netdev stream`, TCP on 127.0.0.1; the primary listens, so it starts first
//!   and the backup only once the primary's banner shows QEMU is up. With [`Pair::dgram`]
//!   instead: UDP datagrams between given ports (e.g. through a [`crate::router::Router`]).
//! * Bochs ↔ Bochs: e1000s on Bochs' `socket` back end joined by `bxhub`.
//! * Bochs ↔ QEMU: Bochs' `socket` back end and QEMU's `dgram` netdev, one raw frame per UDP
//!   datagram.
//!
//! Bochs and `bxhub` listen on every interface, so any pair with a Bochs host runs entirely in
//! a private [`NetNamespace`] (fixed ports are safe there). QEMU hosts use the pair's NIC model
//! ([`Nic`]); Bochs hosts always have an e1000 (Bochs has no virtio-net).

mod console;
mod handle;
pub mod released;
pub mod segment;
mod wire;

pub use console::{LinePrefixer, LiveConsole, SharedBuffer};
pub use handle::{HostState, PairHandle, PairOutcome};
pub use wire::{Nic, dgram_netdev, free_tcp_port, stream_netdev};

use crate::error::{Context, Error, Result};
use crate::handle::RunHandle;
use crate::netns::NetNamespace;
use crate::qemu::Qemu;
use crate::serial_input::SerialInput;
use crate::{Emulator, Run, contract};
use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wire::Wire;

/// A host's side of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Runs the guest and checkpoints it to the backup.
    Primary,
    /// Receives checkpoints and takes over the guest when the primary dies.
    Backup,
}

impl Role {
    /// Both roles, primary first.
    pub const BOTH: [Role; 2] = [Role::Primary, Role::Backup];

    /// `primary` or `backup` (as on Castor's command line).
    pub fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Backup => "backup",
        }
    }

    /// The live console's prefix for this host's lines; both prefixes have the same width.
    pub fn prefix(self) -> &'static str {
        match self {
            Role::Primary => "primary | ",
            Role::Backup => "backup  | ",
        }
    }

    /// The host's NIC's MAC address.
    pub fn mac(self) -> &'static str {
        match self {
            Role::Primary => "52:54:00:00:00:01",
            Role::Backup => "52:54:00:00:00:02",
        }
    }

    /// 0 for the primary, 1 for the backup (index into per-role arrays).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The emulator of one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEmulator {
    /// QEMU booting the kernel with `-kernel`: KVM when it can run guests, otherwise TCG,
    /// whose `-cpu max` offers AMD-V (see [`crate::accel`]).
    Qemu,
    /// Bochs booting the GRUB ISO with its default Intel model (VT-x with EPT and PML).
    Bochs,
}

/// A fresh peer-link key: 64 hex digits from `/dev/urandom`.
pub fn random_key() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    if bytes.iter().all(|&b| b == 0) {
        return Err(Error::new("/dev/urandom returned 32 zero bytes"));
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Castor's peer timeout when a pair does not choose one: QEMU's clock follows its instruction
/// count under the test suite's `-icount`, so a host starved of CPU by parallel tests falls
/// silent on its peer's clock for a while.
pub const QEMU_PEER_TIMEOUT_MS: u32 = 3000;
/// The same for pairs with a Bochs host: Bochs' emulated clock runs several times faster than
/// its CPU and its e1000 takes one frame per emulated millisecond, so a busy Bochs peer is
/// quiet for seconds of its clock.
pub const BOCHS_PEER_TIMEOUT_MS: u32 = 10_000;
/// Guest RAM when a pair with a guest does not choose (Castor's own default).
pub const DEFAULT_GUEST_RAM_MIB: u32 = 64;
/// Default wall-time limit of a QEMU host.
pub const QEMU_HOST_TIMEOUT: Duration = Duration::from_secs(300);
/// Default wall-time limit of a Bochs host.
pub const BOCHS_HOST_TIMEOUT: Duration = Duration::from_secs(600);
/// Failure markers of a pair's hosts unless chosen: pairing failures and lost peers are what
/// some runs expect, so only a panic or a host exception fails a host.
pub const PAIR_FAIL_MARKERS: &[&str] = &["PANIC", "EXCEPTION"];
/// A guest kernel for the pair.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Guest {
    file: PathBuf,
    args: String,
}

/// A primary/backup pair to start (see the module documentation for what each host gets).
pub struct Pair {
    emulators: [HostEmulator; 2],
    nic: Nic,
    dgram: Option<[(u16, u16); 2]>,
    kernel: Option<PathBuf>,
    guest: Option<Guest>,
    guest_modules: Vec<Guest>,
    guest_ram_mib: Option<u32>,
    /// Per host: the role its command line claims (a misconfigured pair claims the same) and
    /// its own guest RAM, when they differ from the pair's.
    claims: [Option<Role>; 2],
    ram_for: [Option<u32>; 2],
    keys: [Option<String>; 2],
    peer_timeout_ms: Option<u32>,
    epoch_min_ms: Option<u32>,
    epoch_max_ms: Option<u32>,
    args: [String; 2],
    /// Per host: a QEMU `-cpu` model instead of the accelerator's.
    qemu_cpu: [Option<String>; 2],
    cpus: u32,
    memory_mib: Option<u32>,
    timeout: Option<Option<Duration>>,
    fail_markers: Vec<String>,
    name: Option<String>,
    console: Option<Box<dyn Write + Send>>,
    serial_inputs: Option<[SerialInput; 2]>,
    guest_net: Option<GuestNetwork>,
    host_clock: bool,
    /// Per host: its NIC's MAC instead of the role's.
    macs: [Option<String>; 2],
}

/// Where the guest's network card of a QEMU pair is bridged: each host gets a second NIC (a
/// `virtio-net-pci` on a tap device), and both hosts run inside the namespace that holds the
/// taps (see `crate::guestnet`), or in the machine's own for taps there (`castor-run
/// --guest-net`).
#[derive(Clone)]
pub struct GuestNetwork {
    /// The private namespace of the taps (and of whatever else is on their bridge); `None`:
    /// the machine's own.
    pub netns: Option<Arc<NetNamespace>>,
    /// The tap of each host, by [`Role::index`].
    pub taps: [String; 2],
    /// The model of the hosts' guest-traffic NIC.
    pub nic: Nic,
    /// The taps carry the peer link too (`guest_net=shared`): each host has that one NIC and
    /// no other wire.
    pub shared: bool,
}

impl GuestNetwork {
    /// QEMU arguments for `role`'s guest-traffic NIC on its tap: after the peer link's NIC,
    /// so Castor finds it second.
    fn qemu_args(&self, role: Role) -> [String; 4] {
        let mac = match self.shared {
            true => role.mac().to_string(),
            false => format!("52:54:00:00:01:{:02x}", role.index() + 1),
        };
        [
            "-netdev".into(),
            format!(
                "tap,id=g0,ifname={},script=no,downscript=no",
                self.taps[role.index()]
            ),
            "-device".into(),
            format!("{},netdev=g0,mac={mac}", self.nic.qemu_device()),
        ]
    }
}

impl Pair {
    /// A pair of two `emulator` hosts with 1 CPU each, a fresh random key, no guest and the
    /// defaults above; QEMU hosts get virtio-net.
    pub fn new(emulator: HostEmulator) -> Pair {
        Pair {
            emulators: [emulator; 2],
            nic: Nic::VirtioNet,
            dgram: None,
            kernel: None,
            guest: None,
            guest_modules: Vec::new(),
            guest_ram_mib: None,
            claims: [None, None],
            ram_for: [None, None],
            keys: [None, None],
            peer_timeout_ms: None,
            epoch_min_ms: None,
            epoch_max_ms: None,
            args: [String::new(), String::new()],
            qemu_cpu: [None, None],
            cpus: 1,
            memory_mib: None,
            timeout: None,
            fail_markers: PAIR_FAIL_MARKERS.iter().map(|m| m.to_string()).collect(),
            name: None,
            console: None,
            serial_inputs: None,
            guest_net: None,
            host_clock: false,
            macs: [None, None],
        }
    }

    /// QEMU hosts keep emulated time on the host clock whatever `$CASTOR_QEMU_ICOUNT` says
    /// ([`Qemu::host_clock`](crate::qemu::Qemu::host_clock)): for figures taken in wall time,
    /// such as a client's round trips.
    pub fn host_clock(mut self) -> Pair {
        self.host_clock = true;
        self
    }

    /// Gives the guest a network card (`guest_net=nic`) bridged on both QEMU hosts to their
    /// taps in `net`; the hosts run inside its namespace.
    pub fn guest_network(mut self, net: GuestNetwork) -> Pair {
        self.guest_net = Some(net);
        self
    }

    /// Two QEMU hosts.
    pub fn qemu() -> Pair {
        Pair::new(HostEmulator::Qemu)
    }

    /// Two Bochs hosts.
    pub fn bochs() -> Pair {
        Pair::new(HostEmulator::Bochs)
    }

    /// Runs `role` under `emulator` instead (a mixed Bochs ↔ QEMU pair).
    pub fn emulator_for(mut self, role: Role, emulator: HostEmulator) -> Pair {
        self.emulators[role.index()] = emulator;
        self
    }

    /// The QEMU hosts' NIC model.
    pub fn nic(mut self, nic: Nic) -> Pair {
        self.nic = nic;
        self
    }

    /// Joins two QEMU hosts by `dgram` netdevs instead of a stream: `(local, remote)` UDP
    /// ports on 127.0.0.1 for the primary and the backup.
    pub fn dgram(mut self, primary: (u16, u16), backup: (u16, u16)) -> Pair {
        self.dgram = Some([primary, backup]);
        self
    }

    /// Boots this kernel ELF instead of the one [`crate::kernel::elf`] provides.
    pub fn kernel(mut self, elf: impl Into<PathBuf>) -> Pair {
        self.kernel = Some(elf.into());
        self
    }

    /// Runs `file`, a Linux bzImage or a Multiboot (v1) kernel, as the pair's guest with
    /// command line `args`.
    pub fn guest(mut self, file: impl Into<PathBuf>, args: &str) -> Pair {
        let file = file.into();
        self.guest = Some(Guest {
            file,
            args: args.into(),
        });
        self
    }

    /// Adds `file` as the guest's next boot module with string `args` (a Linux guest's initrd
    /// part, a Multiboot guest's module), after the guest kernel and the modules added before.
    pub fn guest_module(mut self, file: impl Into<PathBuf>, args: &str) -> Pair {
        self.guest_modules.push(Guest {
            file: file.into(),
            args: args.into(),
        });
        self
    }

    /// Guest RAM in MiB (default [`DEFAULT_GUEST_RAM_MIB`]).
    pub fn guest_ram_mib(mut self, mib: u32) -> Pair {
        self.guest_ram_mib = Some(mib);
        self
    }

    /// Misconfigures host `host` to claim role `claimed` on its command line (two primaries).
    pub fn claim_role(mut self, host: Role, claimed: Role) -> Pair {
        self.claims[host.index()] = Some(claimed);
        self
    }

    /// Gives host `role` its own guest RAM size (a mismatched pair).
    pub fn guest_ram_for(mut self, role: Role, mib: u32) -> Pair {
        self.ram_for[role.index()] = Some(mib);
        self
    }

    /// The pre-shared key of both hosts (64 hex digits; default: [`random_key`]).
    pub fn key(mut self, key: &str) -> Pair {
        self.keys = [Some(key.into()), Some(key.into())];
        self
    }

    /// Gives `role` its own key (e.g. a wrong one, to see pairing refused).
    pub fn key_for(mut self, role: Role, key: &str) -> Pair {
        self.keys[role.index()] = Some(key.into());
        self
    }

    /// `peer_timeout=` in ms (default [`QEMU_PEER_TIMEOUT_MS`], or [`BOCHS_PEER_TIMEOUT_MS`]
    /// with a Bochs host).
    pub fn peer_timeout_ms(mut self, ms: u32) -> Pair {
        self.peer_timeout_ms = Some(ms);
        self
    }

    /// `epoch_min=` and `epoch_max=` in ms (default: Castor's).
    pub fn epoch_ms(mut self, min: u32, max: u32) -> Pair {
        (self.epoch_min_ms, self.epoch_max_ms) = (Some(min), Some(max));
        self
    }

    /// Extra kernel arguments for both hosts (appended to what the pair sets).
    pub fn args(mut self, args: &str) -> Pair {
        for role in Role::BOTH {
            self = self.args_for(role, args);
        }
        self
    }

    /// Extra kernel arguments for `role` only (after those for both).
    pub fn args_for(mut self, role: Role, args: &str) -> Pair {
        let all = &mut self.args[role.index()];
        all.extend(args.split_whitespace().flat_map(|w| [" ", w]));
        self
    }

    /// Gives `role`'s QEMU this `-cpu` model (e.g. `qemu64,+svm,+npt`) instead of the
    /// accelerator's (`max` under TCG), for a pair of unlike CPUs.
    pub fn qemu_cpu_for(mut self, role: Role, model: &str) -> Pair {
        self.qemu_cpu[role.index()] = Some(model.into());
        self
    }

    /// CPUs per host. QEMU hosts with more than one keep time on the host clock, whatever
    /// `$CASTOR_QEMU_ICOUNT` says: with `-icount` QEMU runs its CPUs one at a time, in turns of
    /// up to 100 ms, so a CPU that waits for a lock the other holds (the primary's checkpoint
    /// pipeline and its guest share one) stalls for a whole turn; without it they run side by
    /// side, as on hardware.
    pub fn cpus(mut self, cpus: u32) -> Pair {
        self.cpus = cpus;
        self
    }

    /// Machine memory per host in MiB (default: 256, or the guest's RAM plus 128 if more).
    pub fn memory_mib(mut self, mib: u32) -> Pair {
        self.memory_mib = Some(mib);
        self
    }

    /// Wall-time limit of each host (default [`QEMU_HOST_TIMEOUT`] / [`BOCHS_HOST_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Pair {
        self.timeout = Some(Some(timeout));
        self
    }

    /// No time limit (interactive use only; tests always need one).
    pub fn no_timeout(mut self) -> Pair {
        self.timeout = Some(None);
        self
    }

    /// Replaces the failure markers (default [`PAIR_FAIL_MARKERS`]).
    pub fn fail_markers(mut self, markers: &[&str]) -> Pair {
        self.fail_markers = markers.iter().map(|m| m.to_string()).collect();
        self
    }

    /// Names the run directories `NAME-primary` and `NAME-backup` (default: the thread's
    /// name, i.e. the test's).
    pub fn name(mut self, name: &str) -> Pair {
        self.name = Some(name.into());
        self
    }

    /// Streams both consoles to `sink` live, each line prefixed by its host's role
    /// ([`Role::prefix`]), in arrival order.
    pub fn live_console(mut self, sink: Box<dyn Write + Send>) -> Pair {
        self.console = Some(sink);
        self
    }

    /// Lets `inputs` type into the hosts' serial consoles, the primary's first (QEMU hosts
    /// only: see [`crate::serial_input`]).
    pub fn serial_inputs(mut self, inputs: [SerialInput; 2]) -> Pair {
        self.serial_inputs = Some(inputs);
        self
    }

    /// The peer timeout the hosts get.
    pub fn effective_peer_timeout_ms(&self) -> u32 {
        let bochs = self.emulators.contains(&HostEmulator::Bochs);
        self.peer_timeout_ms.unwrap_or(match bochs {
            true => BOCHS_PEER_TIMEOUT_MS,
            false => QEMU_PEER_TIMEOUT_MS,
        })
    }

    /// Castor's command line for `role`, given the key it gets.
    pub fn cmdline(&self, role: Role, key: &str) -> String {
        let mut words = vec![
            format!("role={}", self.claims[role.index()].unwrap_or(role)),
            format!("key={key}"),
            format!("peer_timeout={}", self.effective_peer_timeout_ms()),
        ];
        if self.guest.is_some() {
            words.push("guest=module".into());
            let ram = self.guest_ram(role);
            words.push(format!("guest_ram={ram}"));
            match &self.guest_net {
                Some(net) if net.shared => words.push("guest_net=shared".into()),
                Some(_) => words.push("guest_net=nic".into()),
                None => {}
            }
        }
        if let Some(ms) = self.epoch_min_ms {
            words.push(format!("epoch_min={ms}"));
        }
        if let Some(ms) = self.epoch_max_ms {
            words.push(format!("epoch_max={ms}"));
        }
        words.extend(self.args[role.index()].split_whitespace().map(String::from));
        words.join(" ")
    }

    /// Guest RAM of `role`'s host in MiB.
    fn guest_ram(&self, role: Role) -> u32 {
        self.ram_for[role.index()]
            .or(self.guest_ram_mib)
            .unwrap_or(DEFAULT_GUEST_RAM_MIB)
    }

    /// Machine memory per host in MiB.
    fn machine_mib(&self) -> u32 {
        let guest = match self.guest {
            Some(_) => self
                .guest_ram(Role::Primary)
                .max(self.guest_ram(Role::Backup)),
            None => 0,
        };
        let fit = crate::cli::MACHINE_MIB.max(guest + crate::cli::HOST_RESERVE_MIB);
        self.memory_mib.unwrap_or(fit)
    }

    /// Gives `role`'s host the MAC `mac` instead of its role's.
    pub fn mac_for(mut self, role: Role, mac: &str) -> Pair {
        self.macs[role.index()] = Some(mac.into());
        self
    }

    /// Starts only `role`'s host, named `name`, with the key given ([`Pair::key`]; a pair
    /// with hosts started one by one shares one) on a `dgram` wire ([`Pair::dgram`]): a host
    /// joining others on a [`crate::hub::Hub`].
    pub fn start_host(&self, role: Role, name: &str) -> Result<RunHandle> {
        let (Some(ports), Some(key)) = (self.dgram, &self.keys[role.index()]) else {
            return Err(Error::new(
                "a host started alone needs dgram ports and a key",
            ));
        };
        let wire = Wire::set_up(self.emulators, Some(ports))?;
        let run = self.host_run(role, &wire, key, name)?.name(name);
        run.start().context(format!("starting {name}"))
    }

    /// Sets up the wire, starts both hosts (the primary first) and, if asked, the live
    /// console.
    pub fn start(mut self) -> Result<PairHandle> {
        let keys = match &self.keys {
            [Some(p), Some(b)] => [p.clone(), b.clone()],
            [p, b] => {
                let key = random_key()?;
                [p.clone(), b.clone()].map(|k| k.unwrap_or_else(|| key.clone()))
            }
        };
        let name = self.name.clone().unwrap_or_else(|| {
            std::thread::current()
                .name()
                .filter(|n| *n != "main")
                .unwrap_or("pair")
                .to_string()
        });
        let wire = Wire::set_up(self.emulators, self.dgram)?;
        let host = |role: Role| -> Result<RunHandle> {
            let run = self.host_run(role, &wire, &keys[role.index()], &name)?;
            run.start().context(format!("starting the {role}"))
        };
        let mut primary = host(Role::Primary)?;
        if wire.primary_listens() {
            // The backup's QEMU connects once at start-up: the primary's must listen by then.
            primary
                .wait_for("booting")
                .map_err(|e| Error::new(format!("the primary did not boot: {e}")))
                .and_then(|line| match contract::is_banner(&line) {
                    true => Ok(()),
                    false => Err(Error::new(format!("the primary printed {line:?} first"))),
                })?;
        }
        let backup = host(Role::Backup)?;
        let console = self.console.take().map(|sink| {
            let logs = [(Role::Primary, &primary), (Role::Backup, &backup)]
                .map(|(role, run)| (role, run.serial.path().to_path_buf()));
            LiveConsole::start(logs.into(), sink)
        });
        Ok(PairHandle::new(
            [primary, backup],
            console,
            wire.hub,
            wire.netns,
        ))
    }

    /// One host's run, not started yet.
    fn host_run(&self, role: Role, wire: &Wire, key: &str, name: &str) -> Result<Run> {
        let wired = match &self.guest_net {
            // The tap is the host's only NIC.
            Some(net) if net.shared => Emulator::Qemu(Qemu::kernel()),
            _ => wire.emulator(
                role,
                self.emulators[role.index()],
                self.nic,
                self.macs[role.index()].as_deref().unwrap_or(role.mac()),
            ),
        };
        let emulator = match (wired, &self.qemu_cpu[role.index()]) {
            // QEMU takes the last `-cpu` given.
            (Emulator::Qemu(qemu), Some(model)) => Emulator::Qemu(qemu.args(["-cpu", model])),
            (emulator, _) => emulator,
        };
        let emulator = match (emulator, &self.guest_net) {
            (Emulator::Qemu(qemu), Some(net)) => Emulator::Qemu(qemu.args(net.qemu_args(role))),
            (emulator, _) => emulator,
        };
        let emulator = match emulator {
            Emulator::Qemu(qemu) if self.host_clock || self.cpus > 1 => {
                Emulator::Qemu(qemu.host_clock())
            }
            emulator => emulator,
        };
        let limit = match emulator {
            Emulator::Qemu(_) => QEMU_HOST_TIMEOUT,
            Emulator::Bochs(_) => BOCHS_HOST_TIMEOUT,
        };
        let markers: Vec<&str> = self.fail_markers.iter().map(String::as_str).collect();
        let mut run = Run::new(emulator)
            .name(&format!("{name}-{role}"))
            .cpus(self.cpus)
            .memory_mib(self.machine_mib())
            .cmdline(&self.cmdline(role, key))
            .fail_markers(&markers);
        run = match self.timeout.unwrap_or(Some(limit)) {
            Some(limit) => run.timeout(limit),
            None => run.no_timeout(),
        };
        if let Some(elf) = &self.kernel {
            run = run.kernel(elf);
        }
        if let Some(guest) = &self.guest {
            run = run.module(crate::cli::GUEST_MODULE, &guest.file, &guest.args);
            for (i, module) in self.guest_modules.iter().enumerate() {
                run = run.module(&crate::cli::module_name(i), &module.file, &module.args);
            }
        }
        match (&self.guest_net, &wire.netns) {
            (
                Some(GuestNetwork {
                    netns: Some(ns), ..
                }),
                _,
            )
            | (None, Some(ns)) => run = run.netns(ns),
            _ => {}
        }
        if let Some(inputs) = &self.serial_inputs {
            run = run.serial_input(inputs[role.index()].clone());
        }
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe";

    #[test]
    fn command_lines_carry_role_key_timeout_guest_epochs_then_extras() {
        let pair = Pair::qemu()
            .guest("/g/demo", "x=1")
            .guest_ram_mib(16)
            .epoch_ms(5, 50)
            .args("log=debug")
            .args_for(Role::Backup, " link_loss=5  ");
        assert_eq!(
            pair.cmdline(Role::Primary, KEY),
            format!(
                "role=primary key={KEY} peer_timeout=3000 guest=module guest_ram=16 \
                 epoch_min=5 epoch_max=50 log=debug"
            )
        );
        assert_eq!(
            pair.cmdline(Role::Backup, "k"),
            "role=backup key=k peer_timeout=3000 guest=module guest_ram=16 epoch_min=5 \
             epoch_max=50 log=debug link_loss=5"
        );
        assert_eq!(pair.machine_mib(), 256);
        let pair = Pair::qemu().args("linktest=1").peer_timeout_ms(500);
        assert_eq!(
            pair.cmdline(Role::Backup, "k"),
            "role=backup key=k peer_timeout=500 linktest=1"
        );
    }

    #[test]
    fn defaults_follow_the_emulators_and_the_guest() {
        let pair = Pair::qemu().guest("/g", "");
        assert!(pair.cmdline(Role::Primary, "k").contains(" guest_ram=64"));
        let pair = pair.guest_ram_mib(1024);
        assert_eq!(pair.machine_mib(), 1024 + 128);
        assert_eq!(pair.memory_mib(300).machine_mib(), 300);
        let mixed = Pair::qemu().emulator_for(Role::Primary, HostEmulator::Bochs);
        assert_eq!(mixed.effective_peer_timeout_ms(), BOCHS_PEER_TIMEOUT_MS);
        assert_eq!(Pair::bochs().effective_peer_timeout_ms(), 10_000);
        assert_eq!(Pair::qemu().effective_peer_timeout_ms(), 3000);
    }

    #[test]
    fn roles_have_aligned_prefixes_and_distinct_macs() {
        assert_eq!(Role::Primary.prefix().len(), Role::Backup.prefix().len());
        assert_ne!(Role::Primary.mac(), Role::Backup.mac());
        assert_eq!(Role::BOTH.map(Role::index), [0, 1]);
        assert_eq!(Role::Backup.to_string(), "backup");
    }

    #[test]
    fn random_keys_are_fresh_hex() {
        let (a, b) = (random_key().unwrap(), random_key().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn dgram_is_for_qemu_pairs_only() {
        let err = Pair::bochs().dgram((1, 2), (3, 4)).start().unwrap_err();
        assert!(err.to_string().contains("cannot use dgram"), "{err}");
    }
}
