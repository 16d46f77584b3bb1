//! `castor-run --guest-net CIDR`: a bridge in the machine's own network namespace with the
//! address CIDR and one tap per host, so the protected guest's network card (`guest_net=nic`)
//! is reachable from this machine (`nc`, `curl` to the address the guest configures in that
//! subnet). Creating interfaces needs root (CAP_NET_ADMIN); everything is deleted again when
//! the [`HostBridge`] is dropped.

use crate::error::{Context, Error, Result};
use crate::pair::{GuestNetwork, Nic};
use std::process::Command;

/// A bridge and two taps made for one run.
pub struct HostBridge {
    bridge: String,
    taps: [String; 2],
}

/// Runs `ip ARGS`, failing with its message.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context(format!("running ip {}", args.join(" ")))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(Error::new(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// Whether `cidr` is an IPv4 address with a prefix length, e.g. `10.0.2.1/24`.
pub fn is_cidr(cidr: &str) -> bool {
    let Some((addr, prefix)) = cidr.split_once('/') else {
        return false;
    };
    addr.parse::<std::net::Ipv4Addr>().is_ok()
        && prefix.parse::<u8>().is_ok_and(|p| (1..=30).contains(&p))
        && !prefix.starts_with('+')
}

impl HostBridge {
    /// Creates the bridge `castorbr<pid>` with address `cidr` and the taps `castor<pid>p` and
    /// `castor<pid>b`, all up.
    pub fn new(cidr: &str) -> Result<HostBridge> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Error::new(
                "--guest-net makes a bridge and two taps on this machine: run as root",
            ));
        }
        let id = std::process::id() % 100_000;
        let made = HostBridge {
            bridge: format!("castorbr{id}"),
            taps: [format!("castor{id}p"), format!("castor{id}b")],
        };
        ip(&["link", "add", &made.bridge, "type", "bridge"])?;
        // From here on, dropping `made` deletes what exists.
        ip(&["addr", "add", cidr, "dev", &made.bridge])?;
        ip(&["link", "set", &made.bridge, "up"])?;
        for tap in &made.taps {
            ip(&["tuntap", "add", "dev", tap, "mode", "tap"])?;
            ip(&["link", "set", tap, "master", &made.bridge, "up"])?;
        }
        Ok(made)
    }

    /// The bridge's name.
    pub fn name(&self) -> &str {
        &self.bridge
    }

    /// The pair's guest network on these taps, through QEMU NICs of model `nic`.
    pub fn guest_network(&self, nic: Nic) -> GuestNetwork {
        GuestNetwork {
            netns: None,
            taps: self.taps.clone(),
            nic,
            shared: false,
        }
    }
}

impl Drop for HostBridge {
    fn drop(&mut self) {
        for name in self.taps.iter().chain([&self.bridge]) {
            let _ = ip(&["link", "del", name]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_checked() {
        assert!(is_cidr("10.0.2.1/24"));
        for bad in [
            "10.0.2.1",
            "10.0.2/24",
            "10.0.2.1/0",
            "10.0.2.1/31",
            "x/24",
            "10.0.2.1/+8",
        ] {
            assert!(!is_cidr(bad), "{bad}");
        }
    }
}
