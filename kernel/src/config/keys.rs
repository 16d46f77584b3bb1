// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every command-line key, registered once in [`KEYS`]: its name, the values it takes (from
//! which the range check, the error text and the README's "values" column all follow), its
//! default, a line of help, the keys it means nothing without, and how it sets [`Config`].

use core::fmt::{self, Write};

use castor_ft::link::ether::MacAddr;
use castor_ft::link::ipv4::Ipv4Addr;
use castor_ft::link::route::{self, Ipv4Cidr};
use castor_ft::link::{PreSharedKey, Role};
use log::LevelFilter;

use super::selftests::{Selection, SelfTest, SelfTests};
use super::{Bench, Config, FreezePoint, GuestNet};

/// A command-line key.
pub struct Key {
    /// The name before `=`.
    pub name: &'static str,
    /// What it takes, and how that sets [`Config`].
    pub value: Value,
    /// What holds when it is not given.
    pub unset: Unset,
    /// What it does (a line of Markdown, as in the README).
    pub help: &'static str,
    /// Keys that must be given too, else this one means nothing.
    pub needs: &'static [Need],
}

/// A word a key takes, and what it sets.
pub type Word = (&'static str, fn(&mut Config));

/// The values a key takes.
pub enum Value {
    /// One of these words.
    Words(&'static [Word]),
    /// A whole number from `min` to `max`, counting `unit`.
    Number {
        /// Smallest accepted.
        min: u32,
        /// Largest accepted.
        max: u32,
        /// What it counts (for messages).
        unit: &'static str,
        /// Sets the number.
        set: fn(&mut Config, u32),
    },
    /// Text of some syntax: `set` parses it, `false` if it cannot.
    Text {
        /// What is accepted (for messages).
        expected: &'static str,
        /// Parses and sets the value.
        set: fn(&mut Config, &str) -> bool,
    },
    /// `all`, `none` or a list of [`SelfTest`] names.
    SelfTests,
}

/// What holds when a key is not given.
pub enum Unset {
    /// The same as giving this value.
    Value(&'static str),
    /// Described in words.
    Means(&'static str),
}

/// Another key that must be given for this one to mean anything.
#[derive(Debug, PartialEq, Eq)]
pub struct Need {
    /// One of these keys must be given.
    pub any_of: &'static [&'static str],
    /// Why (for the error message).
    pub why: &'static str,
}

/// The need of a key that tunes the peer link.
const LINK_NEED: Need = Need {
    any_of: &["role"],
    why: "it tunes the peer link, which role= starts",
};

/// Needs of a key that tunes the peer link.
const LINK: &[Need] = &[LINK_NEED];

/// Needs of a key that tunes the fault-tolerant pair.
const PAIR: &[Need] = &[
    Need {
        any_of: &["role"],
        why: "it tunes the fault-tolerant pair, which role= with guest=module starts",
    },
    Need {
        any_of: &["guest"],
        why: "it tunes the fault-tolerant pair, which role= with guest=module starts",
    },
];

/// Needs of `peer_ip=` and `gateway=`.
const UDP: &[Need] = &[Need {
    any_of: &["ip"],
    why: "the UDP/IPv4 link runs from this host's address and subnet, given by ip=",
}];

/// Every key, in the order error messages list them.
pub static KEYS: [Key; 26] = [
    Key {
        name: "log",
        value: Value::Words(&[
            ("error", |c| c.log = LevelFilter::Error),
            ("warn", |c| c.log = LevelFilter::Warn),
            ("info", |c| c.log = LevelFilter::Info),
            ("debug", |c| c.log = LevelFilter::Debug),
            ("trace", |c| c.log = LevelFilter::Trace),
        ]),
        unset: Unset::Value("info"),
        help: "most verbose log level shown",
        needs: &[],
    },
    Key {
        name: "selftest",
        value: Value::SelfTests,
        unset: Unset::Value("none"),
        help: "in-kernel self tests to run (see below)",
        needs: &[],
    },
    Key {
        name: "cpus",
        value: Value::Number {
            min: 1,
            max: 64,
            unit: "CPUs",
            set: |c, n| c.max_cpus = Some(n),
        },
        unset: Unset::Means("all listed by ACPI"),
        help: "most CPUs to start, the bootstrap processor included",
        needs: &[],
    },
    Key {
        name: "bench",
        value: Value::Words(&[
            ("vmexit", |c| c.bench = Some(Bench::VmExit)),
            ("harvest", |c| c.bench = Some(Bench::Harvest)),
        ]),
        unset: Unset::Means("none"),
        help: "`vmexit`: print VM-exit round-trip costs; `harvest`: dirty-page harvest cost at \
               two guest RAM sizes",
        needs: &[],
    },
    Key {
        name: "guest",
        value: Value::Words(&[("module", |c| c.guest_module = true)]),
        unset: Unset::Means("none"),
        help: "run the first boot module as the guest kernel (a Linux bzImage or a Multiboot \
               kernel), with the module's arguments as its command line; the further boot \
               modules are its initrd (Linux: concatenated) or its Multiboot modules (each with \
               its arguments)",
        needs: &[],
    },
    Key {
        name: "guest_ram",
        value: Value::Number {
            min: 2,
            // Below the 32-bit PCI hole (`vmm::ram_layout::MAX_RAM`): the APIC pages stay free.
            max: 3072,
            unit: "MiB",
            set: |c, n| c.guest_ram_mib = n,
        },
        unset: Unset::Value("64"),
        help: "guest RAM",
        needs: &[Need {
            any_of: &["guest"],
            why: "it sizes the guest that guest=module runs",
        }],
    },
    Key {
        name: "guest_net",
        value: Value::Words(&[
            ("off", |c| c.guest_net = GuestNet::Off),
            ("nic", |c| c.guest_net = GuestNet::OwnNic),
            ("shared", |c| c.guest_net = GuestNet::Shared),
        ]),
        unset: Unset::Value("off"),
        help: "the guest gets a virtio-net card (virtio-mmio, described in its ACPI tables) \
               bridged to a host NIC: `nic`: the first NIC the peer link does not use, \
               `shared`: the peer link's own (without a pair: the first); on a pair its frames \
               are sent only once the backup has the epoch that produced them",
        needs: &[Need {
            any_of: &["guest"],
            why: "it gives the guest of guest=module a network card",
        }],
    },
    Key {
        name: "guest_mac",
        value: Value::Text {
            expected: "a unicast MAC address, e.g. 52:54:00:ca:57:01",
            set: |c, v| match MacAddr::parse(v) {
                Some(mac) if mac.is_valid_unicast() => {
                    c.guest_mac = mac.0;
                    true
                }
                _ => false,
            },
        },
        unset: Unset::Value("52:54:00:ca:57:01"),
        help: "the MAC address of the guest's network card (the same on both hosts of a pair)",
        needs: &[Need {
            any_of: &["guest_net"],
            why: "it names the card guest_net= gives the guest",
        }],
    },
    Key {
        name: "role",
        value: Value::Words(&[
            ("primary", |c| c.role = Some(Role::Primary)),
            ("backup", |c| c.role = Some(Role::Backup)),
        ]),
        unset: Unset::Means("none"),
        help: "this host's side of the peer link; with `guest=module`, of the fault-tolerant pair",
        needs: &[
            Need {
                any_of: &["key"],
                why: "the peer link is sealed with the pre-shared key",
            },
            Need {
                any_of: &["guest", "linktest"],
                why: "with neither, there is nothing to do with the peer",
            },
        ],
    },
    Key {
        name: "key",
        value: Value::Text {
            expected: "64 hexadecimal digits (32 bytes, not all zero)",
            set: |c, v| {
                c.key = PreSharedKey::from_hex(v).ok();
                c.key.is_some()
            },
        },
        unset: Unset::Means("none"),
        help: "the peer link's pre-shared key, the same on both hosts",
        needs: &[Need {
            any_of: &["role"],
            why: "the key is for the peer link, which role= starts",
        }],
    },
    Key {
        name: "linktest",
        value: Value::Number {
            min: 1,
            max: 4096,
            unit: "MiB",
            set: |c, n| c.linktest_mib = Some(n),
        },
        unset: Unset::Means("none"),
        help: "pair with the peer and move this many MiB primary → backup, checking every \
               byte end to end",
        needs: &[Need {
            any_of: &["role"],
            why: "the link test runs between a primary and a backup",
        }],
    },
    Key {
        name: "peer_timeout",
        value: Value::Number {
            min: 100,
            max: 600_000,
            unit: "milliseconds",
            set: |c, n| c.peer_timeout_ms = n,
        },
        unset: Unset::Value("3000"),
        help: "silence after which the peer counts as lost",
        needs: LINK,
    },
    Key {
        name: "link_loss",
        value: Value::Number {
            min: 0,
            max: 90,
            unit: "percent",
            // At most 90: fits.
            set: |c, n| c.link_loss_percent = n as u8,
        },
        unset: Unset::Value("0"),
        help: "received frames to drop on purpose (testing)",
        needs: LINK,
    },
    Key {
        name: "linkbench",
        value: Value::Words(&[
            ("0", |c| c.linkbench = false),
            ("1", |c| c.linkbench = true),
        ]),
        unset: Unset::Value("0"),
        help: "`1`: after the link test, measure the raw frame rate of the same wire and print \
               the ratio",
        needs: &[Need {
            any_of: &["linktest"],
            why: "it measures the wire after the link test",
        }],
    },
    Key {
        name: "ip",
        value: Value::Text {
            expected: "this host's IPv4 address and subnet prefix, e.g. 10.0.0.1/24",
            set: |c, v| {
                c.ip = Ipv4Cidr::parse(v);
                c.ip.is_some()
            },
        },
        unset: Unset::Means("raw Ethernet"),
        help: "run the peer link over UDP/IPv4 from this address",
        needs: &[
            LINK_NEED,
            Need {
                any_of: &["peer_ip"],
                why: "the UDP/IPv4 link goes to the peer's address, given by peer_ip=",
            },
        ],
    },
    Key {
        name: "peer_ip",
        value: Value::Text {
            expected: "an IPv4 host address, e.g. 10.0.0.2",
            set: |c, v| {
                c.peer_ip = host_address(v);
                c.peer_ip.is_some()
            },
        },
        unset: Unset::Means("none"),
        help: "the peer's IPv4 address",
        needs: UDP,
    },
    Key {
        name: "gateway",
        value: Value::Text {
            expected: "an IPv4 host address, e.g. 10.0.0.254",
            set: |c, v| {
                c.gateway = host_address(v);
                c.gateway.is_some()
            },
        },
        unset: Unset::Means("none"),
        help: "the router towards a peer outside this host's subnet",
        needs: UDP,
    },
    Key {
        name: "epoch_min",
        value: Value::Number {
            min: 1,
            max: 10_000,
            unit: "milliseconds",
            set: |c, n| c.epoch_min_ms = n,
        },
        unset: Unset::Value("10"),
        help: "shortest checkpoint epoch of the pair",
        needs: PAIR,
    },
    Key {
        name: "epoch_max",
        value: Value::Number {
            min: 1,
            max: 10_000,
            unit: "milliseconds",
            set: |c, n| c.epoch_max_ms = n,
        },
        unset: Unset::Value("25"),
        help: "longest checkpoint epoch of the pair (25 ms: 40 epochs/s)",
        needs: PAIR,
    },
    Key {
        name: "digests",
        value: Value::Words(&[("on", |c| c.digests = true), ("off", |c| c.digests = false)]),
        unset: Unset::Value("off"),
        help: "`on`: the pair computes a whole-memory digest per epoch and prints it (tests)",
        needs: PAIR,
    },
    Key {
        name: "ft_freeze",
        value: Value::Text {
            expected: "PHASE@EPOCH: run, stun or send, and an epoch > 0",
            set: |c, v| {
                c.ft_freeze = FreezePoint::parse(v);
                c.ft_freeze.is_some()
            },
        },
        unset: Unset::Means("none"),
        help: "(tests) the primary stops dead in that phase of that epoch (or of the first \
               later epoch that has the phase), for a test to kill it there",
        needs: PAIR,
    },
    Key {
        name: "stun_buffers",
        value: Value::Number {
            min: 0,
            max: 65_536,
            unit: "pages",
            set: |c, n| c.stun_buffers = n,
        },
        unset: Unset::Value("2048"),
        help: "copy-on-write stun buffers on the primary (with none, a write to a page not yet \
               sent sends it first)",
        needs: PAIR,
    },
    Key {
        name: "delta_cache",
        value: Value::Number {
            min: 0,
            max: 262_144,
            unit: "pages",
            set: |c, n| c.delta_cache = n,
        },
        unset: Unset::Value("2048"),
        help: "copies of sent pages the primary keeps, so a page sent again travels as the \
               bytes that changed (0: never deltas)",
        needs: PAIR,
    },
    Key {
        name: "ft_trace",
        value: Value::Words(&[
            ("off", |c| c.ft_trace = false),
            ("on", |c| c.ft_trace = true),
        ]),
        unset: Unset::Value("off"),
        help: "`on`: the primary prints a line per checkpoint (its length, stun time and dirty \
               pages) and per acknowledgement (its bytes), for plots (`scripts/bench`)",
        needs: PAIR,
    },
    Key {
        name: "witness",
        value: Value::Words(&[("off", |c| c.witness = false), ("on", |c| c.witness = true)]),
        unset: Unset::Value("off"),
        help: "`on`: the pair runs its guest only on a side that holds a majority of primary, \
               backup and a witness (`castor-witness`, reached on the peer link's Ethernet \
               segment, or with `ip=` at `witness_ip=`): a side without its peer needs the \
               witness's lease",
        needs: PAIR,
    },
    Key {
        name: "witness_ip",
        value: Value::Text {
            expected: "an IPv4 host address, e.g. 10.0.0.9",
            set: |c, v| {
                c.witness_ip = host_address(v);
                c.witness_ip.is_some()
            },
        },
        unset: Unset::Means("none"),
        help: "the witness's IPv4 address (`castor-witness --udp ADDR:34999`), for a pair whose \
               link runs over UDP/IPv4; reached through `gateway=` when off this host's subnet",
        needs: &[
            Need {
                any_of: &["witness"],
                why: "it says where the witness is, which witness=on asks for",
            },
            Need {
                any_of: &["ip"],
                why: "the witness is reached in UDP/IPv4 from this host's address, given by ip=",
            },
        ],
    },
];

/// The key called `name`, with its place in [`KEYS`].
pub fn find(name: &str) -> Option<(usize, &'static Key)> {
    KEYS.iter().enumerate().find(|(_, k)| k.name == name)
}

impl Key {
    /// Sets `config` from `value`; `false` if the key does not take it.
    pub fn apply(&self, config: &mut Config, value: &str) -> bool {
        match &self.value {
            Value::Words(words) => words
                .iter()
                .find(|(w, _)| *w == value)
                .map(|(_, set)| set(config))
                .is_some(),
            Value::Number { min, max, set, .. } => value
                .parse()
                .ok()
                .filter(|n| (*min..=*max).contains(n))
                .map(|n| set(config, n))
                .is_some(),
            Value::Text { set, .. } => set(config, value),
            Value::SelfTests => SelfTests::parse(value)
                .map(|tests| config.selftests = tests)
                .is_some(),
        }
    }
}

impl Value {
    /// Writes what is accepted; with `code`, each literal value in Markdown backticks.
    pub fn describe(&self, out: &mut impl Write, code: bool) -> fmt::Result {
        let tick = if code { "`" } else { "" };
        match self {
            Value::Words(words) => {
                if words.len() > 2 {
                    out.write_str("one of ")?;
                }
                for (i, (word, _)) in words.iter().enumerate() {
                    let sep = match (i, words.len()) {
                        (0, _) => "",
                        (1, 2) => " or ",
                        _ => ", ",
                    };
                    write!(out, "{sep}{tick}{word}{tick}")?;
                }
                Ok(())
            }
            Value::Number { min, max, unit, .. } => {
                write!(out, "{tick}{min}{tick} to {tick}{max}{tick} {unit}")
            }
            Value::Text { expected, .. } => out.write_str(expected),
            Value::SelfTests => {
                write!(
                    out,
                    "{tick}all{tick}, {tick}none{tick}, or a comma-separated list of "
                )?;
                names(out, SelfTest::ALL.into_iter(), tick)?;
                write!(out, "; {tick}all{tick} leaves out ")?;
                let named_only = SelfTest::ALL
                    .into_iter()
                    .filter(|t| t.selection() != Selection::All);
                names(out, named_only, tick)?;
                out.write_str(", which run only when named")
            }
        }
    }
}

/// Writes the tests' names, comma-separated.
fn names(out: &mut impl Write, tests: impl Iterator<Item = SelfTest>, tick: &str) -> fmt::Result {
    for (i, t) in tests.enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        write!(out, "{sep}{tick}{}{tick}", t.name())?;
    }
    Ok(())
}

/// `value` as an IPv4 host address (not 0.0.0.0, broadcast or multicast).
fn host_address(value: &str) -> Option<Ipv4Addr> {
    Ipv4Addr::parse(value).filter(|a| route::is_host(*a))
}
