// SPDX-License-Identifier: MIT OR Apache-2.0
//! The fault-tolerant pair (`role=primary|backup` with `guest=module`): two Castor hosts run
//! one guest; the primary checkpoints it every epoch to the backup, which takes over when the
//! primary goes silent. The mechanism and policy are in `castor_ft::pair` (host tested); this
//! module drives them with the real vCPU, nested page tables and peer link.
//!
//! Console contract (integration tests and `scripts/run` rely on it):
//! - `ft: <role> on <nic> over ...`, `ft: paired with session ...` (see `link::connect`);
//! - `ft: pairing refused: <reason>` for a mismatched peer (both sides print it);
//! - `ft: guest CPU: <vendor> <signature>, <phys>-bit addresses, XSAVE <bytes> bytes, <N>
//!   features of this host withheld` once paired: the baseline both hosts offer the guest;
//! - primary: `ft: primary: protecting '<cmdline>' (<MiB> MiB RAM) under <back end>, epochs
//!   <min>-<max> ms, dirty pages from <source>`, released guest output as `[guest] <line>`,
//!   with `digests=on` `ft: epoch <N> sent: <pages> pages, <bytes> bytes, memory digest
//!   <32 hex>` per epoch, a summary `ft: primary: <N> epochs ...` every few seconds, and
//!   `ft: backup lost after <ms> ms of silence (...)`, then
//!   `ft: primary: the guest runs unprotected; waiting for a new backup ...` (re-protection:
//!   `primary::reprotect`; the witness: `witness`, `rejoin`, `primary::majority`);
//! - backup: `ft: backup: applied epoch <N> (the last <K> in <T> us each, ...)` (first and
//!   then every few seconds: how long taking in an epoch's last bytes and applying it took;
//!   `ft: backup: applied epoch 0 (the full copy; ...)` when later epochs came with it),
//!   and on takeover `ft: backup took over at epoch <N> after <ms> ms of silence (memory digest
//!   <32 hex>)`, then `ft: backup: releasing <K> lines the primary may have released as it
//!   died` when there are such lines (the first K guest lines that follow may repeat the
//!   primary's last ones), then the guest's output as `[guest] <line>`;
//! - with `guest_net=nic`: `ft: guest network card <mac> bridged to <nic>` on both (with
//!   `shared`: `..., shared with the peer link`), the
//!   primary's summary counts frames held back, and the backup says `ft: backup: announced
//!   <mac> on <nic>; releasing <F> frames the primary may have sent` on takeover.

mod backup;
mod hello;
mod memory;
mod output;
mod primary;
mod rejoin;
mod stats;
mod witness;

use castor_ft::link::Role;
use castor_ft::pair::cpu_model::CpuModel;

use crate::arch::x86_64::machine::ExitStatus;
use crate::bootinfo::BootInfo;
use crate::config::{Config, GuestNet};
use crate::drivers::net::{self, split};
use crate::kprintln;
use crate::link::connect::connect;
use crate::link::peer::PeerLink;
use crate::vmm::backend::{self, Backend, WithBackend};
use crate::vmm::cpu_model;
use crate::vmm::launch::{GuestFiles, bridge, guest_files, guest_uplink};
use crate::vmm::uplink::Uplink;

const MS: u64 = 1_000_000;
/// How long a host that refused its peer waits for the peer to receive its HELLO.
const HELLO_LINGER: u64 = 10_000 * MS;

/// Runs this host's side of the pair until the guest ends (or, on the backup, until the
/// primary is lost and the guest, taken over, ends).
pub fn run(boot: &BootInfo, config: &Config) -> ExitStatus {
    let Some(files) = guest_files(boot, "ft") else {
        return ExitStatus::Failure;
    };
    let digest = hello::guest_digest(&files);
    let shared = match config.guest_net {
        GuestNet::Shared => match share_link_nic(config.guest_mac) {
            Some(half) => Some(half),
            None => return ExitStatus::Failure,
        },
        _ => None,
    };
    let Some(mut link) = connect(config, "ft") else {
        return ExitStatus::Failure;
    };
    let ram = u64::from(config.guest_ram_mib) << 20;
    let role = config.role.unwrap_or(Role::Backup);
    match hello::exchange(&mut link, config, role, ram, digest) {
        Ok(model) => offer_guest(model),
        Err(why) => {
            kprintln!("ft: pairing refused: {why}");
            // Stay until the peer has our HELLO, so it can say why too.
            let deadline = crate::arch::x86_64::time::now_ns() + HELLO_LINGER;
            while !link.link().all_acked() && crate::arch::x86_64::time::now_ns() < deadline {
                link.pump();
            }
            return ExitStatus::Failure;
        }
    }
    let uplink = match (config.guest_net, shared) {
        (GuestNet::OwnNic, _) => match guest_uplink(config.guest_mac, "ft") {
            Some(uplink) => Some(uplink),
            None => return ExitStatus::Failure,
        },
        (_, Some(half)) => Some(bridge(
            half,
            config.guest_mac,
            "ft",
            ", shared with the peer link",
        )),
        _ => None,
    };
    let pair = Pair {
        link,
        config,
        files,
        ram,
        image: digest,
        uplink,
    };
    match backend::dispatch(pair) {
        Ok(status) => status,
        Err(why) => {
            kprintln!("ft: cannot run guests: {why}");
            ExitStatus::Failure
        }
    }
}

/// `guest_net=shared`: splits the NIC the peer link will use (the first) into the link's half,
/// put back in its place, and the guest's half, returned; `None` after saying so if there is
/// no NIC.
fn share_link_nic(guest_mac: [u8; 6]) -> Option<alloc::boxed::Box<dyn net::Nic>> {
    let Some(nic) = net::take_first() else {
        kprintln!("ft: no usable NIC (virtio-net or e1000) found");
        return None;
    };
    let (link, guest) = split::split(nic, guest_mac);
    net::put_first(link);
    Some(guest)
}

/// Makes the pair's baseline the CPU this host's guest is offered (before it starts), and says
/// what it is.
fn offer_guest(model: CpuModel) {
    if !cpu_model::set_negotiated(model) {
        log::warn!("ft: a guest CPU model was already set; the pair's is not in force");
    }
    let vendor = model
        .vendor
        .map(|b| if b.is_ascii_graphic() { b } else { b'?' });
    kprintln!(
        "ft: guest CPU: {} {:#x}, {}-bit addresses, XSAVE {} bytes, {} features of this host \
         withheld",
        core::str::from_utf8(&vendor).unwrap_or("?"),
        model.signature,
        model.phys_bits,
        model.xsave_size(model.xcr0),
        cpu_model::withheld(
            &model,
            &cpu_model::this_host(crate::arch::x86_64::time::tsc_hz())
        )
    );
}

/// One side of a paired link, with the guest it protects.
struct Pair<'a> {
    link: PeerLink,
    config: &'a Config,
    files: GuestFiles<'a>,
    ram: u64,
    /// The guest's digest in HELLOs ([`hello::guest_digest`]).
    image: [u8; 32],
    /// The host NIC of the guest's network card (`guest_net=nic`).
    uplink: Option<Uplink>,
}

impl WithBackend for Pair<'_> {
    type Output = ExitStatus;

    fn run<B: Backend>(self) -> ExitStatus {
        match self.config.role {
            Some(Role::Primary) => primary::run::<B>(self),
            _ => backup::run::<B>(self),
        }
    }
}
