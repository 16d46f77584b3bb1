// SPDX-License-Identifier: MIT OR Apache-2.0
//! The pair's first exchange: each side sends its guest configuration and the CPU model it
//! offers guests, and checks the peer's, so a mismatched pair (same role, different guest RAM,
//! kernel, command line or modules, CPUs that could not run the same guest) is refused on both sides with the reason,
//! before any checkpoint flows. Both sides compute the same baseline CPU model from the two
//! HELLOs; the guest, which starts only after the exchange, is offered that model on either
//! host (`castor_ft::pair::cpu_model`).

use alloc::string::{String, ToString};

use castor_ft::link::{Event, Role};
use castor_ft::pair::cpu_model::CpuModel;
use castor_ft::pair::message::{Hello, Message, PAIR_VERSION};

use super::MS;
use crate::arch::x86_64::time;
use crate::config::Config;
use crate::link::peer::PeerLink;
use crate::vmm::cpu_model;
use crate::vmm::launch::GuestFiles;

/// How long to wait for the peer's HELLO once paired.
const HELLO_WAIT: u64 = 30_000 * MS;

/// The digest of the guest a HELLO names: the kernel, its command line and every module with
/// its string, each length-prefixed. Computed before pairing: hashing tens of MiB (a Linux
/// kernel and initramfs) takes long enough, on an emulated host, for a peer waiting on the
/// HELLO to count this side as lost.
pub fn guest_digest(files: &GuestFiles<'_>) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    let mut add = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    add(files.image);
    add(files.cmdline.as_bytes());
    for m in &files.modules {
        add(m.data);
        add(m.args.as_bytes());
    }
    hasher.finalize().into()
}

/// Sends our HELLO (naming the guest by [`guest_digest`]), waits for the peer's and checks
/// it; returns the CPU model the pair's guest is offered.
pub fn exchange(
    link: &mut PeerLink,
    config: &Config,
    ram: u64,
    guest_image: [u8; 32],
) -> Result<CpuModel, String> {
    let ours = Hello {
        version: PAIR_VERSION,
        role: config.role.unwrap_or(Role::Backup),
        epoch_min_ms: config.epoch_min_ms,
        epoch_max_ms: config.epoch_max_ms,
        guest_ram: ram,
        guest_image,
        cpu: cpu_model::this_host(time::tsc_hz()),
    };
    link.link()
        .send(&Message::Hello(alloc::boxed::Box::new(ours)).encode())
        .map_err(|e| alloc::format!("cannot send HELLO: {e:?}"))?;
    let deadline = time::now_ns() + HELLO_WAIT;
    loop {
        match link.next_event(deadline) {
            Some(Event::Delivered(msg)) => {
                return match Message::decode(&msg) {
                    Ok(Message::Hello(theirs)) => ours.check(&theirs).map_err(|e| e.to_string()),
                    Ok(_) => Err("the peer's first message was not a HELLO".into()),
                    Err(e) => Err(e.to_string()),
                };
            }
            Some(Event::PeerLost | Event::PairingFailed(_)) => {
                return Err("the peer went away before its HELLO".into());
            }
            Some(_) => {}
            None => return Err("no HELLO from the peer".into()),
        }
    }
}
