// SPDX-License-Identifier: MIT OR Apache-2.0
//! The checkpoint pipeline: the peer link (messages queued, frames sealed and sent,
//! acknowledgements in), the witness's turns, and the lazy sender encoding the epoch's pages.
//! On a host with a CPU to spare it runs there, beside the guest ([`Pipe::start`]), with the
//! link NIC's receive interrupt moved there too: the guest's CPU then pays only for the stun
//! and for copy-on-write faults, and the stun leaves the hot pages' copies to the pipeline
//! (`castor_ft::pair::primary::Primary::copy_hot`). Otherwise the guest's CPU runs its turns
//! between guest exits, as the primary's loop rations them.
//!
//! Three locks, always taken in this order: [`Wire`] (the link, the witness, a message the
//! link could not take yet), then [`Shared`] (the checkpoint state machine, the statistics),
//! then the host NIC of the guest's card ([`Pipe::uplink`]). The guest's CPU takes [`Shared`]
//! only to stun and for copy-on-write faults (its own writes' and its card's): it holds the
//! running epoch's output itself until the stun, and reads what it needs at its exits from
//! what each holder of [`Shared`] publishes as it lets go ([`Published`]); what the pipeline
//! finds (an acknowledgement, a lost backup) comes back to it in atomics
//! ([`Pipe::take_news`]). The pipeline lets go of [`Shared`] while it seals and transmits
//! frames and while it lets out the output an acknowledgement released, so a fault never
//! waits for the cipher or the UART. Pages are read and protections lifted
//! through [`SharedRam`] under [`Shared`]'s lock, as the guest's CPU changes protections under
//! it.

mod shared;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use castor_ft::link::Event;
use castor_ft::pair::message::Message;

pub(super) use self::shared::{Published, Shared, SharedGuard};
#[cfg(doc)]
use super::super::memory::SharedRam;
use super::super::output;
use super::super::stats;
use super::super::witness::WitnessLink;
use crate::arch::x86_64::{apic, instr, percpu, time, worker};
use crate::config::{Config, FreezePhase};
use crate::kprintln;
use crate::link::peer::PeerLink;
use crate::mm::pagetable::Format;
use crate::vmm::uplink::Uplink;

/// Pages the lazy sender streams at each turn between guest exits.
const PAGES_PER_EXIT: usize = 8;
/// Pages encoded before they are put on the wire while frames wait for the epoch.
const PAGES_PER_BATCH: usize = 16;
/// Checkpoint bytes the link may hold unsent: at the link rates seen under emulation this
/// keeps the acknowledgement (and output) latency to tens of milliseconds.
const LINK_BACKLOG: usize = 128 * 1024;

/// The link side of the pipeline.
pub(super) struct Wire {
    pub link: PeerLink,
    /// The witness's lease (`witness=on`).
    pub witness: Option<WitnessLink>,
    /// A message taken from the primary that the link could not take yet.
    pub pending: Option<Vec<u8>>,
}

/// What the pipeline found that the guest's CPU acts on.
pub(super) struct News {
    /// The backup is lost.
    pub lost: bool,
    /// The newest epoch acknowledged since the last look.
    pub acked: Option<u64>,
}

/// The pipeline: its two halves, the host NIC of the guest's card, and the CPU that runs it,
/// if one does.
pub(super) struct Pipe<'c, F: Format> {
    pub wire: spin::Mutex<Wire>,
    shared: spin::Mutex<Shared<F>>,
    /// [`Shared`] as its last holder left it.
    pub published: Published,
    /// The host NIC of the guest's card, if it has one: the guest's CPU receives on it, and
    /// whoever handles an acknowledgement transmits the frames it releases.
    pub uplink: spin::Mutex<Option<Uplink>>,
    config: &'c Config,
    /// The application processor the pipeline may run on.
    cpu: Option<usize>,
    /// Asks that CPU's loop to go on ([`Pipe::stop`] clears it).
    running: AtomicBool,
    /// The guest sent frames during the running epoch (they wait for its checkpoint): set by
    /// the guest's CPU, cleared by its stun.
    pub frames_waiting: AtomicBool,
    /// The link lost the backup: the guest's CPU handles it ([`Pipe::take_news`]).
    lost: AtomicBool,
    /// One more than the newest epoch acknowledged since the guest's CPU last looked (0:
    /// none).
    acked: AtomicU64,
    /// [`Pipe::retire`]d: it does not start again.
    retired: AtomicBool,
    /// The guest's CPU holds [`Shared`] for a stun ([`Pipe::stun_lock`]).
    stunning: AtomicBool,
}

impl<'c, F: Format> Pipe<'c, F> {
    /// A pipeline of `wire` and `shared` that may run on the first idle application
    /// processor, if this host has one.
    pub fn new(wire: Wire, shared: Shared<F>, uplink: Option<Uplink>, config: &'c Config) -> Self {
        let published = Published::default();
        published.publish(&shared);
        Self {
            wire: spin::Mutex::new(wire),
            shared: spin::Mutex::new(shared),
            published,
            uplink: spin::Mutex::new(uplink),
            config,
            cpu: worker::idle_ap(),
            running: AtomicBool::new(false),
            frames_waiting: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            acked: AtomicU64::new(0),
            retired: AtomicBool::new(false),
            stunning: AtomicBool::new(false),
        }
    }

    /// [`Shared`]'s lock on the guest's CPU, outside stuns: counted, with the time it waited
    /// for the pipeline's CPU, for the statistics.
    pub fn lock(&self) -> SharedGuard<'_, F> {
        let (guard, waited) = match self.shared.try_lock() {
            Some(guard) => (guard, 0),
            None => {
                let started = time::now_ns();
                let guard = self.shared.lock();
                (guard, time::now_ns().saturating_sub(started).max(1))
            }
        };
        let mut s = SharedGuard::new(guard, &self.published);
        s.stats.guest_holds.held(waited);
        s
    }

    /// [`Shared`]'s lock for a stun, on the guest's CPU: held for a millisecond or more, so
    /// the pipeline's CPU waits for it in HLT ([`Pipe::lock_shared`]) until
    /// [`Pipe::stun_unlock`] wakes it.
    pub fn stun_lock(&self) -> SharedGuard<'_, F> {
        self.stunning.store(true, Ordering::Release);
        SharedGuard::new(self.shared.lock(), &self.published)
    }

    /// Ends a stun: lets go of [`Shared`] and wakes the pipeline's CPU.
    pub fn stun_unlock(&self, shared: SharedGuard<'_, F>) {
        drop(shared);
        self.stunning.store(false, Ordering::Release);
        self.wake();
    }

    /// [`Shared`]'s lock. While a stun holds it, the pipeline's CPU waits in HLT rather than
    /// spin: under an emulator whose CPUs share host cores, a spinning CPU takes the host time
    /// the stun needs (a stun's planning took 0.6-0.9 ms on QEMU against 0.1-0.3 ms with the
    /// pipeline idle). The stun's end wakes it, and the millisecond tick bounds the wait.
    fn lock_shared(&self) -> SharedGuard<'_, F> {
        loop {
            if let Some(s) = self.shared.try_lock() {
                return SharedGuard::new(s, &self.published);
            }
            // Only a CPU taking interrupts can wait for one (the pipeline's does; the guest's
            // never finds the flag set, as it sets it only around its own hold).
            if !self.stunning.load(Ordering::Acquire) || !instr::interrupts_enabled() {
                core::hint::spin_loop();
                continue;
            }
            // Interrupts off between the look and the HLT: the wake-up sent as the stun ends
            // stays pending until STI's shadow has passed, and then ends the HLT.
            instr::cli();
            if self.stunning.load(Ordering::Acquire) {
                // SAFETY: the IDT is loaded on every CPU, and this one took interrupts before
                // the CLI above, so enabling them again changes nothing it relies on.
                unsafe { instr::sti_hlt() };
            } else {
                // SAFETY: as above.
                unsafe { instr::sti() };
            }
        }
    }

    /// Whether guest frames wait for the epoch being sent or for the running one (which
    /// cannot be checkpointed before the one being sent is out): read without the lock.
    pub fn frames_wait(&self) -> bool {
        self.published.commit_waits() || self.frames_waiting.load(Ordering::Acquire)
    }

    /// Its two halves, once its CPU is stopped.
    pub fn into_parts(self) -> (Wire, Shared<F>, Option<Uplink>) {
        self.stop();
        (
            self.wire.into_inner(),
            self.shared.into_inner(),
            self.uplink.into_inner(),
        )
    }

    /// The CPU the pipeline runs on, if it runs beside the guest.
    pub fn cpu(&self) -> Option<usize> {
        self.cpu.filter(|_| self.running())
    }

    /// Whether the pipeline will run on its own CPU while the guest is protected (it has one
    /// and is not retired): the stun may then leave the hot pages' copies to it.
    pub fn will_run(&self) -> bool {
        self.cpu.is_some() && !self.retired.load(Ordering::Acquire)
    }

    /// Whether the pipeline runs on its own CPU now.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Runs the pipeline on its CPU, if it has one and it does not run yet; that CPU says so
    /// (once per protection: at the first checkpoint, and again when a new backup protects the
    /// guest). `self` must stay where it is until [`Pipe::stop`] returns.
    pub fn start(&self) {
        let Some(cpu) = self.cpu else { return };
        if self.running() || self.retired.load(Ordering::Acquire) {
            return;
        }
        self.running.store(true, Ordering::Release);
        let arg = core::ptr::from_ref(self) as usize;
        match worker::start(cpu, serve::<F>, arg) {
            Ok(()) => {}
            Err(e) => {
                self.running.store(false, Ordering::Release);
                log::warn!("ft: primary: the pipeline cannot run on cpu {cpu}: {e:?}");
            }
        }
    }

    /// Stops the pipeline's CPU and waits until its loop has returned: from then on the guest's
    /// CPU runs the pipeline's turns.
    pub fn stop(&self) {
        if !self.running.swap(false, Ordering::AcqRel) {
            return;
        }
        if let Some(cpu) = self.cpu {
            worker::wake(cpu);
            while worker::is_running(cpu) {
                core::hint::spin_loop();
            }
        }
    }

    /// Stops the pipeline's CPU for good: the guest's CPU finishes the pair's work.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.stop();
    }

    /// Wakes the pipeline's CPU (a stun gave it an epoch to send).
    pub fn wake(&self) {
        if let Some(cpu) = self.cpu() {
            worker::wake(cpu);
        }
    }

    /// What the pipeline found since the last look, if anything (without a lock).
    pub fn take_news(&self) -> Option<News> {
        let lost = self.lost.swap(false, Ordering::AcqRel);
        let acked = self.acked.swap(0, Ordering::AcqRel).checked_sub(1);
        (lost || acked.is_some()).then_some(News { lost, acked })
    }

    /// Whether the link lost the backup and the guest's CPU has not handled it yet.
    pub fn backup_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Stops this host dead if `ft_freeze=` names `phase` and `epoch` is the named epoch or a
    /// later one (the first time the phase comes): no more frames or heartbeats, as if it had
    /// crashed right here.
    pub fn freeze_at(&self, phase: FreezePhase, epoch: u64) {
        if let Some(point) = self.config.ft_freeze
            && point.phase == phase
            && epoch >= point.epoch
        {
            kprintln!("ft: test freeze: {phase:?} of epoch {epoch}; stopping dead");
            crate::console::flush();
            instr::halt_forever();
        }
    }

    /// The witness's turn: replies in, a request out if one is due; `protected` says what a
    /// silent witness means.
    pub fn witness_turn(&self, w: &mut Wire, protected: bool) {
        let silence = match protected {
            true => "the pair stays protected, but a failover now needs the witness back",
            false => "this host stops its guest when its lease lapses",
        };
        if let Some(witness) = w.witness.as_mut() {
            witness.turn(&mut w.link, "primary", silence);
        }
    }

    /// Handles what arrived, then moves messages onto the link. Output released by an
    /// acknowledgement is printed before the link can tell the backup the acknowledgement
    /// arrived (receive, handle, then transmit), so the backup never counts output as released
    /// that was not. A lost backup is left for the guest's CPU ([`Pipe::take_news`]).
    pub fn service_link(&self, w: &mut Wire) {
        w.link.receive();
        while let Some(event) = w.link.link().poll_event() {
            match event {
                Event::Delivered(msg) => match Message::decode(&msg) {
                    Ok(Message::Ack(epoch)) => self.on_ack(w, epoch),
                    Ok(_) => kprintln!("ft: primary: ignoring an unexpected message"),
                    Err(e) => kprintln!("ft: primary: ignoring a bad message: {e}"),
                },
                Event::PeerLost | Event::PairingFailed(_) => {
                    self.lost.store(true, Ordering::Release);
                    return;
                }
                Event::Acked(_) | Event::Paired { .. } => {}
            }
        }
        self.send_pending(w);
    }

    fn on_ack(&self, w: &mut Wire, epoch: u64) {
        let mut s = self.lock_shared();
        let Shared { primary, stats, .. } = &mut *s;
        self.acked
            .fetch_max(epoch.saturating_add(1), Ordering::AcqRel);
        // Taken out under the lock, let out after it: printing on a slow (emulated) UART or
        // handing frames to the NIC must not keep a write fault on the guest's CPU waiting.
        // The wire's lock, held here, keeps releases in order.
        let mut released = Vec::new();
        let acked = primary.on_ack(epoch, |b| released.extend_from_slice(b));
        if let Ok(Some(sent)) = &acked {
            stats.acked(sent);
        }
        drop(s);
        if !released.is_empty() {
            output::release(&released, self.uplink.lock().as_mut());
        }
        match acked {
            Ok(Some(_)) => {
                // Released means out of the UART, not in its FIFO (a slow or emulated UART
                // still holds bytes after taking them): drain it, then confirm the
                // acknowledgement to the backup at once (the next transmit), since the only
                // window for a repeated line is until the backup knows.
                crate::console::flush();
                w.link.link().acknowledge_now();
            }
            Ok(None) => {}
            Err(e) => kprintln!("ft: primary: {e}"),
        }
    }

    /// Queues control messages, then stream chunks while the link holds less than
    /// [`LINK_BACKLOG`] unsent (so acknowledgements, and with them released output, are not
    /// stuck behind seconds of queued checkpoint data), and transmits: the frames are sealed
    /// with [`Shared`] unlocked. Epochs completed since the last report are reported first: an
    /// epoch can be completed by a stun or a write fault as well as by the sender, and its
    /// line must be on the console before its last bytes are on the wire (a backup may take
    /// over at it as soon as they are).
    pub fn send_pending(&self, w: &mut Wire) {
        {
            let mut s = self.lock_shared();
            self.report_completed(&mut s);
            while let Some(msg) = s.primary.next_control() {
                if let Err(e) = w.link.link().send(&msg) {
                    kprintln!("ft: primary: link refused a control message: {e:?}");
                }
            }
            loop {
                if w.pending.is_none() {
                    w.pending = s.primary.next_stream();
                }
                let Some(msg) = &w.pending else { break };
                let link = w.link.link();
                if link.send_buffered() + msg.len() > LINK_BACKLOG || !link.can_send(msg.len()) {
                    break;
                }
                if let Err(e) = link.send(msg) {
                    kprintln!("ft: primary: link refused a message: {e:?}");
                    break;
                }
                w.pending = None;
            }
        }
        w.link.transmit();
        let all_sent = w.pending.is_none() && w.link.link().all_sent();
        let mut s = self.lock_shared();
        s.stats.sender.link(w.link.cycles);
        if let Some(at) = s.encoded_at
            && all_sent
            && s.primary.stream_queued() == 0
        {
            s.encoded_at = None;
            s.stats.on_wire(time::now_ns().saturating_sub(at));
        }
    }

    /// Streams up to `pages` pages of the epoch being sent, taking [`Shared`]'s lock for one
    /// page at a time, so that a stun or a write fault on the guest's CPU waits for one page's
    /// encoding at most. Returns the pages sent.
    fn pump_pages(&self, pages: usize) -> usize {
        let mut sent = 0;
        while sent < pages {
            let mut s = self.lock_shared();
            if s.primary.sender_idle() || self.pump_sender(&mut s, 1) == 0 {
                break;
            }
            sent += 1;
        }
        sent
    }

    /// Streams up to `pages` pages of the epoch being sent; returns how many.
    pub fn pump_sender(&self, s: &mut Shared<F>, pages: usize) -> usize {
        let was_idle = s.primary.sender_idle();
        let Shared { primary, ram, .. } = s;
        let started = time::now_ns();
        let pumped = primary.pump_sender(ram, pages);
        let done = time::now_ns();
        if let Ok(sent) = pumped {
            s.stats.sender.encoded(sent, done.saturating_sub(started));
        }
        if !was_idle && s.primary.sender_idle() && s.commit_waits {
            s.encoded_at = Some(done);
        }
        let sent = match pumped {
            Ok(sent) if sent > 0 && !s.primary.sender_idle() => {
                // Some of the epoch's pages are out, some are not.
                let sending = s.primary.current_epoch().saturating_sub(1);
                self.freeze_at(FreezePhase::Send, sending);
                sent
            }
            Ok(sent) => sent,
            Err(e) => {
                kprintln!("ft: primary: {e}");
                0
            }
        };
        self.report_completed(s);
        sent
    }

    /// With `digests=on`, prints each completely sent epoch's memory digest.
    fn report_completed(&self, s: &mut Shared<F>) {
        while let Some(sent) = s.primary.take_completed() {
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

    /// The lazy sender's turn: a few pages; or, while frames wait ([`Pipe::frames_wait`]),
    /// all the link takes, in batches each put on the wire at once, so that the backup checks
    /// and applies the first while the later ones are encoded (the two hosts' CPUs work side
    /// by side instead of one after the other).
    pub fn pump_turn(&self, w: &mut Wire) {
        if !self.frames_wait() {
            self.pump_pages(PAGES_PER_EXIT);
            return;
        }
        loop {
            let queued = w.link.link().send_buffered();
            if self.pump_pages(PAGES_PER_BATCH) == 0 && self.lock_shared().primary.sender_idle() {
                return;
            }
            self.send_pending(w);
            if w.link.link().send_buffered() <= queued {
                // Nothing more went to the link: it is full, or the sender is waiting.
                return;
            }
        }
    }

    /// Copies the hot pages the stun left to this CPU into their buffers, one per hold of
    /// [`Shared`]'s lock: the guest writes them soon, and each copied first spares it a fault.
    fn copy_hot_pages(&self) {
        loop {
            let mut s = self.lock_shared();
            let Shared { primary, ram, .. } = &mut *s;
            match primary.copy_hot(ram) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    kprintln!("ft: primary: {e}");
                    return;
                }
            }
        }
    }

    /// One turn on the pipeline's own CPU; whether there is more to do at once.
    fn turn(&self) -> bool {
        self.copy_hot_pages();
        // The summary a stun left to this CPU, printed with the lock let go.
        let report = self.lock_shared().stats.take_report();
        if let Some(text) = report {
            stats::print_lines(&text);
        }
        let mut w = self.wire.lock();
        self.witness_turn(&mut w, true);
        self.service_link(&mut w);
        if self.backup_lost() {
            return false;
        }
        self.pump_turn(&mut w);
        self.send_pending(&mut w);
        let s = self.lock_shared();
        !s.primary.sender_idle() || s.primary.messages_waiting() || w.pending.is_some()
    }
}

/// The pipeline's CPU: turns until [`Pipe::stop`], waiting in HLT while there is nothing to
/// do, woken by the link NIC's receive interrupt (moved to this CPU while it serves, where the
/// NIC can), by [`Pipe::wake`], or by its local APIC timer every millisecond (the link's
/// timers).
fn serve<F: Format>(arg: usize) {
    // SAFETY: `arg` is the address of a `Pipe` that stays where it is until `Pipe::stop`
    // returns, which waits for this function to return (`Pipe::start`). This CPU uses what
    // the pipe holds only under its locks (but for `config`, only read, and the atomics); the
    // NIC drivers, the primary and the guest-memory view hold host memory and device
    // registers that any CPU may use, one at a time.
    let pipe = unsafe { &*(arg as *const Pipe<'_, F>) };
    apic::start_host_tick();
    let routed = pipe.wire.lock().link.route_interrupts(apic::id());
    let taken = || percpu::current().device_interrupts.load(Ordering::Relaxed);
    let taken_before = taken();
    kprintln!(
        "ft: primary: the checkpoint pipeline runs on cpu {}, beside the guest; the link's \
         receive {}",
        percpu::current_index(),
        match routed {
            true => "interrupts come here",
            false => "is polled every millisecond",
        }
    );
    while pipe.running() {
        if !pipe.turn() {
            instr::hlt();
        }
    }
    if routed {
        // No other device's interrupt comes to this CPU: these are all the link's.
        kprintln!(
            "ft: primary: the checkpoint pipeline on cpu {} stops; it took {} of the link's \
             receive interrupts",
            percpu::current_index(),
            taken() - taken_before
        );
        if let Some(bsp) = percpu::cpu(0) {
            pipe.wire.lock().link.route_interrupts(bsp.apic_id());
        }
    }
    apic::timer_stop();
}
