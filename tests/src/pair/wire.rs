//! The wire between a pair's hosts (see [`super`] for the layouts): QEMU netdevs and NICs,
//! Bochs' `socket` back end, `bxhub`, and the private network namespace of pairs with a Bochs
//! host.

use super::{HostEmulator, Role};
use crate::Emulator;
use crate::bochs::Bochs;
use crate::error::{Context, Error, Result};
use crate::netns::NetNamespace;
use crate::process::Process;
use crate::qemu::Qemu;
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;

/// The NIC model of the QEMU hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nic {
    /// `virtio-net-pci` (virtio 1.x).
    VirtioNet,
    /// `e1000` (82540EM).
    E1000,
}

impl Nic {
    /// QEMU's device name.
    pub fn qemu_device(self) -> &'static str {
        match self {
            Nic::VirtioNet => "virtio-net-pci",
            Nic::E1000 => "e1000",
        }
    }

    /// QEMU arguments adding this NIC with `mac` on `netdev` (which must have `id=n0`).
    pub fn qemu_args(self, netdev: &str, mac: &str) -> [String; 4] {
        [
            "-netdev".into(),
            netdev.into(),
            "-device".into(),
            format!("{},netdev=n0,mac={mac}", self.qemu_device()),
        ]
    }
}

/// A QEMU `-netdev stream` (TCP on 127.0.0.1 `port`), listening if `server`.
pub fn stream_netdev(port: u16, server: bool) -> String {
    let server = if server { "on" } else { "off" };
    format!("stream,id=n0,server={server},addr.type=inet,addr.host=127.0.0.1,addr.port={port}")
}

/// A QEMU `-netdev dgram`: one raw frame per UDP datagram from 127.0.0.1 port `local` (QEMU's)
/// to 127.0.0.1 port `remote`.
pub fn dgram_netdev(local: u16, remote: u16) -> String {
    format!(
        "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port={local},\
         remote.type=inet,remote.host=127.0.0.1,remote.port={remote}"
    )
}

/// A free TCP port on 127.0.0.1.
pub fn free_tcp_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr().context("its address")?.port())
}

/// Where the Bochs hosts' `socket` back ends listen (primary; the backup two above) inside
/// the pair's network namespace; `bxhub` takes the ports one above each.
const BOCHS_BASE_PORT: u16 = 40000;

/// How the hosts' NICs meet.
enum Link {
    /// QEMU ↔ QEMU over TCP on this port.
    Stream(u16),
    /// QEMU ↔ QEMU over UDP: `(local, remote)` per role.
    Dgram([(u16, u16); 2]),
    /// A Bochs host is involved: fixed ports inside the pair's network namespace; `hub`: both
    /// are Bochs hosts, joined by `bxhub`, otherwise Bochs listens at the base port and QEMU
    /// one above.
    Namespace {
        /// Two Bochs hosts and a `bxhub`.
        hub: bool,
    },
}

/// The wire set up for one pair, with what must outlive the hosts.
pub(super) struct Wire {
    link: Link,
    /// The private network namespace of a pair with a Bochs host.
    pub(super) netns: Option<Arc<NetNamespace>>,
    /// `bxhub`, joining two Bochs hosts.
    pub(super) hub: Option<Process>,
}

impl Wire {
    /// Sets up the wire for hosts running `emulators` (primary, backup); `dgram`: the UDP
    /// ports of two QEMU hosts instead of a stream.
    pub(super) fn set_up(
        emulators: [HostEmulator; 2],
        dgram: Option<[(u16, u16); 2]>,
    ) -> Result<Wire> {
        if emulators.contains(&HostEmulator::Bochs) && dgram.is_some() {
            return Err(Error::new(
                "a pair with a Bochs host cannot use dgram ports",
            ));
        }
        let bochs = emulators
            .iter()
            .filter(|e| **e == HostEmulator::Bochs)
            .count();
        if bochs == 0 {
            let link = match dgram {
                Some(ports) => Link::Dgram(ports),
                None => Link::Stream(free_tcp_port()?),
            };
            return Ok(Wire {
                link,
                netns: None,
                hub: None,
            });
        }
        let netns = Arc::new(NetNamespace::new()?);
        let hub = match bochs {
            2 => {
                let mut hub = netns.command("bxhub");
                hub.args(["-ports=2", &format!("-base={BOCHS_BASE_PORT}")])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                Some(Process::spawn(hub, false).context("starting bxhub (package bochs)")?)
            }
            _ => None,
        };
        Ok(Wire {
            link: Link::Namespace { hub: hub.is_some() },
            netns: Some(netns),
            hub,
        })
    }

    /// Whether the primary's QEMU listens for the backup's (which must then start later).
    pub(super) fn primary_listens(&self) -> bool {
        matches!(self.link, Link::Stream(_))
    }

    /// The emulator of `role`'s host, running `emulator`, with its NIC (MAC `mac`) on this
    /// wire (QEMU hosts with `nic`, Bochs hosts with an e1000).
    pub(super) fn emulator(
        &self,
        role: Role,
        emulator: HostEmulator,
        nic: Nic,
        mac: &str,
    ) -> Emulator {
        match emulator {
            HostEmulator::Bochs => {
                let port = match self.link {
                    Link::Namespace { hub: true } => BOCHS_BASE_PORT + 2 * role.index() as u16,
                    _ => BOCHS_BASE_PORT,
                };
                // The port as a bare number: Bochs 2.7 reads the port of a `host:port` form
                // from freed memory.
                let e1000 = format!("e1000: enabled=1, mac={mac}, ethmod=socket, ethdev={port}");
                let slot = "pci: enabled=1, chipset=i440fx, slot1=e1000".to_string();
                Emulator::Bochs(Bochs::default().config([slot, e1000]))
            }
            HostEmulator::Qemu => {
                let netdev = match self.link {
                    Link::Stream(port) => stream_netdev(port, role == Role::Primary),
                    Link::Dgram(ports) => {
                        let (local, remote) = ports[role.index()];
                        dgram_netdev(local, remote)
                    }
                    // Mixed: the Bochs host is the only other one, at the base port.
                    Link::Namespace { .. } => dgram_netdev(BOCHS_BASE_PORT + 1, BOCHS_BASE_PORT),
                };
                Emulator::Qemu(Qemu::kernel().args(nic.qemu_args(&netdev, mac)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netdevs_and_nics() {
        assert_eq!(
            stream_netdev(4000, true),
            "stream,id=n0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=4000"
        );
        assert!(dgram_netdev(1, 2).contains("local.port=1,remote.type=inet"));
        assert_eq!(
            Nic::E1000.qemu_args("user,id=n0", "m")[2..],
            ["-device", "e1000,netdev=n0,mac=m"]
        );
    }

    #[test]
    fn hosts_get_their_end_of_the_wire() {
        let stream = Wire {
            link: Link::Stream(4000),
            netns: None,
            hub: None,
        };
        let qemu_args = |wire: &Wire, role| match wire.emulator(
            role,
            HostEmulator::Qemu,
            Nic::E1000,
            role.mac(),
        ) {
            Emulator::Qemu(q) => q.extra_args.join(" "),
            other => panic!("{other:?}"),
        };
        assert!(stream.primary_listens());
        assert!(qemu_args(&stream, Role::Primary).contains("server=on"));
        assert!(qemu_args(&stream, Role::Backup).contains("server=off"));
        assert!(
            qemu_args(&stream, Role::Backup)
                .ends_with("-device e1000,netdev=n0,mac=52:54:00:00:00:02")
        );
        let bochs_rc = |wire: &Wire, role| match wire.emulator(
            role,
            HostEmulator::Bochs,
            Nic::VirtioNet,
            role.mac(),
        ) {
            Emulator::Bochs(b) => b.extra_config.join("\n"),
            other => panic!("{other:?}"),
        };
        let hub = Wire {
            link: Link::Namespace { hub: true },
            netns: None,
            hub: None,
        };
        assert!(!hub.primary_listens());
        assert!(
            bochs_rc(&hub, Role::Backup)
                .ends_with("mac=52:54:00:00:00:02, ethmod=socket, ethdev=40002")
        );
        assert!(bochs_rc(&hub, Role::Primary).contains("slot1=e1000"));
        let mixed = Wire {
            link: Link::Namespace { hub: false },
            netns: None,
            hub: None,
        };
        assert!(bochs_rc(&mixed, Role::Backup).ends_with("ethdev=40000"));
        let qemu = qemu_args(&mixed, Role::Primary);
        assert!(
            qemu.contains("local.port=40001,") && qemu.contains("remote.port=40000"),
            "{qemu}"
        );
    }
}
