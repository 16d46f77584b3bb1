// SPDX-License-Identifier: MIT OR Apache-2.0
//! The primary host: runs the guest and checkpoints it every epoch.
//!
//! The guest's CPU runs the guest and, when an epoch is due, stuns it (it is stopped already:
//! we are in its exit): it harvests the dirty set (PML on VT-x, the nested table walk
//! otherwise), captures vCPU and device state, and hands them to
//! [`castor_ft::pair::primary::Primary`], which copies hot pages and write-protects cold ones;
//! after the nested TLB flush the guest runs on. The rest, the peer link and the lazy sender
//! streaming the epoch's pages, is the [`pipeline`]: on a host with a second CPU it runs there,
//! beside the guest, and the guest's CPU pays only for the stun and copy-on-write faults; on a
//! host with one CPU the guest's CPU runs its turns between guest exits (the host LAPIC timer
//! at 1 kHz makes sure there are some). Guest output is held until the backup acknowledges its
//! epoch.
//!
//! Without a backup (it was lost, or this host took the guest over as a backup) the guest runs
//! unprotected and the host waits for a new backup to join ([`reprotect`]); the pipeline runs
//! on the guest's CPU until the guest is protected again.

mod majority;
mod pipeline;
mod reprotect;
mod stun;

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use castor_ft::epoch::items::{Channel, MAX_ITEM_LEN, item};
use castor_ft::epoch::policy::EpochPolicy;
use castor_ft::link::Role;
use castor_ft::pair::message::Message;
use castor_ft::pair::primary::{
    DirtySource, FaultOutcome, Primary, PrimaryConfig, StaleTranslations,
};
use castor_ft::stream::{MAX_DEVICE_STATE_LEN, PAGE_SIZE};

use self::pipeline::{Pipe, Shared, Wire};
use self::reprotect::Rejoin;
use super::memory::{PrimaryRam, SharedRam};
use super::output;
use super::stats::{NetCounts, Stats};
use super::witness::{WitnessId, WitnessLink};
use super::{MS, Pair};
use crate::arch::x86_64::machine::ExitStatus;
use crate::arch::x86_64::{apic, instr, time};
use crate::config::{Config, FreezePhase};
use crate::kprintln;
use crate::link::peer::PeerLink;
use crate::mm::pagetable::Format;
use crate::vmm::backend::Backend;
use crate::vmm::guest_mem::GuestMemory;
use crate::vmm::launch::{boot_guest, guest_memory};
use crate::vmm::nic_io::NetHost;
use crate::vmm::run::{self, Guest, GuestEnd, Step};
use crate::vmm::uplink::Uplink;
use crate::vmm::vcpu::{InterruptSource, Vcpu};
use castor_ft::witness::Want;

/// How often, at most, the pair's work runs between guest exits (on the guest's CPU).
const SERVICE_EVERY: u64 = 500_000;
/// How often it runs while it has nothing to do ([`Host::quiet`]): the checks cost the guest
/// a few thousand instructions at each host tick otherwise.
const SERVICE_QUIET_EVERY: u64 = 2_000_000;
/// How long the primary waits for the last acknowledgement when the guest has ended.
const FINAL_ACK_WAIT: u64 = 10_000 * MS;
/// Most checkpoint stream bytes encoded and not yet taken by the link before a guest write
/// waits. The sender keeps its own backlog far below; pages sent first on write faults (no
/// stun buffer free) bypass it, and a guest writing faster than the link carries would
/// otherwise fill the heap with them.
const STREAM_BACKLOG_CAP: usize = 1 << 20;

/// Runs the guest as the primary of `pair`.
pub fn run<B: Backend>(pair: Pair<'_>) -> ExitStatus {
    let Pair {
        link,
        config,
        files,
        ram,
        image,
        uplink,
    } = pair;
    let Some(mem) = guest_memory::<B>(ram, true, "ft") else {
        return ExitStatus::Failure;
    };
    let nic = uplink.as_ref().map(Uplink::guest_mac);
    let Some((vcpu, guest)) = boot_guest::<B>(mem, &files, nic, "ft") else {
        return ExitStatus::Failure;
    };
    let witness = WitnessLink::new(config.witness, config.key.as_ref(), &image, Want::Hold);
    let Some(host) = Host::<B>::new(link, config, vcpu, guest, uplink, (image, witness)) else {
        return ExitStatus::Failure;
    };
    kprintln!(
        "ft: primary: protecting '{}' ({} MiB RAM) under {}, epochs {}-{} ms, dirty \
         pages from {}",
        files.cmdline,
        ram >> 20,
        B::NAME,
        config.epoch_min_ms,
        config.epoch_max_ms,
        host.dirty_source.name()
    );
    host.run_protected()
}

/// Runs a guest this host took over as its backup, unprotected, as the primary a new backup
/// can join ([`reprotect`]); with a witness, this host holds its lease.
pub fn run_taken_over<B: Backend>(
    mut link: PeerLink,
    config: &Config,
    vcpu: B::Vcpu,
    guest: Guest<B::Format>,
    uplink: Option<Uplink>,
    lease: (WitnessId, Option<WitnessLink>),
) -> ExitStatus {
    link.restart_as(Role::Primary);
    let Some(mut host) = Host::<B>::new(link, config, vcpu, guest, uplink, lease) else {
        return ExitStatus::Failure;
    };
    host.await_backup();
    host.start()
}

impl<B: Backend> Host<'_, B> {
    /// The primary's loop state for a guest ready to run, protected (the caller stuns first)
    /// or not; `None` after saying why it cannot be. On the heap, as is the [`Primary`] in
    /// it: together they are larger than a quarter of the kernel's stack. The pipeline's CPU
    /// works on it where it lies.
    fn new<'c>(
        link: PeerLink,
        config: &'c Config,
        mut vcpu: B::Vcpu,
        guest: Guest<B::Format>,
        uplink: Option<Uplink>,
        (image, witness): (WitnessId, Option<WitnessLink>),
    ) -> Option<alloc::boxed::Box<Host<'c, B>>> {
        let ram = guest.mem.size();
        let log = vcpu.enable_dirty_log();
        let dirty_source = DirtySource::choose(B::nested_dirty_flags(), log);
        let min = u64::from(config.epoch_min_ms) * MS;
        let max = u64::from(config.epoch_max_ms) * MS;
        let policy = EpochPolicy::new(min, max)
            .map_err(|e| kprintln!("ft: {e}"))
            .ok()?;
        let primary_config = PrimaryConfig {
            ram_pages: ram / PAGE_SIZE as u64,
            stun_buffers: config.stun_buffers as usize,
            delta_cache: config.delta_cache as usize,
            hot_threshold: 3,
            output_capacity: MAX_DEVICE_STATE_LEN,
            digests: config.digests,
            session: u128::from(instr::rdtsc()),
            track_writes: dirty_source.tracks_writes(),
            clock: time::now_ns,
        };
        let primary = Primary::new(&primary_config)
            .map(alloc::boxed::Box::new)
            .map_err(|e| kprintln!("ft: {e}"))
            .ok()?;
        let shared = Shared {
            primary,
            stats: Stats::new(config.ft_trace),
            ram: SharedRam::of(&guest.mem),
            commit_waits: false,
            encoded_at: None,
        };
        let wire = Wire {
            link,
            witness,
            pending: None,
        };
        Some(alloc::boxed::Box::new(Host {
            config,
            image,
            deposed: None,
            primary_config,
            rejoin: Rejoin::Off,
            vcpu,
            guest,
            policy,
            epoch_len: min,
            epoch_start: time::now_ns(),
            dirty: Vec::new(),
            dirty_source,
            out: Vec::new(),
            outbox: Vec::new(),
            net: NetCounts::default(),
            protected: false,
            stale: StaleTranslations::default(),
            dma_dirty: Vec::new(),
            sort_bits: Vec::new(),
            epoch_min: min,
            sent_first: false,
            pipe: Pipe::new(wire, shared, uplink, config),
        }))
    }

    /// Runs the guest protected from its start: the first checkpoint (the full copy), then
    /// the loop.
    fn run_protected(mut self: alloc::boxed::Box<Self>) -> ExitStatus {
        self.protected = true;
        self.stun();
        self.start()
    }

    /// Runs the guest to its end with the host timer ticking; a host deposed on the way (no
    /// majority) becomes a backup of whoever runs the guest now.
    #[allow(
        clippy::boxed_local,
        reason = "on the heap to spare the kernel stack (see new)"
    )]
    fn start(mut self: alloc::boxed::Box<Self>) -> ExitStatus {
        apic::start_host_tick();
        let status = self.run();
        // Before anything moves or drops the pipe its CPU works on.
        self.pipe.retire();
        apic::timer_stop();
        match status {
            Ok(status) => status,
            Err(why) => (*self).rejoin_as_backup(&why),
        }
    }
}

/// Everything the primary's loop works on.
struct Host<'c, B: Backend> {
    config: &'c Config,
    /// The guest's digest: the pair's name in HELLOs and at the witness.
    image: WitnessId,
    /// Why this host lost its majority, once it has: it stops its guest.
    deposed: Option<alloc::string::String>,
    /// What a new [`Primary`] is made with (re-protection; the session id is made anew).
    primary_config: PrimaryConfig,
    /// Where re-protection stands.
    rejoin: Rejoin,
    vcpu: B::Vcpu,
    guest: Guest<B::Format>,
    policy: EpochPolicy,
    epoch_len: u64,
    epoch_start: u64,
    dirty: Vec<u64>,
    /// Where the dirty set comes from.
    dirty_source: DirtySource,
    /// Guest console lines not yet held or printed.
    out: Vec<alloc::string::String>,
    /// The running epoch's output (console lines and frames, as output items), held on the
    /// guest's CPU until its stun moves it into the primary: no lock for it.
    outbox: Vec<u8>,
    /// The guest card's traffic since the last stun, added to the statistics there.
    net: NetCounts,
    /// False once the backup is lost.
    protected: bool,
    /// Pages that faulted spuriously since the last nested TLB flush.
    stale: StaleTranslations,
    /// Guest pages the card wrote since the last stun (host writes leave no dirty flag).
    dma_dirty: Vec<u64>,
    /// The bitmap the page-modification log's harvest is ordered with, kept between stuns.
    sort_bits: Vec<u64>,
    /// `epoch_min=` in ns.
    epoch_min: u64,
    /// A write (the guest's or its card's) may have sent pages first since the loop last
    /// looked at the stream's backlog ([`Host::drain_stream`]).
    sent_first: bool,
    /// The link, the checkpoint state machine and the lazy sender ([`pipeline`]).
    pipe: Pipe<'c, B::Format>,
}

/// The card of a protected guest: its frames are held as output of the epoch that sent them
/// (in the guest's CPU's outbox, then the primary's; released with the epoch's
/// acknowledgement), and its writes to guest RAM are handled as guest writes are: a page the
/// lazy sender still needs is copied aside or sent first, and every written page joins the
/// epoch's dirty set. It takes the host NIC's lock to receive and [`Shared`]'s for a write,
/// one at a time.
struct PrimaryNet<'a, 'c, F: Format> {
    pipe: &'a Pipe<'c, F>,
    outbox: &'a mut Vec<u8>,
    dma_dirty: &'a mut Vec<u64>,
}

impl<F: Format> NetHost<F> for PrimaryNet<'_, '_, F> {
    fn room(&self) -> usize {
        self.pipe.published.room_beside(self.outbox)
    }

    fn send(&mut self, frame: &[u8]) {
        match item(Channel::Net, frame) {
            Some(i) => self.outbox.extend_from_slice(&i),
            // room() counted this frame in: a bug, never guest behaviour.
            None => log::error!("ft: primary: a guest frame is too long to hold"),
        }
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.pipe.uplink.lock().as_mut()?.receive(buf)
    }

    fn before_write(&mut self, mem: &mut GuestMemory<F>, gfn: u64) {
        let mut s = self.pipe.lock();
        if mem.is_write_protected(gfn)
            && let Err(e) = s.primary.on_write_fault(&mut PrimaryRam(mem), gfn)
        {
            kprintln!("ft: primary: {e}");
        }
        drop(s);
        self.dma_dirty.push(gfn);
    }
}

impl<B: Backend> Host<'_, B> {
    /// Flushes the vCPU's nested TLB if the protections changed in a way that needs it.
    fn sync_tlb(&mut self) {
        if self.guest.mem.sync_tlb(&mut self.vcpu) {
            self.stale.flushed();
        }
    }

    /// Runs the guest to its end (`Err`: to the loss of this host's majority, with why).
    fn run(&mut self) -> Result<ExitStatus, alloc::string::String> {
        let mut serviced = 0;
        let end = loop {
            if let Some(why) = self.deposed.take() {
                return Err(why);
            }
            let now = time::now_ns();
            if self.pipe.running() {
                // The pipeline runs on its own CPU: only what it found, and the stun, here.
                self.take_news();
                self.stun_if_due();
                self.freeze_in_run(now);
            } else if self.protected && self.turn_due(now, serviced) {
                serviced = now;
                self.pipe_turn();
                self.stun_if_due();
                self.freeze_in_run(now);
            } else if !self.protected && now >= serviced + SERVICE_EVERY {
                serviced = now;
                self.witness_turn();
                self.rejoin_turn();
                self.check_majority();
                continue;
            }
            let step = run::step(&mut self.vcpu, &mut self.guest, &mut self.out);
            self.hold_output();
            self.service_nic();
            if core::mem::take(&mut self.sent_first) {
                self.drain_stream();
            }
            match step {
                Step::Continue | Step::HostInterrupt | Step::Preempted => {}
                Step::Halt => {
                    if !self.wait_halted() {
                        break GuestEnd::Halted;
                    }
                }
                Step::WriteFault { gpa } => {
                    if let Some(end) = self.write_fault(gpa) {
                        break end;
                    }
                }
                Step::End(end) => break end,
            }
        };
        Ok(self.finish(end))
    }

    /// Whether the guest's CPU runs a pipeline turn now (the last ran at `serviced`). The
    /// pair's work between exits is rationed (the host timer makes an exit at least this
    /// often): a guest taking many exits, e.g. a backlog of timer interrupts, must not find
    /// each exit slowed by link and sender work. Frames wait for the epoch being sent, or for
    /// the running one, whose stun waits for the sender: then the pages go out at every exit
    /// and as fast as the link takes them, and the acknowledgement is looked for at every
    /// exit, since a client waits on them.
    fn turn_due(&mut self, now: u64, serviced: u64) -> bool {
        let p = &self.pipe.published;
        let urgent = self.pipe.frames_wait()
            && (!p.sender_idle()
                || !self.outbox.is_empty()
                || p.output_room() < self.primary_config.output_capacity);
        urgent
            || (now >= serviced + SERVICE_EVERY
                && (now >= serviced + SERVICE_QUIET_EVERY || !self.quiet(now)))
    }

    /// Halfway through the epoch with its predecessor all sent: `ft_freeze=run@N`.
    fn freeze_in_run(&self, now: u64) {
        if self.config.ft_freeze.is_some() && now >= self.epoch_start + self.epoch_len / 2 {
            let s = self.pipe.lock();
            if s.primary.sender_idle() {
                self.pipe
                    .freeze_at(FreezePhase::Run, s.primary.current_epoch());
            }
        }
    }

    /// Whether the pair's work between exits can wait: no pages to stream, nothing queued for
    /// the backup, no link timer due (an acknowledgement, a retransmission, a heartbeat) and
    /// the epoch not ending within [`SERVICE_EVERY`]. Acknowledgements that arrive meanwhile
    /// wait too (held console output is released a little later).
    fn quiet(&mut self, now: u64) -> bool {
        let frames_waiting = self.pipe.frames_waiting.load(Ordering::Acquire);
        let mut w = self.pipe.wire.lock();
        let s = self.pipe.lock();
        s.primary.sender_idle()
            && w.pending.is_none()
            && !s.primary.messages_waiting()
            && now + SERVICE_EVERY < self.epoch_end_with(frames_waiting)
            && w.link.link().next_timeout().is_none_or(|t| t > now)
    }

    /// A pipeline turn on the guest's CPU: the witness, the link, the lazy sender; then what
    /// it found.
    fn pipe_turn(&mut self) {
        {
            let mut w = self.pipe.wire.lock();
            self.pipe.witness_turn(&mut w, self.protected);
            self.pipe.service_link(&mut w);
            if !self.pipe.backup_lost() {
                self.pipe.pump_turn(&mut w);
            }
        }
        self.take_news();
    }

    /// The link on the guest's CPU: what arrived, what is queued; then what it found.
    fn service_link(&mut self) {
        self.pipe.service_link(&mut self.pipe.wire.lock());
        self.take_news();
    }

    /// Acts on what the pipeline found: the backup lost, or an epoch acknowledged (which may
    /// end a re-protection, and makes room for frames the guest's card was holding back).
    fn take_news(&mut self) {
        let Some(news) = self.pipe.take_news() else {
            return;
        };
        if let Some(epoch) = news.acked {
            self.on_protected_again(epoch);
            self.service_nic();
        }
        if news.lost {
            self.lose_backup();
        }
    }

    /// Streams up to `pages` pages on the guest's CPU.
    fn pump_sender(&mut self, pages: usize) {
        let mut s = self.pipe.lock();
        self.pipe.pump_sender(&mut s, pages);
    }

    /// Holds (or, unprotected, prints) the guest's new console lines: in the outbox, which
    /// the stun moves into the primary. When the primary has no room for the line beside the
    /// outbox, the epoch ends now, and the guest waits for the acknowledgement that frees room.
    fn hold_output(&mut self) {
        for line in core::mem::take(&mut self.out) {
            let mut text = line.into_bytes();
            text.push(b'\n');
            text.truncate(MAX_ITEM_LEN);
            let Some(bytes) = item(Channel::Console, &text) else {
                continue;
            };
            while self.protected && self.pipe.published.room_beside(&self.outbox) < bytes.len() {
                self.stun();
                if self.pipe.running() {
                    self.take_news();
                    core::hint::spin_loop();
                } else {
                    self.service_link();
                }
            }
            match self.protected {
                true => self.outbox.extend_from_slice(&bytes),
                false => {
                    output::release(&bytes, None);
                }
            }
        }
    }

    /// Moves the outbox into the primary, as output of its current epoch (the stun's, and
    /// before the primary lets go of what it holds). It fits: what the outbox took was
    /// within the room, which only acknowledgements change meanwhile, and they add to it.
    fn move_outbox(outbox: &mut Vec<u8>, primary: &mut Primary) {
        if let Err(e) = primary.hold_output(outbox) {
            log::error!("ft: primary: the epoch's output did not fit the room it was given: {e}");
        }
        outbox.clear();
    }

    /// One round of the guest card's I/O (`vmm::nic_io`): while protected its frames are held
    /// as output ([`PrimaryNet`]), once unprotected they go straight out.
    fn service_nic(&mut self) {
        if self.guest.nic.is_none() {
            return;
        }
        if self.tracking_dma() {
            if let Some(activity) = self.service_tracked_nic() {
                self.net.add(&activity);
            }
            return;
        }
        let written = self.dma_dirty.len();
        let activity = if self.protected {
            let mut net = PrimaryNet {
                pipe: &self.pipe,
                outbox: &mut self.outbox,
                dma_dirty: &mut self.dma_dirty,
            };
            self.guest.service_nic(&mut net)
        } else {
            let mut uplink = self.pipe.uplink.lock();
            let Some(uplink) = uplink.as_mut() else {
                return;
            };
            self.guest.service_nic(uplink)
        };
        self.net.add(&activity);
        if self.protected && activity.sent > 0 {
            self.pipe.frames_waiting.store(true, Ordering::Release);
        }
        if self.dma_dirty.len() > written {
            self.sync_tlb();
            // The card's writes may have sent pages first, as guest writes do.
            self.sent_first |= self.protected;
        }
    }

    /// HLT: waits for the guest's next interrupt while keeping the pair going.
    fn wait_halted(&mut self) -> bool {
        loop {
            if self.guest.chipset.pending().is_some() {
                return true;
            }
            let Some(deadline) = self.guest.chipset.next_deadline() else {
                return false;
            };
            while self.guest.chipset.now_ns() < deadline {
                self.service_nic();
                if self.guest.chipset.pending().is_some() {
                    return true;
                }
                if self.pipe.running() {
                    self.take_news();
                    self.stun_if_due();
                } else if self.protected {
                    self.pipe_turn();
                    self.stun_if_due();
                } else {
                    self.witness_turn();
                    self.rejoin_turn();
                    self.check_majority();
                }
                if self.deposed.is_some() {
                    // The main loop stops the guest.
                    return true;
                }
            }
        }
    }

    /// A write fault on guest RAM: copy-on-write (or send first), a write tracked, or a
    /// spurious fault through a stale translation (`stale`); then the write proceeds.
    fn write_fault(&mut self, gpa: u64) -> Option<GuestEnd> {
        let gfn = gpa / PAGE_SIZE as u64;
        let mut s = self.pipe.lock();
        let outcome = s
            .primary
            .on_write_fault(&mut PrimaryRam(&mut self.guest.mem), gfn);
        let faults = &mut s.stats.faults;
        let mut sent_first = false;
        match outcome {
            Ok(FaultOutcome::Copied) => faults.copied += 1,
            Ok(FaultOutcome::SentFirst) => {
                faults.sent_first += 1;
                sent_first = true;
            }
            Ok(FaultOutcome::Tracked) => faults.tracked += 1,
            Ok(FaultOutcome::Spurious) => {
                faults.spurious += 1;
                drop(s);
                if self.stale.on_spurious(gfn) {
                    self.vcpu.flush_nested_tlb();
                }
                return None;
            }
            Ok(FaultOutcome::NotOurs) => return Some(GuestEnd::BadAccess { gpa, write: true }),
            Err(e) => {
                kprintln!("ft: primary: {e}");
                return Some(GuestEnd::BadAccess { gpa, write: true });
            }
        }
        drop(s);
        self.sync_tlb();
        self.sent_first |= sent_first;
        None
    }

    /// Waits, the guest stopped, while more than [`STREAM_BACKLOG_CAP`] stream bytes wait for
    /// the link: the pipeline (on its CPU, or here) moves them on; a lost backup ends the wait.
    /// This is what a page sent first costs the writing vCPU when the link is behind.
    fn drain_stream(&mut self) {
        while self.protected && self.pipe.lock().primary.stream_queued() > STREAM_BACKLOG_CAP {
            if self.pipe.running() {
                self.take_news();
                core::hint::spin_loop();
            } else {
                self.service_link();
            }
        }
    }

    fn lose_backup(&mut self) {
        self.pipe.stop();
        let mut w = self.pipe.wire.lock();
        let silent = w.link.link().peer_silent_for(time::now_ns()).unwrap_or(0);
        // Without its backup this host may go on (and release what it held) only with the
        // witness's lease.
        let majority = w.witness.as_ref().is_none_or(WitnessLink::holds);
        let longest = {
            let mut s = self.pipe.lock();
            Self::move_outbox(&mut self.outbox, &mut s.primary);
            s.primary
                .abandon(&mut PrimaryRam(&mut self.guest.mem), |b| {
                    if majority {
                        output::release(b, self.pipe.uplink.lock().as_mut());
                    }
                });
            s.stats.longest_stop_ns
        };
        kprintln!(
            "ft: backup lost after {} ms of silence (the longest the guest was ever stopped \
             for a checkpoint: {} us)",
            silent / MS,
            longest / 1000
        );
        w.link.restart();
        drop(w);
        self.sync_tlb();
        self.await_backup();
        if !majority {
            self.deposed = Some("the backup is lost and the witness's lease has lapsed".into());
        }
    }

    /// The guest ended: checkpoint its final state, release its last output once the backup
    /// has it, tell the backup to stand down.
    fn finish(&mut self, end: GuestEnd) -> ExitStatus {
        self.pipe.retire();
        self.guest.bus.take_output_into(&mut self.out, true);
        self.hold_output();
        if self.protected {
            self.stun();
            let last = self.pipe.lock().primary.current_epoch().saturating_sub(1);
            let deadline = time::now_ns() + FINAL_ACK_WAIT;
            while self.protected
                && self.pipe.lock().primary.acked() < Some(last)
                && time::now_ns() < deadline
            {
                self.pump_sender(usize::MAX);
                self.service_link();
            }
        }
        run::report_end(&mut self.vcpu, end, "[guest] ");
        let status = match end {
            GuestEnd::Exited(status) => Some(status),
            _ => None,
        };
        // A backup still in its sync stands down too.
        if self.protected || matches!(self.rejoin, Rejoin::Syncing(_)) {
            {
                let mut s = self.pipe.lock();
                Self::move_outbox(&mut self.outbox, &mut s.primary);
                s.primary
                    .abandon(&mut PrimaryRam(&mut self.guest.mem), |b| {
                        output::release(b, self.pipe.uplink.lock().as_mut());
                    });
            }
            // u64::MAX: the guest did not exit by itself (it stopped).
            let msg = Message::Ended(status.unwrap_or(u64::MAX)).encode();
            let mut w = self.pipe.wire.lock();
            if w.link.link().send(&msg).is_ok() {
                let deadline = time::now_ns() + FINAL_ACK_WAIT;
                // Everything is released: nothing can arrive that needs handling first.
                while !w.link.link().all_acked() && time::now_ns() < deadline {
                    w.link.pump();
                }
            }
        }
        let mut s = self.pipe.lock();
        s.stats.net.add_counts(&core::mem::take(&mut self.net));
        s.stats.copies = s.primary.copy_stats();
        s.stats.report(time::now_ns());
        match status {
            Some(status) => {
                kprintln!("guest exited with status {status}");
                ExitStatus::Success
            }
            None => ExitStatus::Failure,
        }
    }
}
