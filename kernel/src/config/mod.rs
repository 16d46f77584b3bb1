// SPDX-License-Identifier: MIT OR Apache-2.0
//! The kernel command line, parsed into a typed [`Config`].
//!
//! Syntax: whitespace-separated `key=value` pairs. A leading word without `=` that looks like a
//! path (`/boot/castor`, as Multiboot 1 loaders prepend the image name) is skipped. Anything
//! else that is not understood — an unknown key, a bad value, a repeated key, a word without
//! `=` — is an error naming the offending text and what would be accepted: Castor refuses to
//! boot rather than guess.

use core::fmt;

use castor_ft::link::ipv4::Ipv4Addr;
use castor_ft::link::route::{self, Ipv4Cidr};
use castor_ft::link::{PreSharedKey, Role};
use log::LevelFilter;

mod selftests;

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

/// Default stun-buffer pool: 2 MiB of page copies.
pub const DEFAULT_STUN_BUFFERS: u32 = 512;

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
        }
    }
}

/// A command-line error; the `Display` text is what the console shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError<'a> {
    /// The line is not valid UTF-8.
    NotUtf8,
    /// `key=` with a key Castor does not know.
    UnknownKey(&'a str),
    /// A known key with a value it cannot take.
    BadValue {
        /// The key.
        key: &'a str,
        /// The rejected value.
        value: &'a str,
        /// What is accepted.
        expected: &'static str,
    },
    /// The same key twice.
    Repeated(&'a str),
    /// A word that is not `key=value`.
    NotKeyValue(&'a str),
}

/// Keys Castor understands (for error messages).
pub const KEYS: &str = "log, selftest, cpus, bench, guest, guest_ram, role, key, linktest, peer_timeout, link_loss, linkbench, ip, peer_ip, gateway, epoch_min, epoch_max, digests, ft_freeze, stun_buffers";

impl fmt::Display for ConfigError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotUtf8 => write!(f, "the command line is not valid UTF-8"),
            ConfigError::UnknownKey(k) => {
                write!(f, "unknown key '{k}' (known keys: {KEYS})")
            }
            ConfigError::BadValue {
                key,
                value,
                expected,
            } => {
                write!(f, "bad value '{value}' for '{key}': expected {expected}")
            }
            ConfigError::Repeated(k) => write!(f, "key '{k}' given more than once"),
            ConfigError::NotKeyValue(w) => {
                write!(f, "'{w}' is not of the form key=value (known keys: {KEYS})")
            }
        }
    }
}

const LOG_VALUES: &str = "one of error, warn, info, debug, trace";
const SELFTEST_VALUES: &str = "all, none, or a comma-separated list of config, alloc, heap, paging, wx, timer, smp, vmx, svm, guests, triple, hostile, dirty, cpustate, net, panic, fault";
const CPUS_VALUES: &str = "a whole number from 1 to 64";
const BENCH_VALUES: &str = "vmexit or harvest";
const GUEST_VALUES: &str = "module (run the first boot module as a Multiboot guest kernel)";
const GUEST_RAM_VALUES: &str = "guest RAM in MiB, from 2 to 4096";
const ROLE_VALUES: &str = "primary or backup";
const KEY_VALUES: &str = "64 hexadecimal digits (32 bytes, not all zero)";
const LINKTEST_VALUES: &str = "MiB to move over the peer link, from 1 to 4096";
const PEER_TIMEOUT_VALUES: &str = "milliseconds, from 100 to 600000";
const IP_VALUES: &str = "this host's IPv4 address and subnet prefix, e.g. 10.0.0.1/24";
const HOST_VALUES: &str = "an IPv4 host address, e.g. 10.0.0.2";
const EPOCH_VALUES: &str = "milliseconds from 1 to 10000";
const LINK_LOSS_VALUES: &str = "a percentage of received frames to drop, from 0 to 90";

fn parse_log(value: &str) -> Option<LevelFilter> {
    Some(match value {
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => return None,
    })
}

fn parse_cpus(value: &str) -> Option<u32> {
    value.parse().ok().filter(|n| (1..=64).contains(n))
}

impl Config {
    /// Parses a command line.
    pub fn parse(line: &str) -> Result<Config, ConfigError<'_>> {
        let mut config = Config::default();
        let mut seen = [false; 20];
        let mut words = line.split_ascii_whitespace().peekable();
        if words
            .peek()
            .is_some_and(|w| !w.contains('=') && w.contains('/'))
        {
            words.next();
        }
        for word in words {
            let (key, value) = word.split_once('=').ok_or(ConfigError::NotKeyValue(word))?;
            let bad = |expected| ConfigError::BadValue {
                key,
                value,
                expected,
            };
            let slot = match key {
                "log" => {
                    config.log = parse_log(value).ok_or_else(|| bad(LOG_VALUES))?;
                    0
                }
                "selftest" => {
                    config.selftests =
                        SelfTests::parse(value).ok_or_else(|| bad(SELFTEST_VALUES))?;
                    1
                }
                "cpus" => {
                    config.max_cpus = Some(parse_cpus(value).ok_or_else(|| bad(CPUS_VALUES))?);
                    2
                }
                "bench" => {
                    config.bench = Some(match value {
                        "vmexit" => Bench::VmExit,
                        "harvest" => Bench::Harvest,
                        _ => return Err(bad(BENCH_VALUES)),
                    });
                    3
                }
                "guest" => {
                    config.guest_module = value == "module";
                    if !config.guest_module {
                        return Err(bad(GUEST_VALUES));
                    }
                    4
                }
                "guest_ram" => {
                    config.guest_ram_mib = value
                        .parse()
                        .ok()
                        .filter(|n| (2..=4096).contains(n))
                        .ok_or_else(|| bad(GUEST_RAM_VALUES))?;
                    5
                }
                "role" => {
                    config.role = Some(match value {
                        "primary" => Role::Primary,
                        "backup" => Role::Backup,
                        _ => return Err(bad(ROLE_VALUES)),
                    });
                    6
                }
                "key" => {
                    config.key = Some(PreSharedKey::from_hex(value).map_err(|_| bad(KEY_VALUES))?);
                    7
                }
                "linktest" => {
                    config.linktest_mib = Some(
                        value
                            .parse()
                            .ok()
                            .filter(|n| (1..=4096).contains(n))
                            .ok_or_else(|| bad(LINKTEST_VALUES))?,
                    );
                    8
                }
                "peer_timeout" => {
                    config.peer_timeout_ms = value
                        .parse()
                        .ok()
                        .filter(|n| (100..=600_000).contains(n))
                        .ok_or_else(|| bad(PEER_TIMEOUT_VALUES))?;
                    9
                }
                "link_loss" => {
                    config.link_loss_percent = value
                        .parse()
                        .ok()
                        .filter(|n| *n <= 90)
                        .ok_or_else(|| bad(LINK_LOSS_VALUES))?;
                    10
                }
                "linkbench" => {
                    config.linkbench = match value {
                        "1" => true,
                        "0" => false,
                        _ => return Err(bad("0 or 1")),
                    };
                    11
                }
                "ip" => {
                    config.ip = Some(Ipv4Cidr::parse(value).ok_or_else(|| bad(IP_VALUES))?);
                    12
                }
                "peer_ip" => {
                    config.peer_ip = Some(host_address(value).ok_or_else(|| bad(HOST_VALUES))?);
                    13
                }
                "gateway" => {
                    config.gateway = Some(host_address(value).ok_or_else(|| bad(HOST_VALUES))?);
                    14
                }
                "epoch_min" | "epoch_max" => {
                    let ms = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=10_000).contains(n))
                        .ok_or_else(|| bad(EPOCH_VALUES))?;
                    if key == "epoch_min" {
                        config.epoch_min_ms = ms;
                        15
                    } else {
                        config.epoch_max_ms = ms;
                        16
                    }
                }
                "digests" => {
                    config.digests = match value {
                        "on" => true,
                        "off" => false,
                        _ => return Err(bad("on or off")),
                    };
                    17
                }
                "ft_freeze" => {
                    config.ft_freeze =
                        Some(FreezePoint::parse(value).ok_or_else(|| {
                            bad("PHASE@EPOCH: run, stun or send, and an epoch > 0")
                        })?);
                    18
                }
                "stun_buffers" => {
                    config.stun_buffers = value
                        .parse()
                        .ok()
                        .filter(|n| *n <= 65_536)
                        .ok_or_else(|| bad("pages from 0 to 65536"))?;
                    19
                }
                _ => return Err(ConfigError::UnknownKey(key)),
            };
            if core::mem::replace(&mut seen[slot], true) {
                return Err(ConfigError::Repeated(key));
            }
        }
        Ok(config)
    }
}

/// `value` as an IPv4 host address (not 0.0.0.0, broadcast or multicast).
fn host_address(value: &str) -> Option<Ipv4Addr> {
    Ipv4Addr::parse(value).filter(|a| route::is_host(*a))
}

#[cfg(test)]
mod tests;
