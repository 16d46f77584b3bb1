// SPDX-License-Identifier: MIT OR Apache-2.0
//! The primary's running figures, printed every few seconds and at the end:
//!
//! `ft: primary: <N> epochs (<R>/s), epoch <ms> ms, dirty <D> pages/epoch, stun <S> us avg
//! (<M> max, harvest <H> us), copy of the same pages <C> us: stun/copy <X>, waited for the
//! sender <W> times, lazy: <a> copied at stun, <h> copied after it (by the pipeline's CPU),
//! <b> copy-on-write, <c> sent on fault,
//! <d> sent from guest memory, <s> spurious faults, <t> writes tracked; wire <B> bytes/page
//! (<r> of 4096; deltas <D> of <P> pages sent, copy cache <c> copies, <h>% hits), link <K>
//! KiB/s; stun parts (us avg): harvest <H>, state <S>, copy <C>,
//! protect <P>, flush <F>, plan <L>, other <O>; heap <K> KiB in use`
//!
//! The stun's parts: the dirty-set harvest, the vCPU and device state capture, the copy of hot
//! pages into stun buffers, the write protection of cold ones, the nested TLB flush, the
//! checkpoint's planning (merging the dirty set, its history, the hot/cold plan:
//! `StunReport::plan_ns`; the sender encodes the state and dirty-list records after the
//! stun), and the rest. With a guest network card a second
//! line follows: `ft: primary: guest network: <S> frames out (...), <D> in, transmit held
//! back <B> times (output buffer full); <K> epochs held frames: stun to acknowledgement <T> us
//! avg: encode <E>, transfer and apply <A>` (the output-commit delay the frames waited, from
//! the stun of the epoch that sent them).
//!
//! Then the sender's line (`stats::sender`) and the guest CPU's holds of the checkpoint lock
//! (`stats::holds`).
//!
//! With `ft_trace=on`, a line per checkpoint, `ft: trace epoch <N> at <ms> ms: length <us> us,
//! stun <us> us, dirty <pages> pages`, and per acknowledgement, `ft: trace ack <N> at <ms> ms:
//! <bytes> bytes` (times since the stats began), for plots (`scripts/bench`).

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use castor_ft::epoch::lazy::LazyStats;
use castor_ft::pair::primary::{CopyStats, SentEpoch, StunReport};
use castor_ft::stream::PAGE_SIZE;

use super::MS;
pub use holds::GuestHolds;
pub use sender::SenderTime;

/// The guest's CPU's holds of the checkpoint lock.
mod holds;
/// The sender's and the link's share of the time.
mod sender;
use crate::kprintln;
use crate::mm::pagetable::Format;
use crate::vmm::guest_mem::GuestMemory;

/// How often the summary is printed.
const REPORT_EVERY: u64 = 5_000 * MS;
/// Pages each timed copy sample copies ([`Stats::maybe_report`]).
const COPY_SAMPLE_PAGES: usize = 256;
/// Pages of the buffer the samples copy into (over and over).
const SCRATCH_PAGES: usize = 64;

/// Write faults on protected pages.
#[derive(Debug, Default, Clone, Copy)]
pub struct Faults {
    /// Copied into a stun buffer.
    pub copied: u64,
    /// Sent before the write (pool empty).
    pub sent_first: u64,
    /// Through a stale read-only translation of a writable page.
    pub spurious: u64,
    /// First writes since the stun, when protection tracks the dirty set.
    pub tracked: u64,
}

/// The guest network card's traffic through the primary.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetCounts {
    /// Whether the guest has a card (else nothing is reported).
    pub present: bool,
    /// Frames the guest sent (held for their epoch while protected).
    pub sent: u64,
    /// Frames handed to the guest.
    pub delivered: u64,
    /// Rounds in which the guest's transmit ring was held back: the output buffer was full.
    pub held_back: u64,
}

impl NetCounts {
    /// Adds one round of the card's I/O.
    pub fn add(&mut self, a: &crate::vmm::nic_io::NicActivity) {
        self.present = true;
        self.sent += a.sent as u64;
        self.delivered += a.delivered as u64;
        self.held_back += u64::from(a.blocked);
    }

    /// Adds counts gathered elsewhere (the guest's CPU's, since the last stun).
    pub fn add_counts(&mut self, n: &NetCounts) {
        self.present |= n.present;
        self.sent += n.sent;
        self.delivered += n.delivered;
        self.held_back += n.held_back;
    }
}

/// What one stun took, in nanoseconds.
pub struct StunTimes {
    /// Waiting for the sender to finish the previous epoch (`None`: it was idle).
    pub wait: Option<u64>,
    /// The harvest of the dirty set.
    pub harvest: u64,
    /// Capturing vCPU and device state.
    pub state: u64,
    /// The nested TLB flush after it.
    pub flush: u64,
    /// From after the wait to the guest's resumption.
    pub total: u64,
}

/// Sums of the stun's parts (ns).
#[derive(Default)]
struct Parts {
    harvest: u64,
    state: u64,
    copy: u64,
    protect: u64,
    flush: u64,
    plan: u64,
}

/// The primary's counters.
pub struct Stats {
    started: u64,
    last_report: u64,
    /// A summary due since then, left for the pipeline's CPU to print ([`Stats::take_report`]).
    report_due: Option<u64>,
    epochs: u64,
    stun_ns: u64,
    stun_max_ns: u64,
    /// Longest the guest was held stopped by a stun, waiting for the sender included.
    pub longest_stop_ns: u64,
    parts: Parts,
    waited: u64,
    dirty: u64,
    copy_ns: u64,
    copy_pages: u64,
    stunned_pages: u64,
    /// Write faults.
    pub faults: Faults,
    /// The guest's network traffic.
    pub net: NetCounts,
    lazy: LazyStats,
    acked_pages: u64,
    acked_bytes: u64,
    acked_epochs: u64,
    /// Epochs stunned with frames held, not yet acknowledged.
    frame_epochs: VecDeque<u64>,
    /// Sums over the acknowledged epochs that held frames (ns): stun to last record encoded,
    /// then to the acknowledgement (link transfer, the backup's check and apply, the ACK's way
    /// back); and their count.
    frames_encode_ns: u64,
    frames_ack_ns: u64,
    /// Sum and count (ns) of the time from an epoch with frames all encoded to all of its
    /// stream on the wire (sealed and handed to the NIC once).
    frames_wire: (u64, u64),
    frames_epochs: u64,
    /// The primary's cache of sent copies: how it served, and the copies it holds (set by
    /// the caller before a report).
    pub copies: (CopyStats, usize),
    /// Where the pipeline's time went outside the stun.
    pub sender: SenderTime,
    /// The guest's CPU's holds of the checkpoint lock outside stuns.
    pub guest_holds: GuestHolds,
    /// `ft_trace=on`: a line per checkpoint and acknowledgement.
    trace: bool,
    /// When the trace's clock started.
    trace_start: u64,
    scratch: Vec<u8>,
}

impl Stats {
    /// Counters starting now; with `trace`, a line per checkpoint and acknowledgement.
    pub fn new(trace: bool) -> Self {
        Self::with_scratch(trace, vec![0; SCRATCH_PAGES * PAGE_SIZE])
    }

    /// [`new`](Self::new) around a scratch buffer already allocated.
    fn with_scratch(trace: bool, scratch: Vec<u8>) -> Self {
        let now = crate::arch::x86_64::time::now_ns();
        Self {
            started: now,
            last_report: now,
            report_due: None,
            epochs: 0,
            stun_ns: 0,
            stun_max_ns: 0,
            longest_stop_ns: 0,
            parts: Parts::default(),
            waited: 0,
            dirty: 0,
            copy_ns: 0,
            copy_pages: 0,
            stunned_pages: 0,
            faults: Faults::default(),
            net: NetCounts::default(),
            lazy: LazyStats::default(),
            acked_pages: 0,
            acked_bytes: 0,
            acked_epochs: 0,
            frame_epochs: VecDeque::new(),
            frames_encode_ns: 0,
            frames_ack_ns: 0,
            frames_wire: (0, 0),
            frames_epochs: 0,
            copies: (CopyStats::default(), 0),
            sender: SenderTime::default(),
            guest_holds: GuestHolds::default(),
            trace,
            trace_start: now,
            scratch,
        }
    }

    /// A new backup is being synced (re-protection): its epochs count from 0 again, so the
    /// figures start afresh with them (epochs held with frames included, whose numbers the old
    /// backup's would shadow), bar the longest stop, which is the guest's on this host.
    pub fn restart(&mut self) {
        *self = Stats {
            longest_stop_ns: self.longest_stop_ns,
            trace_start: self.trace_start,
            ..Stats::with_scratch(self.trace, core::mem::take(&mut self.scratch))
        };
    }

    /// A stun happened, taking `t` (the copy and protection times are in `report`), ending an
    /// epoch that ran `length_ns`.
    pub fn stunned(&mut self, report: &StunReport, t: &StunTimes, length_ns: u64) {
        if self.trace {
            kprintln!(
                "ft: trace epoch {} at {} ms: length {} us, stun {} us, dirty {} pages",
                report.epoch,
                crate::arch::x86_64::time::now_ns().saturating_sub(self.trace_start) / MS,
                length_ns / 1000,
                t.total / 1000,
                report.dirty
            );
        }
        if report.epoch == 0 {
            // The initial full copy is not an epoch of the workload: rates count from here.
            self.started = crate::arch::x86_64::time::now_ns();
            self.last_report = self.started;
            return;
        }
        self.epochs += 1;
        self.longest_stop_ns = self.longest_stop_ns.max(t.wait.unwrap_or(0) + t.total);
        self.stun_ns += t.total;
        self.stun_max_ns = self.stun_max_ns.max(t.total);
        self.parts.harvest += t.harvest;
        self.parts.state += t.state;
        self.parts.copy += report.copy_ns;
        self.parts.protect += report.protect_ns;
        self.parts.flush += t.flush;
        self.parts.plan += report.plan_ns;
        self.waited += u64::from(t.wait.is_some());
        self.dirty += report.dirty;
        self.stunned_pages += report.dirty;
    }

    /// An epoch holding frames, all encoded `after_encode_ns` ago, is all on the wire now.
    pub fn on_wire(&mut self, after_encode_ns: u64) {
        self.frames_wire = (self.frames_wire.0 + after_encode_ns, self.frames_wire.1 + 1);
    }

    /// Epoch `epoch`, just stunned, holds guest frames.
    pub fn held_frames(&mut self, epoch: u64) {
        // Bounded by the epochs in flight; a lost backup leaves a few stale ones, dropped here.
        if self.frame_epochs.len() >= 64 {
            self.frame_epochs.pop_front();
        }
        self.frame_epochs.push_back(epoch);
    }

    /// The backup acknowledged `sent`, now.
    pub fn acked(&mut self, sent: &SentEpoch) {
        let now = crate::arch::x86_64::time::now_ns();
        if self.trace {
            kprintln!(
                "ft: trace ack {} at {} ms: {} bytes",
                sent.epoch,
                now.saturating_sub(self.trace_start) / MS,
                sent.bytes
            );
        }
        if sent.epoch == 0 {
            return;
        }
        let encode = sent.encoded_ns.saturating_sub(sent.stunned_ns);
        let ack = now.saturating_sub(sent.encoded_ns);
        self.acked_epochs += 1;
        while self.frame_epochs.front().is_some_and(|&e| e < sent.epoch) {
            self.frame_epochs.pop_front();
        }
        if self.frame_epochs.front() == Some(&sent.epoch) {
            self.frame_epochs.pop_front();
            self.frames_encode_ns += encode;
            self.frames_ack_ns += ack;
            self.frames_epochs += 1;
        }
        self.acked_pages += sent.pages;
        self.acked_bytes += sent.bytes;
        let l = &sent.lazy;
        self.lazy.copied_in_stun += l.copied_in_stun;
        self.lazy.copied_after_stun += l.copied_after_stun;
        self.lazy.copied_on_write += l.copied_on_write;
        self.lazy.sent_on_fault += l.sent_on_fault;
        self.lazy.deferred += l.deferred;
    }

    /// Acknowledged checkpoint bytes per second so far.
    pub fn link_bytes_per_sec(&self) -> u64 {
        let ns = crate::arch::x86_64::time::now_ns()
            .saturating_sub(self.started)
            .max(1);
        (u128::from(self.acked_bytes) * 1_000_000_000 / u128::from(ns)) as u64
    }

    /// If the summary is due, times a plain copy of guest pages (outside the stun) for the
    /// stun/copy ratio, then prints it, or with `defer` (the guest's CPU is stopped for a
    /// stun, and the pipeline's CPU runs) leaves the printing to [`Stats::take_report`], so the
    /// guest does not wait for the console.
    pub fn maybe_report<F: Format>(
        &mut self,
        now: u64,
        mem: &mut GuestMemory<F>,
        dirty: &[u64],
        defer: bool,
    ) {
        if !defer && let Some(text) = self.take_report() {
            print_lines(&text);
        }
        if now < self.last_report + REPORT_EVERY {
            return;
        }
        self.time_copy(mem, dirty);
        match defer {
            true => {
                self.last_report = now;
                self.report_due = Some(now);
            }
            false => self.report(now),
        }
    }

    /// The summary [`Stats::maybe_report`] left for later, if any, to print once the lock on
    /// these statistics is let go.
    pub fn take_report(&mut self) -> Option<String> {
        let now = self.report_due.take()?;
        Some(self.summary(now))
    }

    /// Times a plain copy of [`COPY_SAMPLE_PAGES`] guest pages: the last dirty set's, round
    /// and round, or pages spread over RAM when it is empty (an idle epoch). A fixed size
    /// keeps each sample's overhead and clock granularity from skewing the per-page cost.
    fn time_copy<F: Format>(&mut self, mem: &GuestMemory<F>, dirty: &[u64]) {
        let ram_pages = mem.size() / PAGE_SIZE as u64;
        if ram_pages == 0 {
            return;
        }
        let spread = (ram_pages / COPY_SAMPLE_PAGES as u64).max(1);
        let gfn = |i: usize| match dirty.len() {
            0 => (i as u64 * spread) % ram_pages,
            n => dirty[i % n],
        };
        let start = crate::arch::x86_64::time::now_ns();
        let mut copied = 0;
        for i in 0..COPY_SAMPLE_PAGES {
            let at = (i % SCRATCH_PAGES) * PAGE_SIZE;
            if let Some(page) = mem.page(gfn(i)) {
                self.scratch[at..at + PAGE_SIZE].copy_from_slice(page);
                copied += 1;
            }
        }
        self.copy_ns += crate::arch::x86_64::time::now_ns() - start;
        self.copy_pages += copied;
    }

    /// Prints the summary now.
    pub fn report(&mut self, now: u64) {
        let text = self.summary(now);
        print_lines(&text);
    }

    /// The summary as of `now`, one line per figure group.
    fn summary(&mut self, now: u64) -> String {
        self.last_report = now;
        self.report_due = None;
        let mut text = String::new();
        let epochs = self.epochs.max(1);
        let secs_x100 = (now.saturating_sub(self.started) / (10 * MS)).max(1);
        let stun_ns = self.stun_ns / epochs;
        // Copy time of the same number of pages as the average stun handled.
        let copy_ns = self.copy_ns * (self.stunned_pages / epochs) / self.copy_pages.max(1);
        let ratio_x100 = stun_ns * 100 / copy_ns.max(1);
        let (stun_us, copy_us) = (stun_ns / 1000, copy_ns / 1000);
        let per_page = self.acked_bytes / self.acked_pages.max(1);
        let l = &self.lazy;
        let p = &self.parts;
        let harvest_us = p.harvest / epochs / 1000;
        let other = self
            .stun_ns
            .saturating_sub(p.harvest + p.state + p.copy + p.protect + p.flush + p.plan);
        let _ = writeln!(
            text,
            "ft: primary: {} epochs ({}/s), dirty {} pages/epoch, stun {stun_us} us avg ({} max, \
             harvest {} us), copy of the same pages {copy_us} us: stun/copy {}.{:02}, waited \
             for the sender {} times, lazy: {} copied at stun, {} copied after it, {} \
             copy-on-write, {} sent on \
             fault, {} sent from guest memory, {} spurious faults, {} writes tracked; wire \
             {per_page} bytes/page ({}.{:03} of 4096; deltas {} of {} pages sent, copy cache {} \
             copies, {}.{}% hits), link {} KiB/s; stun parts (us avg): \
             harvest {}, state {}, copy {}, protect {}, flush {}, plan {}, other {}; heap {} \
             KiB in use",
            self.epochs,
            self.epochs * 100 / secs_x100,
            self.dirty / epochs,
            self.stun_max_ns / 1000,
            harvest_us,
            ratio_x100 / 100,
            ratio_x100 % 100,
            self.waited,
            l.copied_in_stun,
            l.copied_after_stun,
            self.faults.copied,
            self.faults.sent_first,
            l.deferred
                .saturating_sub(self.faults.copied + self.faults.sent_first),
            self.faults.spurious,
            self.faults.tracked,
            per_page / 4096,
            per_page * 1000 / 4096 % 1000,
            self.copies.0.deltas,
            self.copies.0.lookups,
            self.copies.1,
            self.copies.0.hit_permille() / 10,
            self.copies.0.hit_permille() % 10,
            self.link_bytes_per_sec() / 1024,
            harvest_us,
            p.state / epochs / 1000,
            p.copy / epochs / 1000,
            p.protect / epochs / 1000,
            p.flush / epochs / 1000,
            p.plan / epochs / 1000,
            other / epochs / 1000,
            crate::mm::heap::usage().0 / 1024,
        );
        let n = &self.net;
        if n.present {
            let held = self.frames_epochs.max(1);
            let _ = writeln!(
                text,
                "ft: primary: guest network: {} frames out (each held until its epoch was \
                 acknowledged), {} in, transmit held back {} times (output buffer full); {} \
                 epochs held frames: stun to acknowledgement {} us avg: encode {}, transfer \
                 and apply {} (all on the wire {} us after the encode)",
                n.sent,
                n.delivered,
                n.held_back,
                self.frames_epochs,
                (self.frames_encode_ns + self.frames_ack_ns) / held / 1000,
                self.frames_encode_ns / held / 1000,
                self.frames_ack_ns / held / 1000,
                self.frames_wire.0 / self.frames_wire.1.max(1) / 1000,
            );
        }
        let elapsed = now.saturating_sub(self.started);
        let tsc_hz = crate::arch::x86_64::time::tsc_hz();
        let _ = writeln!(text, "{}", self.sender.line(elapsed, tsc_hz));
        let _ = writeln!(text, "{}", self.guest_holds.line(elapsed));
        text
    }
}

/// Prints `text` a line at a time.
pub fn print_lines(text: &str) {
    for line in text.lines() {
        kprintln!("{line}");
    }
}
