// SPDX-License-Identifier: MIT OR Apache-2.0
//! Opening the peer link from the command line: the first NIC, `role=`, `key=`,
//! `peer_timeout=`, `link_loss=`, and raw Ethernet or UDP/IPv4 (`ip=`, `peer_ip=`,
//! `gateway=`, and `witness_ip=` for the witness's messages); then waiting for the peer to
//! pair. Shared by the link test and the
//! fault-tolerant pair, which print its messages under their own prefix (`link:`, `ft:`).
//!
//! Console lines: `<who>: <role> on <nic> over <transport>, ..., waiting for the peer`,
//! `<who>: paired with session <id>, frames under <cipher>`, `<who>: pairing failed: <reason>`,
//! `<who>: no peer answered within <s> s`, and the configuration errors.

use alloc::string::String;

use castor_ft::link::route::{Ipv4Route, LINK_UDP_PORT};
use castor_ft::link::{Event, LinkConfig};
use castor_ft::witness::WITNESS_UDP_PORT;

use super::peer::PeerLink;
use crate::arch::x86_64::time;
use crate::config::Config;
use crate::drivers::net;
use crate::kprintln;

const MS: u64 = 1_000_000;
/// How long to wait for the peer to pair.
const PAIRING_WAIT: u64 = 120_000 * MS;

/// The UDP/IPv4 route from `ip=`, `peer_ip=` and `gateway=`, `None` for raw Ethernet.
fn udp_route(config: &Config) -> Result<Option<Ipv4Route>, String> {
    match (config.ip, config.peer_ip) {
        (Some(local), Some(peer)) => Ipv4Route::new(local, peer, config.gateway)
            .map(Some)
            .map_err(|e| alloc::format!("no route to peer_ip={peer} from ip={local}: {e}")),
        (None, None) if config.gateway.is_none() => Ok(None),
        _ => Err("ip=, peer_ip= (and gateway=) go together: give both or neither".into()),
    }
}

/// Opens the link on the first NIC and waits until the peer pairs; `None` (after saying why
/// under `who`) if it cannot. `role=` and `key=` must be set.
pub fn connect(config: &Config, who: &str) -> Option<PeerLink> {
    let (Some(role), Some(key)) = (config.role, config.key.as_ref()) else {
        kprintln!("{who}: needs role= and key=");
        return None;
    };
    let Some(nic) = net::take_first() else {
        kprintln!("{who}: no usable NIC (virtio-net or e1000) found");
        return None;
    };
    let route = match udp_route(config) {
        Ok(route) => route,
        Err(why) => {
            kprintln!("{who}: {why}");
            return None;
        }
    };
    let link_config = LinkConfig {
        peer_timeout: u64::from(config.peer_timeout_ms) * MS,
        keystream: super::chacha::for_links(),
        aes_gcm: super::aes_gcm::for_links(),
        ..match route {
            Some(_) => LinkConfig::for_udp(),
            None => LinkConfig::default(),
        }
    };
    let mut peer = match PeerLink::new(nic, role, key, link_config) {
        Ok(peer) => peer,
        Err(e) => {
            kprintln!("{who}: bad link configuration: {e:?}");
            return None;
        }
    };
    peer.inject_loss(config.link_loss_percent);
    let witness = match (route, config.witness_ip) {
        (Some(r), Some(ip)) => match Ipv4Route::new(r.local, ip, config.gateway) {
            Ok(w) => Some(w),
            Err(e) => {
                kprintln!(
                    "{who}: no route to witness_ip={ip} from ip={}: {e}",
                    r.local
                );
                return None;
            }
        },
        _ => None,
    };
    let transport = match route {
        Some(r) => {
            peer.use_udp(r, witness);
            let mut t = alloc::format!(
                "UDP {}:{LINK_UDP_PORT} -> {} (next hop {})",
                r.local,
                r.peer,
                r.next_hop
            );
            if let Some(w) = witness {
                t += &alloc::format!(
                    ", witness at {}:{WITNESS_UDP_PORT} (next hop {})",
                    w.peer,
                    w.next_hop
                );
            }
            t
        }
        None => "raw Ethernet".into(),
    };
    kprintln!(
        "{who}: {role} on {} over {transport}, dropping {}% of received frames, waiting for the peer",
        peer.nic_name(),
        config.link_loss_percent
    );
    match peer.next_event(time::now_ns() + PAIRING_WAIT) {
        Some(Event::Paired { peer_session }) => {
            kprintln!(
                "{who}: paired with session {peer_session:#018x}, frames under {}",
                peer.link().cipher().unwrap_or("?")
            );
            Some(peer)
        }
        Some(Event::PairingFailed(why)) => {
            kprintln!("{who}: pairing failed: {why}");
            // Stay a little so the peer hears enough HELLOs to reach its own verdict.
            let hellos = link_config.hello_interval * u64::from(link_config.max_bad_hellos + 2);
            peer.linger(hellos);
            None
        }
        Some(other) => {
            kprintln!("{who}: unexpected {other:?} while pairing");
            None
        }
        None => {
            kprintln!(
                "{who}: no peer answered within {} s",
                PAIRING_WAIT / 1_000_000_000
            );
            None
        }
    }
}
