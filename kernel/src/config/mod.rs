// SPDX-License-Identifier: MIT OR Apache-2.0
//! The kernel command line, parsed into a typed [`Config`].
//!
//! Syntax: whitespace-separated `key=value` pairs, the keys those of the table in [`keys`]. A leading word without `=` that looks like a
//! path (`/boot/castor`, as Multiboot 1 loaders prepend the image name) is skipped. Anything
//! else that is not understood — an unknown key, a bad value, a repeated key, a word without
//! `=` — is an error naming the offending text and what would be accepted: Castor refuses to
//! boot rather than guess. So is a key given without another it needs to mean anything
//! ([`keys::Need`]), and are settings that contradict each other (`rules`).

use castor_ft::link::ipv4::Ipv4Addr;
use castor_ft::link::route::Ipv4Cidr;
use castor_ft::link::{PreSharedKey, Role};
use log::LevelFilter;

mod error;
pub mod keys;
mod rules;
mod selftests;

pub use error::ConfigError;
pub use keys::KEYS;
pub use selftests::{Selection, SelfTest, SelfTests};

/// A benchmark to run instead of booting normally (`bench=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bench {
    /// VM-exit round-trip costs.
    VmExit,
    /// Dirty-page harvest costs at two guest RAM sizes: nested table walk and hardware log.
    Harvest,
}

/// Castor's boot configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Most verbose log level shown (`log=`).
    pub log: LevelFilter,
    /// Self tests to run (`selftest=`).
    pub selftests: SelfTests,
    /// Most CPUs to bring up, including the bootstrap processor (`cpus=`).
    pub max_cpus: Option<u32>,
    /// Benchmark to run (`bench=`).
    pub bench: Option<Bench>,
    /// Run the first boot module as a Multiboot guest kernel (`guest=module`).
    pub guest_module: bool,
    /// Guest RAM in MiB (`guest_ram=`).
    pub guest_ram_mib: u32,
    /// This host's side of a primary/backup pair (`role=`).
    pub role: Option<Role>,
    /// Pre-shared key of the peer link, 64 hex digits (`key=`).
    pub key: Option<PreSharedKey>,
    /// Move this many MiB over the peer link and verify them end to end (`linktest=`).
    pub linktest_mib: Option<u32>,
    /// Silence after which the peer counts as lost, in milliseconds (`peer_timeout=`).
    pub peer_timeout_ms: u32,
    /// Percentage of received peer-link frames to drop on purpose, for testing the protocol
    /// over a lossy wire (`link_loss=`).
    pub link_loss_percent: u8,
    /// After the link test, measure the raw frame rate of the same wire (`linkbench=1`).
    pub linkbench: bool,
    /// Carry the peer link in UDP/IPv4 from this address and subnet (`ip=A.B.C.D/N`).
    pub ip: Option<Ipv4Cidr>,
    /// The peer's IPv4 address (`peer_ip=`).
    pub peer_ip: Option<Ipv4Addr>,
    /// The router towards a peer outside this host's subnet (`gateway=`).
    pub gateway: Option<Ipv4Addr>,
    /// `epoch_min=` (ms): the shortest checkpoint epoch of a fault-tolerant pair.
    pub epoch_min_ms: u32,
    /// `epoch_max=` (ms): the longest checkpoint epoch.
    pub epoch_max_ms: u32,
    /// `digests=on`: the pair computes and prints a whole-memory digest per epoch (for tests).
    pub digests: bool,
    /// `stun_buffers=`: pages of copy-on-write stun buffers the primary keeps.
    pub stun_buffers: u32,
    /// `delta_cache=`: copies of sent pages the primary keeps to make deltas against.
    pub delta_cache: u32,
    /// `guest_net=`: whether the guest gets a network card, and which host NIC carries it.
    pub guest_net: GuestNet,
    /// `guest_mac=`: the MAC address of the guest's network card.
    pub guest_mac: [u8; 6],
    /// `ft_trace=on`: the primary prints a line per checkpoint and per acknowledgement.
    pub ft_trace: bool,
    /// `witness=on`: the pair takes a witness's lease for a side to run without its peer.
    pub witness: bool,
    /// `witness_ip=`: the witness's IPv4 address, for a pair whose link runs over UDP/IPv4.
    pub witness_ip: Option<Ipv4Addr>,
    /// `ft_freeze=PHASE@EPOCH` (tests): the primary stops dead in that phase of that epoch (or
    /// of the first later epoch that has the phase), so a test can kill it in a chosen phase.
    pub ft_freeze: Option<FreezePoint>,
}

/// Where in the epoch cycle `ft_freeze=` stops the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezePhase {
    /// Halfway through running the guest in the epoch (`run`).
    Run,
    /// During the stun, after the harvest and state capture (`stun`).
    Stun,
    /// While the epoch's pages are being sent, some out and some not (`send`).
    Send,
}

/// A point of the primary's epoch cycle: a phase of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreezePoint {
    /// The phase.
    pub phase: FreezePhase,
    /// The epoch.
    pub epoch: u64,
}

impl FreezePoint {
    fn parse(value: &str) -> Option<FreezePoint> {
        let (phase, epoch) = value.split_once('@')?;
        let phase = match phase {
            "run" => FreezePhase::Run,
            "stun" => FreezePhase::Stun,
            "send" => FreezePhase::Send,
            _ => return None,
        };
        let epoch = epoch.parse().ok().filter(|e| *e > 0)?;
        Some(FreezePoint { phase, epoch })
    }
}

/// Default peer timeout (ms): longer than QEMU e1000's ~1 s receive blackout after an RCTL
/// write.
pub const DEFAULT_PEER_TIMEOUT_MS: u32 = 3000;

/// Default stun-buffer pool: 8 MiB of page copies. One stun copies at most 2 MiB of hot pages
/// (`castor_ft::epoch::lazy::MAX_COPIED_IN_STUN`); the rest serves copy-on-write faults, so a
/// guest whose epochs dirty up to 8 MiB never has a page encoded on its own CPU before its write.
pub const DEFAULT_STUN_BUFFERS: u32 = 2048;
/// Default number of sent page copies kept for deltas (8 MiB).
pub const DEFAULT_DELTA_CACHE: u32 = 2048;

/// Default shortest epoch (ms).
pub const DEFAULT_EPOCH_MIN_MS: u32 = 10;
/// Default longest epoch (ms): 25 ms is 40 epochs/s.
pub const DEFAULT_EPOCH_MAX_MS: u32 = 25;

/// Default guest RAM in MiB.
pub const DEFAULT_GUEST_RAM_MIB: u32 = 64;

impl Default for Config {
    fn default() -> Self {
        Self {
            log: LevelFilter::Info,
            selftests: SelfTests::default(),
            max_cpus: None,
            bench: None,
            guest_module: false,
            guest_ram_mib: DEFAULT_GUEST_RAM_MIB,
            role: None,
            key: None,
            linktest_mib: None,
            peer_timeout_ms: DEFAULT_PEER_TIMEOUT_MS,
            link_loss_percent: 0,
            linkbench: false,
            ip: None,
            peer_ip: None,
            gateway: None,
            epoch_min_ms: DEFAULT_EPOCH_MIN_MS,
            epoch_max_ms: DEFAULT_EPOCH_MAX_MS,
            digests: false,
            ft_freeze: None,
            stun_buffers: DEFAULT_STUN_BUFFERS,
            delta_cache: DEFAULT_DELTA_CACHE,
            guest_net: GuestNet::Off,
            witness: false,
            witness_ip: None,
            ft_trace: false,
            guest_mac: DEFAULT_GUEST_MAC,
        }
    }
}

/// `guest_net=`: the guest's network card and the host NIC its frames use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestNet {
    /// No card (`off`).
    Off,
    /// A card bridged to a NIC of its own: the first the peer link does not use (`nic`).
    OwnNic,
    /// A card bridged to the peer link's NIC, which carries both (`shared`).
    Shared,
}

/// `guest_mac=`'s default: a locally chosen address in QEMU's 52:54:00 block.
pub const DEFAULT_GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xca, 0x57, 0x01];

/// What a boot does once the machine is up: exactly one thing, chosen by the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run the self tests (`selftest=`).
    SelfTest,
    /// Run a benchmark (`bench=`).
    Bench(Bench),
    /// Pair with the peer and test the link (`linktest=`).
    LinkTest,
    /// Run the boot module as the guest of a fault-tolerant pair (`guest=module` with `role=`).
    Pair,
    /// Run the boot module as a guest (`guest=module`).
    Guest,
    /// Nothing: report ready and wait for interrupts.
    Idle,
}

impl Config {
    /// What this boot does. [`Config::parse`] refuses lines that ask for more than one thing;
    /// for a `Config` built otherwise, the first of the link test, a guest (paired if `role` is
    /// set), a benchmark and the self tests wins.
    pub fn mode(&self) -> Mode {
        if self.linktest_mib.is_some() {
            Mode::LinkTest
        } else if self.guest_module {
            match self.role {
                Some(_) => Mode::Pair,
                None => Mode::Guest,
            }
        } else if let Some(bench) = self.bench {
            Mode::Bench(bench)
        } else if self.selftests.any() {
            Mode::SelfTest
        } else {
            Mode::Idle
        }
    }

    /// Parses a command line.
    pub fn parse(line: &str) -> Result<Config, ConfigError<'_>> {
        let mut config = Config::default();
        let mut given: rules::Given = [false; KEYS.len()];
        let mut words = line.split_ascii_whitespace().peekable();
        if words
            .peek()
            .is_some_and(|w| !w.contains('=') && w.contains('/'))
        {
            words.next();
        }
        for word in words {
            let (name, value) = word.split_once('=').ok_or(ConfigError::NotKeyValue(word))?;
            let (slot, key) = keys::find(name).ok_or(ConfigError::UnknownKey(name))?;
            if !key.apply(&mut config, value) {
                return Err(ConfigError::BadValue {
                    key: key.name,
                    value,
                });
            }
            if core::mem::replace(&mut given[slot], true) {
                return Err(ConfigError::Repeated(name));
            }
        }
        rules::check(&config, &given)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
