// SPDX-License-Identifier: MIT OR Apache-2.0
//! The primary's epoch cycle.
//!
//! ```text
//!   guest runs ──► stun(dirty set, vCPU state, device state)        (guest stopped)
//!                    hot pages  → copied into stun buffers now
//!                    cold pages → write-protected, left in guest memory
//!   guest runs ◄── (resume)
//!      │  write to a protected page → on_write_fault: copy into a stun buffer (or, with
//!      │  the pool empty, send it first), then unprotect and let the write proceed
//!      │  pump_sender: streams the epoch's pages from buffers or guest memory, then EpochEnd
//!      ▼  on_ack(N): releases epoch N's held output, tells the backup it did
//!   next stun (if the sender is still busy, the caller keeps it going first: the stun waits)
//! ```
//!
//! The first epoch (0) is the initial full copy: every page of guest memory. The caller owns
//! the hardware: it harvests the dirty set, captures state, flushes the nested TLB after the
//! protections change, and moves [`Primary::next_message`] onto the peer link.
//!
//! A stun the primary refuses ([`PrimaryError::SenderBusy`], an unreadable vCPU state, a page
//! beyond guest RAM) changes nothing and loses nothing: the dirty pages it was given (whose
//! hardware dirty flags the caller already cleared) are kept and join the next stun's.
//! Write faults that are not the primary's own (a stale translation after a protection was
//! lifted without a flush) are told apart by [`GuestRam::is_protected`]: see [`faults`].

mod chunks;
mod copies;
mod faults;
mod pages;
mod precopy;
mod records;
mod sorted;
mod stale;
mod tracking;

pub use self::copies::CopyStats;
pub use self::precopy::PrecopyRound;
pub use self::stale::StaleTranslations;
pub use self::tracking::DirtySource;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::convert::Infallible;
use core::fmt;

pub use self::sorted::sort_unique;

use self::chunks::Chunks;
use self::pages::Pages;
use super::digest::TrackedDigest;
use super::message::Message;
use crate::epoch::lazy::{History, LazyEpoch, LazyStats};
use crate::epoch::output::{OutputBuffer, OutputError};
use crate::stream::{
    EpochWriter, MAX_DEVICE_STATE_LEN, MAX_VCPU_STATE_LEN, PageBuf, StreamHeader, WriteError,
};

/// Checkpoint stream bytes per peer-link message.
pub const CHUNK_BYTES: usize = 32 * 1024;
/// Completed epochs kept for [`Primary::take_completed`].
const MAX_COMPLETED: usize = 64;
/// The sender stops filling when this many stream bytes wait for the link: pages stay in
/// guest memory (protected) rather than piling up in host memory.
const BACKLOG_BYTES: usize = 2 * CHUNK_BYTES;

/// The guest memory the primary protects and reads, as the hypervisor provides it.
pub trait GuestRam {
    /// Page `gfn`'s current contents (`None` beyond guest RAM).
    fn page(&self, gfn: u64) -> Option<&PageBuf>;
    /// Makes page `gfn` read-only for the guest (`true`) or writable again (`false`).
    /// Lifting a protection need not flush the nested TLB: a write through the stale
    /// read-only translation then faults spuriously ([`FaultOutcome::Spurious`]).
    fn set_protected(&mut self, gfn: u64, protected: bool);
    /// Whether the nested page table (not a TLB) makes page `gfn` read-only for the guest now.
    fn is_protected(&self, gfn: u64) -> bool;
    /// Makes each of `gfns` (ascending) read-only: [`GuestRam::set_protected`] for each, which
    /// a hypervisor can do with fewer page-table walks.
    fn protect_many(&mut self, gfns: &[u64]) {
        for &gfn in gfns {
            self.set_protected(gfn, true);
        }
    }
}

/// Sizes of the primary's pools.
#[derive(Clone, Copy, Debug)]
pub struct PrimaryConfig {
    /// Guest RAM pages.
    pub ram_pages: u64,
    /// Stun buffers (pages).
    pub stun_buffers: usize,
    /// Sent page copies kept to make deltas against (pages; 0: no deltas).
    pub delta_cache: usize,
    /// A page dirtied in at least this many of the last 8 epochs is copied at the stun.
    pub hot_threshold: u32,
    /// Output held at most (bytes); more ends the epoch early.
    pub output_capacity: usize,
    /// Keep a whole-memory digest per epoch (costs a hash of every page sent).
    pub digests: bool,
    /// Stream session id.
    pub session: u128,
    /// Learn the dirty set by write protection instead of the caller's harvest (a CPU without
    /// nested dirty flags): every page is write-protected at each stun, and the first write
    /// to one faults ([`FaultOutcome::Tracked`]), marking it dirty and writable again.
    pub track_writes: bool,
    /// A clock in nanoseconds for [`StunReport`]'s parts (any monotonic source; one that
    /// always reads 0 reports zeros).
    pub clock: fn() -> u64,
}

/// Why the primary refused something. None of these lose guest state or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrimaryError {
    /// Guest RAM too large for the stream format, or no memory for the pools.
    Setup(&'static str),
    /// The checkpoint writer refused a record: a bug, since every bound a caller can exceed is
    /// checked first ([`PrimaryError::StateTooLarge`]).
    Stream(WriteError<Infallible>),
    /// The caller named a page beyond guest RAM.
    NoSuchPage(u64),
    /// The backup acknowledged an epoch that was not completely sent: it lies.
    AckAhead {
        /// The epoch acknowledged.
        acked: u64,
        /// The newest epoch completely sent, if any.
        sent: Option<u64>,
    },
    /// Output could not be held or released.
    Output(OutputError),
    /// A pre-copy round asked for after the first checkpoint, or of a primary that tracks
    /// writes by protection (it has no dirty log to tell what changed during a round).
    NoPrecopy(&'static str),
    /// A stun came while the previous epoch's pages were still being sent: keep pumping the
    /// sender (the guest stays stopped) until [`Primary::sender_idle`].
    SenderBusy,
    /// A stun was given no vCPU state (the capture failed): an epoch the backup could not
    /// resume from is never sent. Its dirty pages wait for the next stun.
    NoVcpuState,
    /// A state too large for its checkpoint record (`what`, `len` bytes): refused before
    /// anything changes, so its dirty pages wait for the next stun.
    StateTooLarge {
        /// Which state.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for PrimaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setup(what) => write!(f, "cannot set up checkpointing: {what}"),
            Self::Stream(e) => write!(f, "checkpoint stream: {e}"),
            Self::NoSuchPage(gfn) => write!(f, "page {gfn:#x} is not guest RAM"),
            Self::AckAhead { acked, sent } => match sent {
                Some(s) => write!(f, "backup acknowledged epoch {acked}, only {s} was sent"),
                None => write!(f, "backup acknowledged epoch {acked} before any was sent"),
            },
            Self::Output(e) => write!(f, "{e}"),
            Self::SenderBusy => f.write_str("the previous epoch is still being sent"),
            Self::NoPrecopy(why) => write!(f, "no pre-copy round: {why}"),
            Self::NoVcpuState => f.write_str("the vCPU state could not be captured"),
            Self::StateTooLarge { what, len } => {
                write!(f, "the {what} ({len} bytes) is too large for a checkpoint")
            }
        }
    }
}

impl From<WriteError<Infallible>> for PrimaryError {
    fn from(e: WriteError<Infallible>) -> Self {
        Self::Stream(e)
    }
}

impl From<OutputError> for PrimaryError {
    fn from(e: OutputError) -> Self {
        Self::Output(e)
    }
}

/// The epoch whose pages are being streamed.
struct Sending {
    writer: EpochWriter<Chunks>,
    /// Records the stun captured, not on the stream yet (written before the first page).
    records: Option<records::Records>,
    lazy: LazyEpoch,
    /// The full copy (every page): no deltas, and its pages are not cached.
    full: bool,
    pages: u64,
    /// The clock at its stun.
    stunned_ns: u64,
}

impl Sending {
    /// Puts the records the stun captured on the stream, once, before the epoch's first page.
    ///
    /// # Errors
    /// A stream error (a bug: the stun checked every bound).
    fn write_records(&mut self) -> Result<(), PrimaryError> {
        match self.records.take() {
            Some(records) => records.write(&mut self.writer),
            None => Ok(()),
        }
    }
}

/// What a stun did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StunReport {
    /// The epoch checkpointed.
    pub epoch: u64,
    /// Distinct dirty pages.
    pub dirty: u64,
    /// Hot pages copied into stun buffers now.
    pub copied: u64,
    /// Cold pages write-protected for the lazy sender.
    pub protected: u64,
    /// Output bytes the epoch produced (held until acknowledged).
    pub output: u64,
    /// Time spent copying hot pages into stun buffers ([`PrimaryConfig::clock`]).
    pub copy_ns: u64,
    /// Time spent write-protecting pages.
    pub protect_ns: u64,
    /// The rest of the stun's work here, its planning: merging the dirty set, recording its
    /// history, the hot/cold plan (the state and dirty-list records are the sender's to encode).
    pub plan_ns: u64,
}

/// An epoch completely sent, waiting for its acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentEpoch {
    /// The epoch.
    pub epoch: u64,
    /// Whole-memory digest at its stun (when digests are on).
    pub digest: Option<u128>,
    /// Pages sent.
    pub pages: u64,
    /// Stream bytes of the epoch, `EpochEnd` included.
    pub bytes: u64,
    /// How its pages went.
    pub lazy: LazyStats,
    /// The clock ([`PrimaryConfig::clock`]) at its stun.
    pub stunned_ns: u64,
    /// The clock when its last record was encoded (queued for the link, not yet sent).
    pub encoded_ns: u64,
}

/// How [`Primary::on_write_fault`] dealt with a write to a protected page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// Copied into a stun buffer; the page is writable again.
    Copied,
    /// No buffer was free: the page was put on the stream first; writable again.
    SentFirst,
    /// Page tracked by write protection ([`PrimaryConfig::track_writes`]): now marked dirty
    /// and writable again.
    Tracked,
    /// The page is guest RAM and writable in the nested table: the fault came from a stale
    /// read-only translation (a protection lifted without a flush). Nothing changed; resume.
    Spurious,
    /// Beyond guest RAM, or a page write-protected by somebody else: a real fault, the
    /// caller's business.
    NotOurs,
}

/// The primary's side of the pair. See the [module docs](self).
pub struct Primary {
    header: StreamHeader,
    header_sent: bool,
    history: History,
    pages: Pages,
    sending: Option<Sending>,
    idle_sink: Option<Chunks>,
    control: VecDeque<Vec<u8>>,
    next_epoch: u64,
    output: OutputBuffer,
    sent: VecDeque<SentEpoch>,
    /// Completed epochs not yet taken by [`Primary::take_completed`] (bounded: the oldest go
    /// if nobody takes them).
    completed: VecDeque<SentEpoch>,
    last_sent: Option<u64>,
    acked: Option<u64>,
    ram_pages: u64,
    /// The bitmap [`sorted::sort_unique`] orders a harvest with, kept between stuns.
    sort_bits: Vec<u64>,
    /// Dirty pages of refused stuns, for the next one.
    carried: Vec<u64>,
    /// With [`PrimaryConfig::track_writes`]: the pages written (faulted) since the last stun.
    tracked: Option<Vec<u64>>,
    /// [`PrimaryConfig::clock`].
    clock: fn() -> u64,
    /// The full copy has begun (a pre-copy round or the first checkpoint sent every page).
    full_copy_begun: bool,
    /// A checkpoint (an epoch with vCPU and device state) has been taken.
    checkpointed: bool,
    /// Hot pages are copied after the stun ([`Primary::copy_hot_after_stun`]).
    copy_hot_after_stun: bool,
}

impl fmt::Debug for Primary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Primary")
            .field("next_epoch", &self.next_epoch)
            .field("last_sent", &self.last_sent)
            .field("acked", &self.acked)
            .finish_non_exhaustive()
    }
}

impl Primary {
    /// A primary for a guest of `config.ram_pages` pages.
    ///
    /// # Errors
    /// [`PrimaryError::Setup`] if the memory is too large or the pools cannot be allocated.
    pub fn new(config: &PrimaryConfig) -> Result<Self, PrimaryError> {
        let header = StreamHeader::new(config.ram_pages, config.session).ok_or(
            PrimaryError::Setup("guest RAM too large for the checkpoint stream"),
        )?;
        let pages = usize::try_from(config.ram_pages)
            .map_err(|_| PrimaryError::Setup("guest RAM too large"))?;
        Ok(Self {
            header,
            header_sent: false,
            history: History::new(pages, config.hot_threshold),
            pages: Pages::new(
                config.stun_buffers,
                pages,
                config.delta_cache,
                config.digests,
                config.track_writes,
            )?,
            sending: None,
            idle_sink: Some(Chunks::default()),
            control: VecDeque::new(),
            next_epoch: 0,
            output: OutputBuffer::new(0, config.output_capacity),
            sent: VecDeque::new(),
            completed: VecDeque::new(),
            last_sent: None,
            acked: None,
            ram_pages: config.ram_pages,
            sort_bits: Vec::new(),
            carried: Vec::new(),
            tracked: config.track_writes.then(Vec::new),
            clock: config.clock,
            full_copy_begun: false,
            checkpointed: false,
            copy_hot_after_stun: false,
        })
    }

    /// From the next stun on, whether hot pages are left in guest memory, write-protected,
    /// each with its stun buffer set aside, for [`Primary::copy_hot`] to copy after the stun
    /// (a CPU beside the guest's does it while the guest runs) rather than copied by the stun.
    /// A guest write that comes first copies the page into its buffer. Not with write tracking
    /// (every page stays protected there) nor for the full copy.
    pub fn copy_hot_after_stun(&mut self, on: bool) {
        self.copy_hot_after_stun = on;
    }

    /// Copies the next hot page whose copy was left for after the stun into its buffer and
    /// lifts its protection; whether there was one.
    ///
    /// # Errors
    /// [`PrimaryError::NoSuchPage`] if `ram` lacks the page (nothing changes).
    pub fn copy_hot(&mut self, ram: &mut dyn GuestRam) -> Result<bool, PrimaryError> {
        let Some(sending) = &mut self.sending else {
            return Ok(false);
        };
        let Some((gfn, n)) = sending.lazy.next_hot_copy() else {
            return Ok(false);
        };
        self.pages.copy_in(ram, gfn, n)?;
        sending.lazy.hot_copied(gfn);
        ram.set_protected(gfn, false);
        Ok(true)
    }

    /// The epoch the guest is running in now (its checkpoint is the next stun).
    #[must_use]
    pub fn current_epoch(&self) -> u64 {
        self.next_epoch
    }

    /// The newest epoch the backup acknowledged.
    #[must_use]
    pub fn acked(&self) -> Option<u64> {
        self.acked
    }

    /// How the cache of sent copies (the bases of deltas) served so far, and the copies it
    /// holds now.
    #[must_use]
    pub fn copy_stats(&self) -> (CopyStats, usize) {
        self.pages.copy_stats()
    }

    /// Whether the previous epoch's pages are all on the stream.
    #[must_use]
    pub fn sender_idle(&self) -> bool {
        self.sending.is_none()
    }

    /// Whether a control message or stream bytes wait for
    /// [`next_control`](Self::next_control) / [`next_stream`](Self::next_stream).
    #[must_use]
    pub fn messages_waiting(&self) -> bool {
        !self.control.is_empty() || self.stream_queued() > 0
    }

    /// Stream bytes encoded and not yet taken by [`next_stream`](Self::next_stream).
    #[must_use]
    pub fn stream_queued(&self) -> usize {
        match &self.sending {
            Some(s) => s.writer.sink().queued,
            None => self.idle_sink.as_ref().map_or(0, |s| s.queued),
        }
    }

    /// Whether guest output waits for an acknowledgement.
    #[must_use]
    pub fn output_waiting(&self) -> bool {
        self.output.waiting()
    }

    /// Bytes of output [`hold_output`](Self::hold_output) still takes.
    #[must_use]
    pub fn output_room(&self) -> usize {
        self.output.room()
    }

    /// Holds guest output produced in the current epoch.
    ///
    /// # Errors
    /// [`OutputError::Full`]: nothing held; stun now (the acknowledgement frees room).
    pub fn hold_output(&mut self, bytes: &[u8]) -> Result<(), OutputError> {
        self.output.hold(bytes)
    }

    /// Checkpoints the current epoch: the guest is stopped, `dirty` is the set of pages it wrote
    /// since the last stun (ignored by the full copy, the first checkpoint without pre-copy
    /// rounds before it, which sends every page; joined by the pages of refused stuns and, when
    /// tracking writes, those that faulted), `vcpu` and `devices` its
    /// captured state (an empty `vcpu`: the capture failed), `guest_time` its clock. Copies hot
    /// pages and write-protects cold ones (when tracking writes, every dirty page) through
    /// `ram`; the caller then flushes the nested TLB and resumes the guest.
    ///
    /// # Errors
    /// [`PrimaryError::SenderBusy`] before the previous epoch is all sent,
    /// [`PrimaryError::NoVcpuState`] for an empty `vcpu` and [`PrimaryError::NoSuchPage`] for
    /// a dirty page beyond guest RAM: nothing changes then, and the dirty pages (those in guest
    /// RAM) join the next stun's. Or a stream error.
    pub fn stun(
        &mut self,
        ram: &mut dyn GuestRam,
        dirty: &[u64],
        guest_time: u64,
        vcpu: &[u8],
        devices: &[u8],
    ) -> Result<StunReport, PrimaryError> {
        let started = (self.clock)();
        let (full, dirty) = self.gather(dirty);
        let mut output_len = 0;
        self.output.held_for(self.output.current_epoch(), |bytes| {
            output_len += bytes.len()
        });
        let too_large = [
            ("vCPU state", vcpu.len(), MAX_VCPU_STATE_LEN),
            ("device state", devices.len(), MAX_DEVICE_STATE_LEN),
            ("held output", output_len, MAX_DEVICE_STATE_LEN),
        ]
        .into_iter()
        .find(|&(_, len, max)| len > max);
        let refusal = if self.sending.is_some() {
            Some(PrimaryError::SenderBusy)
        } else if vcpu.is_empty() {
            Some(PrimaryError::NoVcpuState)
        } else if let Some((what, len, _)) = too_large {
            Some(PrimaryError::StateTooLarge { what, len })
        } else {
            self.beyond_ram(&dirty)
        };
        if let Some(e) = refusal {
            self.carry(full, dirty);
            return Err(e);
        }
        let (epoch, writer) = self.begin_epoch(guest_time)?;
        let mut output = Vec::new();
        self.output
            .held_for(epoch, |bytes| output.extend_from_slice(bytes));
        let output_len = output.len() as u64;
        if !full {
            self.history.record(&dirty);
        }
        let hot_later = self.copy_hot_after_stun && self.tracked.is_none() && !full;
        let (lazy, plan) = LazyEpoch::plan(&dirty, &self.history, &mut self.pages.pool, hot_later);
        let copy_start = (self.clock)();
        for &(gfn, n) in &plan.copy {
            self.pages.copy_in(ram, gfn, n)?;
        }
        let protect_start = (self.clock)();
        ram.protect_many(&plan.protect);
        if self.tracked.is_some() {
            // Copied (hot) pages too: every page is protected until its next write.
            for &(gfn, _) in &plan.copy {
                ram.set_protected(gfn, true);
            }
        }
        let protect_end = (self.clock)();
        self.checkpointed = true;
        let (dirty_len, copied, protected) = (dirty.len(), plan.copy.len(), plan.protect.len());
        let records = records::Records {
            vcpu: vcpu.to_vec(),
            devices: devices.to_vec(),
            output,
            dirty,
        };
        self.start_sending(writer, Some(records), lazy, full, started);
        if dirty_len == 0 {
            self.pump_sender(ram, 0)?;
        }
        let done = (self.clock)();
        let copy_ns = protect_start.saturating_sub(copy_start);
        let protect_ns = protect_end.saturating_sub(protect_start);
        Ok(StunReport {
            epoch,
            dirty: dirty_len as u64,
            copied: copied as u64,
            protected: protected as u64,
            output: output_len,
            copy_ns,
            protect_ns,
            plan_ns: done
                .saturating_sub(started)
                .saturating_sub(copy_ns + protect_ns),
        })
    }

    /// [`PrimaryError::NoSuchPage`] for the first of `pages` (ascending, as
    /// [`Primary::gather`] leaves them) beyond guest RAM, if any: they come last.
    fn beyond_ram(&self, pages: &[u64]) -> Option<PrimaryError> {
        let beyond = pages.partition_point(|&g| g < self.ram_pages);
        pages.get(beyond).map(|&gfn| PrimaryError::NoSuchPage(gfn))
    }

    /// The pages an epoch sends: every page for the full copy (`true`), otherwise `dirty`
    /// joined by the pages of refused stuns and, when tracking writes, those that faulted;
    /// ascending, each once.
    fn gather(&mut self, dirty: &[u64]) -> (bool, Vec<u64>) {
        if !self.full_copy_begun {
            return (true, (0..self.ram_pages).collect());
        }
        let tracked = self
            .tracked
            .as_mut()
            .map(core::mem::take)
            .unwrap_or_default();
        let mut all = core::mem::take(&mut self.carried);
        all.reserve_exact(dirty.len() + tracked.len());
        all.extend_from_slice(dirty);
        all.extend(tracked);
        // The AMD-V walk's harvest comes out strictly ascending (nothing to do); VT-x's log in
        // the order of first writes.
        sorted::sort_unique(&mut all, self.ram_pages, &mut self.sort_bits);
        (false, all)
    }

    /// A refused epoch's pages (those in guest RAM) wait for the next one (the full copy's
    /// need not: the next is the full copy again).
    fn carry(&mut self, full: bool, mut dirty: Vec<u64>) {
        if !full {
            dirty.retain(|&g| g < self.ram_pages);
            self.carried = dirty;
        }
    }

    /// Ends the running epoch's output and begins its record on the stream (after the stream
    /// header, the first time).
    fn begin_epoch(&mut self, guest_time: u64) -> Result<(u64, EpochWriter<Chunks>), PrimaryError> {
        let epoch = self.next_epoch;
        let ended = self.output.end_epoch();
        debug_assert_eq!(ended, epoch);
        let sink = self.idle_sink.take().unwrap_or_default();
        if !self.header_sent {
            self.control
                .push_back(Message::Stream(&self.header.encode()).encode());
            self.header_sent = true;
        }
        Ok((
            epoch,
            EpochWriter::begin(sink, &self.header, epoch, guest_time)?,
        ))
    }

    /// Hands the begun epoch to the lazy sender; the guest runs in the next.
    fn start_sending(
        &mut self,
        writer: EpochWriter<Chunks>,
        records: Option<records::Records>,
        lazy: LazyEpoch,
        full: bool,
        stunned_ns: u64,
    ) {
        self.full_copy_begun = true;
        self.next_epoch += 1;
        self.sending = Some(Sending {
            writer,
            records,
            lazy,
            full,
            pages: 0,
            stunned_ns,
        });
    }

    /// Streams up to `max_pages` pending pages (0: only finish an epoch with none left),
    /// stopping early while more than a couple of chunks wait for the link. Returns the pages
    /// sent.
    ///
    /// # Errors
    /// A stream error (a bug or a bound exceeded).
    pub fn pump_sender(
        &mut self,
        ram: &mut dyn GuestRam,
        max_pages: usize,
    ) -> Result<usize, PrimaryError> {
        let mut n = 0;
        let Some(sending) = &mut self.sending else {
            return Ok(0);
        };
        while n < max_pages && sending.writer.sink().queued < BACKLOG_BYTES {
            let Some((gfn, source)) = sending.lazy.next() else {
                break;
            };
            self.pages.send(sending, ram, gfn, source)?;
            n += 1;
        }
        self.complete_if_done()?;
        Ok(n)
    }

    /// Ends the epoch on the stream once its pages are all out.
    fn complete_if_done(&mut self) -> Result<(), PrimaryError> {
        if !self.sending.as_ref().is_some_and(|s| s.lazy.done()) {
            return Ok(());
        }
        let Some(mut sending) = self.sending.take() else {
            return Ok(());
        };
        sending.write_records()?;
        let (sink, summary) = sending.writer.finish()?;
        self.idle_sink = Some(sink);
        self.last_sent = Some(summary.epoch);
        let sent = SentEpoch {
            epoch: summary.epoch,
            digest: self.pages.digest.as_ref().map(TrackedDigest::value),
            pages: sending.pages,
            bytes: summary.bytes,
            lazy: sending.lazy.stats,
            stunned_ns: sending.stunned_ns,
            encoded_ns: (self.clock)(),
        };
        if self.completed.len() >= MAX_COMPLETED {
            self.completed.pop_front();
        }
        self.completed.push_back(sent);
        self.sent.push_back(sent);
        Ok(())
    }

    /// The next message for the backup, if any: control messages first, then stream bytes.
    pub fn next_message(&mut self) -> Option<Vec<u8>> {
        self.next_control().or_else(|| self.next_stream())
    }

    /// The next control message (the stream header, `RELEASED`), small and urgent.
    pub fn next_control(&mut self) -> Option<Vec<u8>> {
        self.control.pop_front()
    }

    /// The next chunk of checkpoint stream bytes (send after every control message).
    pub fn next_stream(&mut self) -> Option<Vec<u8>> {
        let sink = match &mut self.sending {
            Some(s) => s.writer.sink_mut(),
            None => self.idle_sink.as_mut()?,
        };
        let chunk = sink.pop()?;
        let message = Message::Stream(&chunk).encode();
        sink.recycle(chunk);
        Some(message)
    }

    /// The next epoch completely sent since the last call, oldest first (each once, whether
    /// or not it was acknowledged since): for reporting its digest.
    pub fn take_completed(&mut self) -> Option<SentEpoch> {
        self.completed.pop_front()
    }

    /// The backup acknowledged `epoch`: passes the output of every epoch up to it to
    /// `release`, oldest first, queues a `RELEASED` notice, and returns what was sent for that
    /// epoch (`None` for a repeated or old acknowledgement).
    ///
    /// # Errors
    /// [`PrimaryError::AckAhead`] (nothing released) for an epoch not completely sent.
    pub fn on_ack(
        &mut self,
        epoch: u64,
        release: impl FnMut(&[u8]),
    ) -> Result<Option<SentEpoch>, PrimaryError> {
        if self.last_sent.is_none_or(|s| epoch > s) {
            return Err(PrimaryError::AckAhead {
                acked: epoch,
                sent: self.last_sent,
            });
        }
        if self.acked.is_some_and(|a| a >= epoch) {
            return Ok(None);
        }
        self.output.acknowledge(epoch, release)?;
        self.acked = Some(epoch);
        self.control.push_back(Message::Released(epoch).encode());
        let mut found = None;
        while let Some(s) = self.sent.front()
            && s.epoch <= epoch
        {
            found = self.sent.pop_front();
        }
        Ok(found.filter(|s| s.epoch == epoch))
    }
}
