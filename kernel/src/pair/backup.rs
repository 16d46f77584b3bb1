// SPDX-License-Identifier: MIT OR Apache-2.0
//! The backup host: keeps a copy of the guest from the primary's checkpoints and takes over
//! when the primary goes silent for longer than `peer_timeout=`.
//!
//! Each epoch is staged and applied only when complete and verified
//! ([`castor_ft::pair::backup::Backup`]), then acknowledged. On takeover the guest resumes on
//! a fresh vCPU from the last applied epoch's vCPU and device state (guest time continues from
//! the checkpoint's), after the output the primary may not have released, and this host runs
//! it as a primary that a new backup can join (`primary::run_taken_over`).
//!
//! A backup joining a primary whose guest runs already first gets pre-copy rounds (pages
//! without state, `castor_ft::pair::backup`): it says when it applied the first checkpoint,
//! from which it could resume, and how long the sync took.

use alloc::collections::VecDeque;
use alloc::string::String;

use castor_ft::link::ether::MacAddr;
use castor_ft::link::{Event, MsgId};
use castor_ft::pair::backup::{Backup, BackupError};
use castor_ft::pair::digest::memory_digest;
use castor_ft::pair::message::Message;
use castor_ft::stream::PAGE_SIZE;

use super::memory::BackupRam;
use super::output;
use super::rejoin::{self, Majority};
use super::witness::{WitnessId, WitnessLink};
use super::{MS, Pair};
use crate::arch::x86_64::machine::ExitStatus;
use crate::arch::x86_64::time;
use crate::config::Config;
use crate::kprintln;
use crate::link::peer::PeerLink;
use crate::vmm::backend::Backend;
use crate::vmm::cpu_state::CpuState;
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::launch::guest_memory;
use crate::vmm::run::Guest;
use crate::vmm::uplink::Uplink;
use crate::vmm::vcpu::{GuestStart, Vcpu};
use castor_ft::witness::Want;

/// How often the backup says which epoch it holds.
const REPORT_EVERY: u64 = 5_000 * MS;

/// What ended the standby.
enum Standby {
    /// The primary went silent.
    PrimaryLost,
    /// The guest ended on the primary with this status.
    GuestEnded(u64),
}

/// Stands by as the backup of `pair`, and takes over if the primary is lost.
pub fn run<B: Backend>(pair: Pair<'_>) -> ExitStatus {
    let Pair {
        link,
        config,
        files,
        ram,
        image,
        uplink,
    } = pair;
    let cmdline = files.cmdline;
    // Mapped page by page: after a takeover this host checkpoints the guest to a new backup.
    let Some(mem) = guest_memory::<B>(ram, true, "ft") else {
        return ExitStatus::Failure;
    };
    kprintln!(
        "ft: backup: standing by for '{cmdline}' ({} MiB RAM) under {}",
        ram >> 20,
        B::NAME
    );
    let witness = WitnessLink::new(config.witness, config.key.as_ref(), &image, Want::Hold);
    serve::<B>(link, config, mem, uplink, (image, witness))
}

/// Stands by for the primary `link` is paired with, `mem` holding the guest as the checkpoints
/// leave it, and takes over if the primary is lost and this host has a majority (with a
/// witness: its lease); a primary found again meanwhile (a healed partition) is served anew,
/// from a fresh sync.
pub fn serve<B: Backend>(
    mut link: PeerLink,
    config: &Config,
    mut mem: GuestMemory<B::Format>,
    uplink: Option<Uplink>,
    (image, mut witness): (WitnessId, Option<WitnessLink>),
) -> ExitStatus {
    let pages = mem.size() / PAGE_SIZE as u64;
    loop {
        let mut backup = Backup::new(pages);
        match stand_by(&mut link, &mut backup, &mut mem) {
            Standby::GuestEnded(u64::MAX) => {
                kprintln!("ft: backup: the guest ended on the primary (it stopped); standing down");
                return ExitStatus::Success;
            }
            Standby::GuestEnded(status) => {
                kprintln!(
                    "ft: backup: the guest ended on the primary (status {status}); standing down"
                );
                return ExitStatus::Success;
            }
            Standby::PrimaryLost => {}
        }
        let silent = link.link().peer_silent_for(time::now_ns()).unwrap_or(0);
        // With nothing applied there is nothing to take over (`take_over` says so).
        if backup.last_applied().is_some()
            && let Majority::NewPrimary =
                rejoin::await_majority(&mut link, config, &image, witness.as_mut())
        {
            continue;
        }
        return take_over::<B>(
            backup,
            mem,
            silent,
            uplink,
            (link, config, (image, witness)),
        );
    }
}

/// Applies and acknowledges checkpoints until the primary is lost or the guest ended.
fn stand_by<F: crate::mm::pagetable::Format>(
    link: &mut PeerLink,
    backup: &mut Backup,
    mem: &mut GuestMemory<F>,
) -> Standby {
    let mut last_report = 0;
    let mut refused: Option<String> = None;
    // When the first stream bytes came (a sync's start), and the pre-copy rounds applied.
    let mut sync_start: Option<u64> = None;
    let mut precopied = (0u32, 0usize);
    // Our ACK messages in flight, and whether the primary's link has them. Once it has one
    // and every one before it (it hands messages over in order), the primary has released
    // that epoch's output: it prints before its link confirms the message.
    let mut acks: VecDeque<(MsgId, u64, bool)> = VecDeque::new();
    // Checkpoints applied since the last report, and the time the messages that completed
    // them took to take in (assembling their last bytes, and applying).
    let mut applying = (0u64, 0u64);
    // When the first bytes of the checkpoint being received came, and the sum of the spans
    // from first to last bytes of those applied since the last report.
    let mut first_bytes: Option<u64> = None;
    let mut receiving = 0u64;
    loop {
        let Some(event) = link.next_event(u64::MAX) else {
            continue;
        };
        let msg = match event {
            Event::Delivered(msg) => msg,
            Event::PeerLost | Event::PairingFailed(_) => return Standby::PrimaryLost,
            Event::Acked(id) => {
                if let Some(entry) = acks.iter_mut().find(|(sent, ..)| *sent == id) {
                    entry.2 = true;
                }
                while let Some(&(_, epoch, true)) = acks.front() {
                    acks.pop_front();
                    backup.on_released(epoch);
                }
                continue;
            }
            Event::Paired { .. } => continue,
        };
        match Message::decode(&msg) {
            Ok(Message::Stream(bytes)) => {
                let started = *sync_start.get_or_insert_with(time::now_ns);
                let took_in = time::now_ns();
                let first = *first_bytes.get_or_insert(took_in);
                let result = backup.on_stream(bytes, &mut BackupRam(mem));
                if result
                    .as_ref()
                    .is_ok_and(|a| a.iter().any(|a| a.checkpoint))
                {
                    applying = (applying.0 + 1, applying.1 + (time::now_ns() - took_in));
                    receiving += took_in - first;
                    first_bytes = None;
                }
                for a in result.iter().flatten() {
                    if !a.checkpoint {
                        precopied = (precopied.0 + 1, precopied.1 + a.pages);
                        kprintln!(
                            "ft: backup: applied pre-copy round {} ({} pages)",
                            a.epoch,
                            a.pages
                        );
                    } else if precopied.0 > 0 {
                        kprintln!(
                            "ft: backup: protecting the guest from epoch {}: synced in {} ms \
                             ({} pre-copy rounds, {} pages)",
                            a.epoch,
                            (time::now_ns() - started) / MS,
                            precopied.0,
                            precopied.1
                        );
                        precopied.0 = 0;
                    }
                }
                let applied = result.as_ref().ok().and_then(|a| a.last()).map(|a| a.epoch);
                // The full copy is always reported, also when later epochs completed in the
                // same bytes (small epochs, or a backup that fell behind): the report below is
                // of the last.
                if applied.is_some_and(|e| e > 0)
                    && result
                        .iter()
                        .flatten()
                        .any(|a| a.checkpoint && a.epoch == 0)
                {
                    kprintln!("ft: backup: applied epoch 0 (the full copy; later epochs with it)");
                }
                if let Some(epoch) = applied {
                    match link.link().send(&Message::Ack(epoch).encode()) {
                        Ok(id) => acks.push_back((id, epoch, false)),
                        Err(e) => kprintln!("ft: backup: cannot acknowledge epoch {epoch}: {e:?}"),
                    }
                    let now = time::now_ns();
                    let checkpoint = backup.last_applied() == Some(epoch);
                    if checkpoint && (epoch == 0 || now >= last_report + REPORT_EVERY) {
                        kprintln!(
                            "ft: backup: applied epoch {epoch} (the last {} in {} us each, \
                             from their last bytes to acknowledged, after {} us from their \
                             first bytes to their last)",
                            applying.0,
                            applying.1 / applying.0.max(1) / 1000,
                            receiving / applying.0.max(1) / 1000
                        );
                        last_report = now;
                        applying = (0, 0);
                        receiving = 0;
                    }
                }
                if let Err(e) = result {
                    refuse(&mut refused, backup, &e);
                }
            }
            Ok(Message::Released(epoch)) => backup.on_released(epoch),
            Ok(Message::Ended(status)) => return Standby::GuestEnded(status),
            Ok(Message::Hello(_) | Message::Ack(_)) => {
                kprintln!("ft: backup: ignoring an unexpected message")
            }
            Err(e) => kprintln!("ft: backup: ignoring a bad message: {e}"),
        }
    }
}

/// Reports a refused checkpoint once per kind of refusal.
fn refuse(last: &mut Option<String>, backup: &Backup, e: &BackupError) {
    let why = alloc::format!("{e}");
    if last.as_deref() != Some(why.as_str()) {
        kprintln!(
            "ft: backup: {why}; keeping epoch {}",
            backup
                .last_applied()
                .map_or(String::from("none"), |e| alloc::format!("{e}"))
        );
        *last = Some(why);
    }
}

/// Resumes the guest from the last applied epoch and runs it to its end, as a primary a new
/// backup can join (over `link`, paired anew).
fn take_over<B: Backend>(
    backup: Backup,
    mem: GuestMemory<B::Format>,
    silent_ns: u64,
    mut uplink: Option<Uplink>,
    (link, config, lease): (PeerLink, &Config, (WitnessId, Option<WitnessLink>)),
) -> ExitStatus {
    let digests = config.digests;
    let Some(t) = backup.takeover() else {
        kprintln!(
            "ft: backup: the primary was lost before its first checkpoint: nothing to take over"
        );
        return ExitStatus::Failure;
    };
    let digest = if digests {
        let pages = mem.size() / PAGE_SIZE as u64;
        let digest = memory_digest((0..pages).filter_map(|gfn| mem.page(gfn).map(|p| (gfn, p))));
        alloc::format!(" (memory digest {digest:032x})")
    } else {
        String::new()
    };
    kprintln!(
        "ft: backup took over at epoch {} after {} ms of silence{digest}",
        t.epoch,
        silent_ns / MS
    );
    // Output of applied epochs the primary is not known to have released. It may have printed
    // some of it in the instant before it died (after printing, before its link confirmed the
    // acknowledgement): say so, so whoever reads the console can tell such lines from repeats.
    // Frames go out after the guest's MAC is announced here, so the network delivers what
    // answers them to this host; a repeated frame is harmless, a lost one is not.
    let pending = output::count(&t.unreleased_output);
    if pending.lines > 0 {
        kprintln!(
            "ft: backup: releasing {} lines the primary may have released as it died",
            pending.lines
        );
    }
    if let Some(uplink) = uplink.as_mut() {
        // Three times: on a lossy network one may not arrive (the guest's own frames teach
        // the bridges too, later).
        for _ in 0..3 {
            uplink.announce();
        }
        kprintln!(
            "ft: backup: announced {} on {}; releasing {} frames the primary may have sent",
            MacAddr(uplink.guest_mac()),
            uplink.nic_name(),
            pending.frames
        );
    }
    output::release(&t.unreleased_output, uplink.as_mut());
    let state = match CpuState::from_bytes(&t.vcpu) {
        Ok(s) => s,
        Err(e) => {
            kprintln!("ft: backup: the checkpoint's vCPU state is unusable: {e:?}");
            return ExitStatus::Failure;
        }
    };
    let mut vcpu = match B::new_vcpu(0, &mem, GuestStart::Protected32 { eip: 0 }) {
        Ok(v) => v,
        Err(e) => {
            kprintln!("ft: backup: cannot make a vCPU: {e}");
            return ExitStatus::Failure;
        }
    };
    if let Err(e) = vcpu.restore_state(&state) {
        kprintln!("ft: backup: cannot load the checkpoint's vCPU state: {e}");
        return ExitStatus::Failure;
    }
    let guest = match Guest::resumed(mem, &t.devices) {
        Ok(guest) => guest,
        Err(e) => {
            kprintln!("ft: backup: cannot restore the checkpoint's devices: {e:?}");
            return ExitStatus::Failure;
        }
    };
    super::primary::run_taken_over::<B>(link, config, vcpu, guest, uplink, lease)
}
