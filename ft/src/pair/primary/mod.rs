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

mod chunks;
mod pages;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::convert::Infallible;
use core::fmt;

use self::chunks::Chunks;
use self::pages::Pages;
use super::digest::TrackedDigest;
use super::message::Message;
use super::{DEVICES, OUTPUT_DEVICE};
use crate::epoch::lazy::{History, LazyEpoch, LazyStats, Source, WriteVerdict};
use crate::epoch::output::{OutputBuffer, OutputError};
use crate::stream::{EpochWriter, MAX_DIRTY_GFNS_PER_RECORD, PageBuf, StreamHeader, WriteError};

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
    fn set_protected(&mut self, gfn: u64, protected: bool);
}

/// Sizes of the primary's pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrimaryConfig {
    /// Guest RAM pages.
    pub ram_pages: u64,
    /// Stun buffers (pages).
    pub stun_buffers: usize,
    /// A page dirtied in at least this many of the last 8 epochs is copied at the stun.
    pub hot_threshold: u32,
    /// Output held at most (bytes); more ends the epoch early.
    pub output_capacity: usize,
    /// Keep a whole-memory digest per epoch (costs a hash of every page sent).
    pub digests: bool,
    /// Stream session id.
    pub session: u128,
}

/// Why the primary refused something. None of these lose guest state or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrimaryError {
    /// Guest RAM too large for the stream format, or no memory for the pools.
    Setup(&'static str),
    /// The checkpoint writer refused a record (a bug or a bound exceeded).
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
    /// A stun came while the previous epoch's pages were still being sent: keep pumping the
    /// sender (the guest stays stopped) until [`Primary::sender_idle`].
    SenderBusy,
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
    lazy: LazyEpoch,
    pages: u64,
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
}

/// How [`Primary::on_write_fault`] dealt with a write to a protected page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// Copied into a stun buffer; the page is writable again.
    Copied,
    /// No buffer was free: the page was put on the stream first; writable again.
    SentFirst,
    /// Not a page this primary protected: a real fault, the caller's business.
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
            pages: Pages::new(config.stun_buffers, config.digests.then_some(pages))?,
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
        })
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

    /// Whether the previous epoch's pages are all on the stream.
    #[must_use]
    pub fn sender_idle(&self) -> bool {
        self.sending.is_none()
    }

    /// Whether guest output waits for an acknowledgement.
    #[must_use]
    pub fn output_waiting(&self) -> bool {
        self.output.waiting()
    }

    /// Holds guest output produced in the current epoch.
    ///
    /// # Errors
    /// [`OutputError::Full`]: nothing held; stun now (the acknowledgement frees room).
    pub fn hold_output(&mut self, bytes: &[u8]) -> Result<(), OutputError> {
        self.output.hold(bytes)
    }

    /// Checkpoints the current epoch: the guest is stopped, `dirty` is the set of pages it wrote
    /// since the last stun (ignored for epoch 0, which sends every page), `vcpu` and `devices`
    /// its captured state, `guest_time` its clock. Copies hot pages and write-protects cold
    /// ones through `ram`; the caller then flushes the nested TLB and resumes the guest.
    ///
    /// # Errors
    /// [`PrimaryError::NoSuchPage`] for a dirty page beyond guest RAM and
    /// [`PrimaryError::SenderBusy`] before the previous epoch is all sent (nothing is changed
    /// then), or a stream error.
    pub fn stun(
        &mut self,
        ram: &mut dyn GuestRam,
        dirty: &[u64],
        guest_time: u64,
        vcpu: &[u8],
        devices: &[u8],
    ) -> Result<StunReport, PrimaryError> {
        let mut dirty: Vec<u64> = if self.next_epoch == 0 {
            (0..self.ram_pages).collect()
        } else {
            dirty.to_vec()
        };
        dirty.sort_unstable();
        dirty.dedup();
        if let Some(&gfn) = dirty.iter().find(|&&g| g >= self.ram_pages) {
            return Err(PrimaryError::NoSuchPage(gfn));
        }
        if self.sending.is_some() {
            return Err(PrimaryError::SenderBusy);
        }
        let epoch = self.next_epoch;
        let ended = self.output.end_epoch();
        debug_assert_eq!(ended, epoch);
        let mut output = Vec::new();
        self.output
            .held_for(epoch, |bytes| output.extend_from_slice(bytes));
        let sink = self.idle_sink.take().unwrap_or_default();
        if !self.header_sent {
            self.control
                .push_back(Message::Stream(&self.header.encode()).encode());
            self.header_sent = true;
        }
        let mut writer = EpochWriter::begin(sink, &self.header, epoch, guest_time)?;
        writer.vcpu_state(0, vcpu)?;
        writer.device_state(DEVICES, devices)?;
        if !output.is_empty() {
            writer.device_state(OUTPUT_DEVICE, &output)?;
        }
        for part in dirty.chunks(MAX_DIRTY_GFNS_PER_RECORD) {
            writer.dirty_page_list(part)?;
        }
        if epoch > 0 {
            self.history.record(&dirty);
        }
        let (lazy, plan) = LazyEpoch::plan(&dirty, &self.history, &mut self.pages.pool);
        for &(gfn, n) in &plan.copy {
            self.pages.copy_in(ram, gfn, n)?;
        }
        for &gfn in &plan.protect {
            ram.set_protected(gfn, true);
        }
        self.next_epoch += 1;
        self.sending = Some(Sending {
            writer,
            lazy,
            pages: 0,
        });
        if dirty.is_empty() {
            self.pump_sender(ram, 0)?;
        }
        Ok(StunReport {
            epoch,
            dirty: dirty.len() as u64,
            copied: plan.copy.len() as u64,
            protected: plan.protect.len() as u64,
            output: output.len() as u64,
        })
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
        let Some(sending) = self.sending.take() else {
            return Ok(());
        };
        let (sink, summary) = sending.writer.finish()?;
        self.idle_sink = Some(sink);
        self.last_sent = Some(summary.epoch);
        let sent = SentEpoch {
            epoch: summary.epoch,
            digest: self.pages.digest.as_ref().map(TrackedDigest::value),
            pages: sending.pages,
            bytes: summary.bytes,
            lazy: sending.lazy.stats,
        };
        if self.completed.len() >= MAX_COMPLETED {
            self.completed.pop_front();
        }
        self.completed.push_back(sent);
        self.sent.push_back(sent);
        Ok(())
    }

    /// The guest wrote page `gfn`, which faulted as write-protected. Unless the outcome is
    /// [`FaultOutcome::NotOurs`], the page is writable again and the caller (after flushing the
    /// nested TLB) lets the write proceed.
    ///
    /// # Errors
    /// A stream error while sending the page first.
    pub fn on_write_fault(
        &mut self,
        ram: &mut dyn GuestRam,
        gfn: u64,
    ) -> Result<FaultOutcome, PrimaryError> {
        let Some(sending) = &mut self.sending else {
            return Ok(FaultOutcome::NotOurs);
        };
        match sending.lazy.on_write(gfn, &mut self.pages.pool) {
            WriteVerdict::Proceed => Ok(FaultOutcome::NotOurs),
            WriteVerdict::CopyTo(n) => {
                self.pages.copy_in(ram, gfn, n)?;
                ram.set_protected(gfn, false);
                Ok(FaultOutcome::Copied)
            }
            WriteVerdict::SendNow => {
                self.pages.send(sending, ram, gfn, Source::Guest)?;
                self.complete_if_done()?;
                Ok(FaultOutcome::SentFirst)
            }
        }
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
        sink.pop().map(|chunk| Message::Stream(&chunk).encode())
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

    /// The backup is gone: stops checkpointing, makes every page writable again, and passes all
    /// held output to `release` (the guest runs unprotected from now on; later output need not
    /// be held).
    pub fn abandon(&mut self, ram: &mut dyn GuestRam, mut release: impl FnMut(&[u8])) {
        if let Some(mut sending) = self.sending.take() {
            while let Some((gfn, _)) = sending.lazy.next() {
                if sending.lazy.sent(gfn, &mut self.pages.pool) {
                    ram.set_protected(gfn, false);
                }
            }
        }
        let ended = self.output.end_epoch();
        let _ = self.output.acknowledge(ended, &mut release);
        self.control.clear();
        self.idle_sink = Some(Chunks::default());
    }
}
