// SPDX-License-Identifier: MIT OR Apache-2.0
//! The pair's first exchange: each side sends its guest configuration and the CPU model it
//! offers guests, and checks the peer's, so a mismatched pair (same role, different guest RAM,
//! kernel, command line or modules, CPUs that could not run the same guest) is refused on both sides with the reason,
//! before any checkpoint flows. Both sides compute the same baseline CPU model from the two
//! HELLOs; the guest, which starts only after the exchange, is offered that model on either
//! host (`castor_ft::pair::cpu_model`). A primary whose guest runs already (re-protection)
//! sends the model its guest was offered instead, flagged `running`: a new backup must be able
//! to resume exactly that.

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

/// This host's HELLO as `role` for a guest of `ram` bytes named by `guest_image`
/// ([`guest_digest`]): with `running`, this host is a primary whose guest runs already,
/// offered that CPU model.
pub fn ours(
    config: &Config,
    role: Role,
    ram: u64,
    guest_image: [u8; 32],
    running: Option<CpuModel>,
) -> Hello {
    Hello {
        version: PAIR_VERSION,
        role,
        epoch_min_ms: config.epoch_min_ms,
        epoch_max_ms: config.epoch_max_ms,
        guest_ram: ram,
        guest_image,
        cpu: running.unwrap_or_else(|| cpu_model::this_host(time::tsc_hz())),
        running: running.is_some(),
        witness: config.witness,
    }
}

/// Puts `hello` on the link.
pub fn send(link: &mut PeerLink, hello: &Hello) -> Result<(), String> {
    link.link()
        .send(&Message::Hello(alloc::boxed::Box::new(*hello)).encode())
        .map(|_| ())
        .map_err(|e| alloc::format!("cannot send HELLO: {e:?}"))
}

/// Checks the peer's first message, which must be its HELLO, against ours; returns the CPU
/// model the pair's guest is offered.
pub fn answer(ours: &Hello, msg: &[u8]) -> Result<CpuModel, String> {
    match Message::decode(msg) {
        Ok(Message::Hello(theirs)) => ours.check(&theirs).map_err(|e| e.to_string()),
        Ok(_) => Err("the peer's first message was not a HELLO".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Sends our HELLO as `role` ([`ours`], for a guest not yet running here), waits for the
/// peer's and checks it; returns the CPU model the pair's guest is offered.
pub fn exchange(
    link: &mut PeerLink,
    config: &Config,
    role: Role,
    ram: u64,
    guest_image: [u8; 32],
) -> Result<CpuModel, String> {
    let ours = ours(config, role, ram, guest_image, None);
    send(link, &ours)?;
    let deadline = time::now_ns() + HELLO_WAIT;
    loop {
        match link.next_event(deadline) {
            Some(Event::Delivered(msg)) => return answer(&ours, &msg),
            Some(Event::PeerLost | Event::PairingFailed(_)) => {
                return Err("the peer went away before its HELLO".into());
            }
            Some(_) => {}
            None => return Err("no HELLO from the peer".into()),
        }
    }
}
