// SPDX-License-Identifier: MIT OR Apache-2.0
//! The primary host: runs the guest and checkpoints it every epoch.
//!
//! One CPU does everything, interleaved at guest exits (the host LAPIC timer at 1 kHz makes
//! sure there are some): between exits it services the peer link and lets the lazy sender
//! stream a few pages; when the epoch is due it stuns the guest (it is stopped already: we
//! are in its exit), harvests the dirty set (PML on VT-x, the nested table walk otherwise),
//! captures vCPU and device state, and hands them to [`castor_ft::pair::primary::Primary`],
//! which copies hot pages and write-protects cold ones; after the nested TLB flush the guest
//! runs on. Guest output is held until the backup acknowledges its epoch.
//!
//! Without a backup (it was lost, or this host took the guest over as a backup) the guest runs
//! unprotected and the host waits for a new backup to join ([`reprotect`]).

mod majority;
mod reprotect;
mod stun;

use alloc::vec::Vec;

use castor_ft::epoch::items::{Channel, MAX_ITEM_LEN, item};
use castor_ft::epoch::policy::EpochPolicy;
use castor_ft::link::{Event, Role};
use castor_ft::pair::message::Message;
use castor_ft::pair::primary::{
    DirtySource, FaultOutcome, Primary, PrimaryConfig, StaleTranslations,
};
use castor_ft::stream::{MAX_DEVICE_STATE_LEN, PAGE_SIZE};

use self::reprotect::Rejoin;
use super::memory::PrimaryRam;
use super::output;
use super::stats::Stats;
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

/// Pages the lazy sender streams at each turn between guest exits.
const PAGES_PER_EXIT: usize = 8;
/// Pages encoded before they are put on the wire while frames wait for the epoch.
const PAGES_PER_BATCH: usize = 16;
/// How often, at most, the pair's work runs between guest exits.
const SERVICE_EVERY: u64 = 500_000;
/// How often it runs while it has nothing to do ([`Host::quiet`]): the checks cost the guest
/// a few thousand instructions at each host tick otherwise.
const SERVICE_QUIET_EVERY: u64 = 2_000_000;
/// Checkpoint bytes the link may hold unsent: at the link rates seen under emulation this
/// keeps the acknowledgement (and output) latency to tens of milliseconds.
const LINK_BACKLOG: usize = 128 * 1024;
/// How long the primary waits for the last acknowledgement when the guest has ended.
const FINAL_ACK_WAIT: u64 = 10_000 * MS;

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
    /// it: together they are larger than a quarter of the kernel's stack.
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
        Some(alloc::boxed::Box::new(Host {
            link,
            config,
            image,
            witness,
            deposed: None,
            primary,
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
            pending: None,
            protected: false,
            stats: Stats::new(config.ft_trace),
            stale: StaleTranslations::default(),
            uplink,
            dma_dirty: Vec::new(),
            frames_waiting: false,
            commit_waits: false,
            epoch_min: min,
            encoded_at: None,
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
        apic::timer_stop();
        match status {
            Ok(status) => status,
            Err(why) => (*self).rejoin_as_backup(&why),
        }
    }
}

/// Everything the primary's loop works on.
struct Host<'c, B: Backend> {
    link: PeerLink,
    config: &'c Config,
    /// The guest's digest: the pair's name in HELLOs and at the witness.
    image: WitnessId,
    /// The witness's lease (`witness=on`).
    witness: Option<WitnessLink>,
    /// Why this host lost its majority, once it has: it stops its guest.
    deposed: Option<alloc::string::String>,
    primary: alloc::boxed::Box<Primary>,
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
    /// A message taken from the primary that the link could not take yet.
    pending: Option<Vec<u8>>,
    /// False once the backup is lost.
    protected: bool,
    stats: Stats,
    /// Pages that faulted spuriously since the last nested TLB flush.
    stale: StaleTranslations,
    /// The host NIC of the guest's network card, if it has one.
    uplink: Option<Uplink>,
    /// Guest pages the card wrote since the last stun (host writes leave no dirty flag).
    dma_dirty: Vec<u64>,
    /// The guest sent frames during the running epoch (they wait for its checkpoint).
    frames_waiting: bool,
    /// The epoch being sent holds frames: a client waits for its acknowledgement.
    commit_waits: bool,
    /// `epoch_min=` in ns.
    epoch_min: u64,
    /// When the epoch being sent, holding frames, was all encoded, until all of it is on the
    /// wire.
    encoded_at: Option<u64>,
}

/// The card of a protected guest: its frames are held as output of the epoch that sent them
/// (released with the epoch's acknowledgement), and its writes to guest RAM are handled as
/// guest writes are: a page the lazy sender still needs is copied aside or sent first, and
/// every written page joins the epoch's dirty set.
struct PrimaryNet<'a> {
    primary: &'a mut Primary,
    uplink: &'a mut Uplink,
    dma_dirty: &'a mut Vec<u64>,
}

impl<F: Format> NetHost<F> for PrimaryNet<'_> {
    fn room(&self) -> usize {
        self.primary.output_room()
    }

    fn send(&mut self, frame: &[u8]) {
        let held = item(Channel::Net, frame).map(|i| self.primary.hold_output(&i));
        if !matches!(held, Some(Ok(()))) {
            // room() counted this frame in: a bug, never guest behaviour.
            log::error!("ft: primary: a guest frame did not fit the room it was given");
        }
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.uplink.receive(buf)
    }

    fn before_write(&mut self, mem: &mut GuestMemory<F>, gfn: u64) {
        if mem.is_write_protected(gfn)
            && let Err(e) = self.primary.on_write_fault(&mut PrimaryRam(mem), gfn)
        {
            kprintln!("ft: primary: {e}");
        }
        self.dma_dirty.push(gfn);
    }
}

impl<B: Backend> Host<'_, B> {
    /// Stops this host dead if `ft_freeze=` names `phase` and `epoch` is the named epoch or a
    /// later one (the first time the phase comes): no more frames or heartbeats, as if it had
    /// crashed right here.
    fn freeze_at(&self, phase: FreezePhase, epoch: u64) {
        if let Some(point) = self.config.ft_freeze
            && point.phase == phase
            && epoch >= point.epoch
        {
            kprintln!("ft: test freeze: {phase:?} of epoch {epoch}; stopping dead");
            crate::console::flush();
            instr::halt_forever();
        }
    }

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
            // The pair's work between exits is rationed (the host timer makes an exit at least
            // this often): a guest taking many exits, e.g. a backlog of timer interrupts, must
            // not find each exit slowed by link and sender work.
            let now = time::now_ns();
            // Frames wait for the epoch being sent, or for the running one, whose stun waits
            // for the sender: the pages go out at every exit and as fast as the link takes
            // them, and the acknowledgement is looked for at every exit, since a client waits
            // on them.
            let urgent = self.frames_wait()
                && (!self.primary.sender_idle() || self.primary.output_waiting());
            let due = now >= serviced + SERVICE_EVERY
                && (now >= serviced + SERVICE_QUIET_EVERY || !self.quiet(now));
            if self.protected && (urgent || due) {
                serviced = now;
                self.witness_turn();
                self.service_link();
                self.pump_turn();
                self.stun_if_due();
                if now >= self.epoch_start + self.epoch_len / 2 && self.primary.sender_idle() {
                    self.freeze_at(FreezePhase::Run, self.primary.current_epoch());
                }
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

    /// Whether the pair's work between exits can wait: no pages to stream, nothing queued for
    /// the backup, no link timer due (an acknowledgement, a retransmission, a heartbeat) and
    /// the epoch not ending within [`SERVICE_EVERY`]. Acknowledgements that arrive meanwhile
    /// wait too (held console output is released a little later).
    fn quiet(&mut self, now: u64) -> bool {
        self.primary.sender_idle()
            && self.pending.is_none()
            && !self.primary.messages_waiting()
            && now + SERVICE_EVERY < self.epoch_end()
            && self.link.link().next_timeout().is_none_or(|t| t > now)
    }

    /// Handles what arrived, then moves messages onto the link. Output released by an
    /// acknowledgement is printed before the link can tell the backup the acknowledgement
    /// arrived (receive, handle, then transmit), so the backup never counts output as released
    /// that was not.
    fn service_link(&mut self) {
        self.link.receive();
        while let Some(event) = self.link.link().poll_event() {
            match event {
                Event::Delivered(msg) => match Message::decode(&msg) {
                    Ok(Message::Ack(epoch)) => {
                        self.on_ack(epoch);
                        self.on_protected_again(epoch);
                    }
                    Ok(_) => kprintln!("ft: primary: ignoring an unexpected message"),
                    Err(e) => kprintln!("ft: primary: ignoring a bad message: {e}"),
                },
                Event::PeerLost | Event::PairingFailed(_) => {
                    self.lose_backup();
                    return;
                }
                Event::Acked(_) | Event::Paired { .. } => {}
            }
        }
        self.send_pending();
    }

    /// Queues control messages, then stream chunks while the link holds less than
    /// [`LINK_BACKLOG`] unsent (so acknowledgements, and with them released output, are not
    /// stuck behind seconds of queued checkpoint data), and transmits. Epochs completed since
    /// the last report are reported first: an epoch can be completed by a stun or a write
    /// fault as well as by the sender, and its line must be on the console before its last
    /// bytes are on the wire (a backup may take over at it as soon as they are).
    fn send_pending(&mut self) {
        self.report_completed();
        while let Some(msg) = self.primary.next_control() {
            if let Err(e) = self.link.link().send(&msg) {
                kprintln!("ft: primary: link refused a control message: {e:?}");
            }
        }
        loop {
            if self.pending.is_none() {
                self.pending = self.primary.next_stream();
            }
            let Some(msg) = &self.pending else { break };
            let link = self.link.link();
            if link.send_buffered() + msg.len() > LINK_BACKLOG || !link.can_send(msg.len()) {
                break;
            }
            if let Err(e) = link.send(msg) {
                kprintln!("ft: primary: link refused a message: {e:?}");
                break;
            }
            self.pending = None;
        }
        self.link.transmit();
        if let Some(at) = self.encoded_at
            && self.pending.is_none()
            && self.primary.stream_queued() == 0
            && self.link.link().all_sent()
        {
            self.encoded_at = None;
            self.stats.on_wire(time::now_ns().saturating_sub(at));
        }
    }

    fn on_ack(&mut self, epoch: u64) {
        let uplink = &mut self.uplink;
        match self.primary.on_ack(epoch, |b| {
            output::release(b, uplink.as_mut());
        }) {
            Ok(Some(sent)) => {
                self.stats.acked(&sent);
                // Released means out of the UART, not in its FIFO (a slow or emulated UART
                // still holds bytes after taking them): drain it, then confirm the
                // acknowledgement to the backup at once (the next transmit), since the only
                // window for a repeated line is until the backup knows.
                crate::console::flush();
                self.link.link().acknowledge_now();
                // Room for frames the guest's card was holding back.
                self.service_nic();
            }
            Ok(None) => {}
            Err(e) => kprintln!("ft: primary: {e}"),
        }
    }

    fn pump_sender(&mut self, pages: usize) {
        let was_idle = self.primary.sender_idle();
        let mut ram = PrimaryRam(&mut self.guest.mem);
        let pumped = self.primary.pump_sender(&mut ram, pages);
        if !was_idle && self.primary.sender_idle() && self.commit_waits {
            self.encoded_at = Some(time::now_ns());
        }
        match pumped {
            Ok(sent) if sent > 0 && !self.primary.sender_idle() => {
                // Some of the epoch's pages are out, some are not.
                let sending = self.primary.current_epoch().saturating_sub(1);
                self.freeze_at(FreezePhase::Send, sending);
            }
            Ok(_) => {}
            Err(e) => kprintln!("ft: primary: {e}"),
        }
        self.sync_tlb();
        self.report_completed();
    }

    /// With `digests=on`, prints each completely sent epoch's memory digest.
    fn report_completed(&mut self) {
        while let Some(sent) = self.primary.take_completed() {
            if self.config.digests {
                kprintln!(
                    "ft: epoch {} sent: {} pages, {} bytes, memory digest {:032x}",
                    sent.epoch,
                    sent.pages,
                    sent.bytes,
                    sent.digest.unwrap_or(0)
                );
            }
        }
    }

    /// Holds (or, unprotected, prints) the guest's new console lines.
    fn hold_output(&mut self) {
        for line in core::mem::take(&mut self.out) {
            let mut text = line.into_bytes();
            text.push(b'\n');
            text.truncate(MAX_ITEM_LEN);
            let Some(bytes) = item(Channel::Console, &text) else {
                continue;
            };
            if !self.protected {
                output::release(&bytes, None);
                continue;
            }
            loop {
                match self.primary.hold_output(&bytes) {
                    Ok(()) => break,
                    Err(_) => {
                        // Full: checkpoint now and wait for the acknowledgement to free room.
                        self.stun();
                        self.service_link();
                        if !self.protected {
                            output::release(&bytes, None);
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Whether guest frames wait for the epoch being sent or for the running one (which
    /// cannot be checkpointed before the one being sent is out).
    fn frames_wait(&self) -> bool {
        self.commit_waits || self.frames_waiting
    }

    /// The lazy sender's turn: a few pages; or, while frames wait ([`Self::frames_wait`]),
    /// all the link takes, in batches each put on the wire at once, so that the backup checks
    /// and applies the first while the later ones are encoded (the two hosts' CPUs work side
    /// by side instead of one after the other).
    fn pump_turn(&mut self) {
        if !self.frames_wait() {
            self.pump_sender(PAGES_PER_EXIT);
            return;
        }
        while !self.primary.sender_idle() {
            let queued = self.link.link().send_buffered();
            self.pump_sender(PAGES_PER_BATCH);
            self.send_pending();
            if self.link.link().send_buffered() <= queued {
                // Nothing more went to the link: it is full, or the sender is waiting.
                break;
            }
        }
    }

    /// One round of the guest card's I/O (`vmm::nic_io`): while protected its frames are held
    /// as output ([`PrimaryNet`]), once unprotected they go straight out.
    fn service_nic(&mut self) {
        if self.tracking_dma() {
            if let Some(activity) = self.service_tracked_nic() {
                self.stats.net.add(&activity);
            }
            return;
        }
        let Some(uplink) = self.uplink.as_mut() else {
            return;
        };
        let activity = if self.protected {
            let mut net = PrimaryNet {
                primary: &mut self.primary,
                uplink,
                dma_dirty: &mut self.dma_dirty,
            };
            self.guest.service_nic(&mut net)
        } else {
            self.guest.service_nic(uplink)
        };
        self.stats.net.add(&activity);
        self.frames_waiting |= self.protected && activity.sent > 0;
        self.sync_tlb();
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
                self.witness_turn();
                if self.protected {
                    self.service_link();
                    self.pump_turn();
                    self.stun_if_due();
                } else {
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
        let mut ram = PrimaryRam(&mut self.guest.mem);
        match self.primary.on_write_fault(&mut ram, gfn) {
            Ok(FaultOutcome::Copied) => self.stats.faults.copied += 1,
            Ok(FaultOutcome::SentFirst) => self.stats.faults.sent_first += 1,
            Ok(FaultOutcome::Tracked) => self.stats.faults.tracked += 1,
            Ok(FaultOutcome::Spurious) => {
                self.stats.faults.spurious += 1;
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
        self.sync_tlb();
        None
    }

    fn lose_backup(&mut self) {
        let silent = self
            .link
            .link()
            .peer_silent_for(time::now_ns())
            .unwrap_or(0);
        // Without its backup this host may go on (and release what it held) only with the
        // witness's lease.
        let majority = self.witness.as_ref().is_none_or(WitnessLink::holds);
        let mut ram = PrimaryRam(&mut self.guest.mem);
        let uplink = &mut self.uplink;
        self.primary.abandon(&mut ram, |b| {
            if majority {
                output::release(b, uplink.as_mut());
            }
        });
        self.sync_tlb();
        kprintln!(
            "ft: backup lost after {} ms of silence (the longest the guest was ever stopped \
             for a checkpoint: {} us)",
            silent / MS,
            self.stats.longest_stop_ns / 1000
        );
        self.link.restart();
        self.await_backup();
        if !majority {
            self.deposed = Some("the backup is lost and the witness's lease has lapsed".into());
        }
    }

    /// The guest ended: checkpoint its final state, release its last output once the backup
    /// has it, tell the backup to stand down.
    fn finish(&mut self, end: GuestEnd) -> ExitStatus {
        self.out.extend(self.guest.bus.take_output(true));
        self.hold_output();
        if self.protected {
            self.stun();
            let last = self.primary.current_epoch().saturating_sub(1);
            let deadline = time::now_ns() + FINAL_ACK_WAIT;
            while self.protected && self.primary.acked() < Some(last) && time::now_ns() < deadline {
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
            let mut ram = PrimaryRam(&mut self.guest.mem);
            let uplink = &mut self.uplink;
            self.primary.abandon(&mut ram, |b| {
                output::release(b, uplink.as_mut());
            });
            // u64::MAX: the guest did not exit by itself (it stopped).
            let msg = Message::Ended(status.unwrap_or(u64::MAX)).encode();
            if self.link.link().send(&msg).is_ok() {
                let deadline = time::now_ns() + FINAL_ACK_WAIT;
                // Everything is released: nothing can arrive that needs handling first.
                while !self.link.link().all_acked() && time::now_ns() < deadline {
                    self.link.pump();
                }
            }
        }
        self.stats.copies = self.primary.copy_stats();
        self.stats.report(time::now_ns());
        match status {
            Some(status) => {
                kprintln!("guest exited with status {status}");
                ExitStatus::Success
            }
            None => ExitStatus::Failure,
        }
    }
}
