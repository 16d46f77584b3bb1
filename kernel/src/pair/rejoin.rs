// SPDX-License-Identifier: MIT OR Apache-2.0
//! A backup without its primary, and a primary without its majority: who may run the guest,
//! and finding the host that does.
//!
//! - A backup that lost its primary takes over only with a majority: at once without a
//!   witness (the pair has none to ask), otherwise once the witness granted it the lease,
//!   which it does only after the primary's lease expired ([`await_majority`]). Until then it
//!   says why it waits, and listens on a fresh link: a running primary that pairs with it
//!   meanwhile (the partition healed; it kept the guest) gets it as a new backup, synced anew.
//! - A primary that lost its majority has stopped its guest; it waits for the host that runs
//!   the guest now and joins it as a new backup, discarding its own copy
//!   ([`pair_as_backup`]).
//!
//! Console lines: `ft: backup: the primary is lost, but it holds the witness's lease (<ms> ms
//! left); not taking over`, `ft: backup: the witness does not answer; the primary is lost, and
//! this host does not take over without a majority`, `ft: backup: the witness granted this
//! host the lease`,
//! `ft: backup: paired with a running primary; standing by for it from a fresh sync`.

use castor_ft::link::{Event, Role};
use castor_ft::witness::{LeaseState, Want};

use super::MS;
use super::hello;
use super::witness::{WitnessId, WitnessLink};
use crate::config::Config;
use crate::kprintln;
use crate::link::peer::PeerLink;

/// How the wait of a backup without its primary ended.
pub enum Majority {
    /// This host may take the guest over.
    Granted,
    /// A running primary paired with this host: stand by for it.
    NewPrimary,
}

/// Waits until this backup, which lost its primary, may take over (see the module docs), or a
/// running primary pairs with it.
pub fn await_majority(
    link: &mut PeerLink,
    config: &Config,
    image: &WitnessId,
    witness: Option<&mut WitnessLink>,
) -> Majority {
    let Some(witness) = witness else {
        return Majority::Granted;
    };
    witness.want(Want::Hold);
    link.restart_as(Role::Backup);
    // Whether we said the primary holds the lease (until the witness says otherwise).
    let mut said_held = false;
    loop {
        witness.turn(
            link,
            "backup",
            "the primary is lost, and this host does not take over without a majority",
        );
        if witness.holds() {
            kprintln!("ft: backup: the witness granted this host the lease");
            return Majority::Granted;
        }
        let held = match witness.state() {
            LeaseState::Elsewhere {
                holder,
                remaining_ms,
                ..
            } if holder != 0 => Some(remaining_ms),
            _ => None,
        };
        if let (Some(left), false) = (held, said_held) {
            kprintln!(
                "ft: backup: the primary is lost, but it holds the witness's lease ({left} ms \
                 left); not taking over"
            );
        }
        said_held = held.is_some();
        if pair_turn(link, config, image) {
            return Majority::NewPrimary;
        }
    }
}

/// A deposed primary: waits (asking the witness only who holds the lease) until the host that
/// runs the guest pairs with it as its new backup.
pub fn pair_as_backup(
    link: &mut PeerLink,
    config: &Config,
    image: &WitnessId,
    mut witness: Option<&mut WitnessLink>,
) {
    link.restart_as(Role::Backup);
    if let Some(w) = witness.as_deref_mut() {
        w.want(Want::Query);
    }
    loop {
        if let Some(w) = witness.as_deref_mut() {
            w.turn(link, "backup", "waiting for the host that runs the guest");
        }
        if pair_turn(link, config, image) {
            return;
        }
    }
}

/// One turn of a backup's link waiting to pair: true once a primary paired and its HELLO
/// agreed with ours (then the primary streams its checkpoints).
fn pair_turn(link: &mut PeerLink, config: &Config, image: &WitnessId) -> bool {
    link.pump();
    match link.link().poll_event() {
        Some(Event::Paired { peer_session }) => {
            kprintln!(
                "ft: backup: paired with session {peer_session:#018x}, frames under {}",
                link.link().cipher().unwrap_or("?")
            );
            let ram = u64::from(config.guest_ram_mib) << 20;
            match hello::exchange(link, config, Role::Backup, ram, *image) {
                // The guest runs already, offered the model this host agreed to before.
                Ok(_) => {
                    kprintln!(
                        "ft: backup: paired with a running primary; standing by for it from a \
                         fresh sync"
                    );
                    true
                }
                Err(why) => {
                    kprintln!("ft: pairing refused: {why}");
                    link.linger(2_000 * MS);
                    link.restart_as(Role::Backup);
                    false
                }
            }
        }
        Some(Event::PairingFailed(_) | Event::PeerLost) => {
            link.restart_as(Role::Backup);
            false
        }
        _ => false,
    }
}
