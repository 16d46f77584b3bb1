// SPDX-License-Identifier: MIT OR Apache-2.0
//! The backup's staging area: bytes in, complete and verified [`Epoch`]s out.
//!
//! Bytes may arrive in chunks of any size. The assembler buffers at most one record
//! ([`MAX_RECORD_LEN`](super::MAX_RECORD_LEN)); record bodies are decoded as soon as they are
//! whole, and decoded records are staged until `EpochEnd` proves the epoch complete and
//! unaltered. Only then is the epoch handed out; the caller applies it.
//!
//! On an error the epoch being staged is dropped and reported; epochs handed out earlier are
//! unaffected. If the record framing is still intact the assembler then skips records up to the
//! next `EpochBegin` (a sender that aborts an epoch may simply start it again). If the framing is
//! lost ([`DecodeErrorKind::loses_framing`]) it rejects all input until [`reset`] is called at a
//! point where the sender restarts at a record boundary.
//!
//! [`reset`]: EpochAssembler::reset

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry;
use alloc::vec::Vec;
use core::mem;

use super::decode::{decode_record_at, parse_record_header};
use super::digest::{DIGEST_LEN, EpochDigest};
use super::epoch::Epoch;
use super::error::{DecodeError, DecodeErrorKind};
use super::header::StreamHeader;
use super::limits::MAX_DEVICES_PER_EPOCH;
use super::page::PAGE_SIZE;
use super::record::{RECORD_HEADER_LEN, Record, record_type};

/// What one call to [`EpochAssembler::feed`] did.
#[derive(Debug)]
#[must_use]
pub struct Fed {
    /// Bytes of the input consumed. Less than the input only when `outcome` is set: feed the
    /// rest again.
    pub consumed: usize,
    /// An epoch completed and verified, or one was rejected. `None`: more bytes needed.
    pub outcome: Option<Result<Epoch, DecodeError>>,
}

/// An epoch being staged.
struct Staging {
    epoch: Epoch,
    hasher: EpochDigest,
}

enum Mode {
    /// Between epochs: expecting `EpochBegin` (or optional records).
    Idle,
    /// Staging an epoch.
    InEpoch(Box<Staging>),
    /// After a rejected epoch: dropping records until the next `EpochBegin`.
    Skipping,
    /// Framing lost: rejecting everything until reset.
    Desynchronized,
}

/// Assembles epochs from the checkpoint stream (the bytes after the [`StreamHeader`]).
pub struct EpochAssembler {
    ram_pages: u64,
    mode: Mode,
    /// Bytes of a record that arrived split across calls.
    partial: Vec<u8>,
    /// Length of that record once its header is in, else 0.
    partial_total: usize,
    /// Stream offset of the partial record's first byte.
    partial_start: u64,
    /// Stream offset of the next byte fed.
    offset: u64,
    last_epoch: Option<u64>,
}

impl core::fmt::Debug for EpochAssembler {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EpochAssembler")
            .field("offset", &self.offset)
            .field("last_epoch", &self.last_epoch)
            .field("in_epoch", &self.in_epoch())
            .finish_non_exhaustive()
    }
}

impl EpochAssembler {
    /// An assembler for the stream that `header` began.
    pub const fn new(header: &StreamHeader) -> Self {
        Self {
            ram_pages: header.ram_pages(),
            mode: Mode::Idle,
            partial: Vec::new(),
            partial_total: 0,
            partial_start: 0,
            offset: 0,
            last_epoch: None,
        }
    }

    /// The last epoch handed out. Later epochs must have higher numbers.
    pub const fn last_epoch(&self) -> Option<u64> {
        self.last_epoch
    }

    /// The epoch being staged, if any.
    pub fn in_epoch(&self) -> Option<u64> {
        match &self.mode {
            Mode::InEpoch(staging) => Some(staging.epoch.number),
            _ => None,
        }
    }

    /// True after an error that lost the record framing, until [`reset`](Self::reset).
    pub const fn is_desynchronized(&self) -> bool {
        matches!(self.mode, Mode::Desynchronized)
    }

    /// Bytes fed so far; error offsets count from here.
    pub const fn offset(&self) -> u64 {
        self.offset
    }

    /// Drops any partial record and staged epoch; the next byte fed must start a record. Use
    /// when the sender restarts the stream (after a framing error or a link reset). The last
    /// completed epoch number is kept.
    pub fn reset(&mut self) {
        self.mode = Mode::Idle;
        self.clear_partial();
    }

    /// Consumes bytes from `input` up to the end of the first epoch that completes or is
    /// rejected, or all of it. Loop until all input is consumed, or use
    /// [`feed_all`](Self::feed_all).
    pub fn feed(&mut self, input: &[u8]) -> Fed {
        if self.is_desynchronized() {
            let at = self.offset;
            self.advance(input.len());
            return Fed {
                consumed: input.len(),
                outcome: (!input.is_empty())
                    .then_some(Err(DecodeError::new(at, DecodeErrorKind::Desynchronized))),
            };
        }
        let mut used = 0;
        while let Some(rest) = input.get(used..).filter(|rest| !rest.is_empty()) {
            let (took, outcome) = self.step(rest);
            used += took;
            self.advance(took);
            if outcome.is_some() || took == 0 {
                return Fed {
                    consumed: used,
                    outcome,
                };
            }
        }
        Fed {
            consumed: used,
            outcome: None,
        }
    }

    /// Feeds all of `input`, passing each completed or rejected epoch to `on_epoch`.
    pub fn feed_all(
        &mut self,
        mut input: &[u8],
        mut on_epoch: impl FnMut(Result<Epoch, DecodeError>),
    ) {
        while !input.is_empty() {
            let fed = self.feed(input);
            input = input.get(fed.consumed..).unwrap_or_default();
            match fed.outcome {
                Some(outcome) => on_epoch(outcome),
                None if fed.consumed == 0 => break,
                None => {}
            }
        }
    }

    fn advance(&mut self, n: usize) {
        self.offset = self.offset.saturating_add(n as u64);
    }

    fn clear_partial(&mut self) {
        self.partial.clear();
        self.partial_total = 0;
        // Do not hold on to a large buffer after a large (optional) record.
        if self.partial.capacity() > 2 * PAGE_SIZE {
            self.partial = Vec::new();
        }
    }

    /// Consumes the start of non-empty `rest`; returns the bytes taken and any outcome.
    fn step(&mut self, rest: &[u8]) -> (usize, Option<Result<Epoch, DecodeError>>) {
        let at = self.offset;
        if self.partial.is_empty() && rest.len() >= RECORD_HEADER_LEN {
            // Fast path: a whole record in `rest` is decoded where it lies.
            match parse_record_header(rest, at) {
                Err(e) => return self.lose_framing(e, rest.len()),
                Ok(header) => {
                    if let Some(record) = rest.get(..header.total_len) {
                        let outcome = self.process(record, header.record_type, at);
                        return (header.total_len, outcome.transpose());
                    }
                }
            }
        }
        // Slow path: gather the record across calls.
        if self.partial.is_empty() {
            self.partial_start = at;
        }
        let want = if self.partial_total == 0 {
            RECORD_HEADER_LEN
        } else {
            self.partial_total
        };
        let take = want.saturating_sub(self.partial.len()).min(rest.len());
        let Some(bytes) = rest.get(..take) else {
            return (0, None);
        };
        self.partial.extend_from_slice(bytes);
        if self.partial_total == 0 && self.partial.len() == RECORD_HEADER_LEN {
            match parse_record_header(&self.partial, self.partial_start) {
                Err(e) => return self.lose_framing(e, rest.len()),
                Ok(header) => {
                    self.partial_total = header.total_len;
                    let more = header.total_len - RECORD_HEADER_LEN;
                    if self.partial.try_reserve_exact(more).is_err() {
                        let e = DecodeError::new(self.partial_start, DecodeErrorKind::OutOfMemory);
                        return self.lose_framing(e, rest.len());
                    }
                }
            }
        }
        if self.partial_total != 0 && self.partial.len() == self.partial_total {
            let record = mem::take(&mut self.partial);
            let record_type = record
                .first_chunk::<4>()
                .map_or(0, |t| u32::from_le_bytes(*t));
            let outcome = self.process(&record, record_type, self.partial_start);
            self.partial = record;
            self.clear_partial();
            return (take, outcome.transpose());
        }
        (take, None)
    }

    /// Reports an error after which record boundaries are unknown; consumes `rest_len` bytes.
    fn lose_framing(
        &mut self,
        e: DecodeError,
        rest_len: usize,
    ) -> (usize, Option<Result<Epoch, DecodeError>>) {
        self.mode = Mode::Desynchronized;
        self.clear_partial();
        (rest_len, Some(Err(e)))
    }

    /// Handles one complete, framed record of type `kind` at stream offset `at`.
    fn process(&mut self, bytes: &[u8], kind: u32, at: u64) -> Result<Option<Epoch>, DecodeError> {
        if matches!(self.mode, Mode::Skipping) && kind != record_type::EPOCH_BEGIN {
            return Ok(None);
        }
        let result = self.stage(bytes, at);
        if let Err(e) = &result {
            if e.kind.loses_framing() {
                self.mode = Mode::Desynchronized;
            } else if !matches!(
                e.kind,
                DecodeErrorKind::UnexpectedRecord {
                    record_type: record_type::EPOCH_BEGIN,
                    ..
                }
            ) {
                // Every error drops what was staged, except an EpochBegin that interrupted an
                // unfinished epoch: that one already started the new epoch.
                self.mode = Mode::Skipping;
            }
        }
        result
    }

    fn stage(&mut self, bytes: &[u8], at: u64) -> Result<Option<Epoch>, DecodeError> {
        let (record, _) = decode_record_at(bytes, at)?;
        let body = at.saturating_add(RECORD_HEADER_LEN as u64);
        match record {
            Record::EpochBegin { epoch, guest_time } => {
                let previous = mem::replace(&mut self.mode, Mode::Skipping);
                if let Some(last) = self.last_epoch
                    && epoch <= last
                {
                    return Err(DecodeError::new(
                        body,
                        DecodeErrorKind::EpochNotIncreasing { last, found: epoch },
                    ));
                }
                let mut hasher = EpochDigest::new();
                hasher.update(bytes);
                self.mode = Mode::InEpoch(Box::new(Staging {
                    epoch: Epoch {
                        number: epoch,
                        guest_time,
                        vcpus: BTreeMap::new(),
                        devices: BTreeMap::new(),
                        pages: BTreeMap::new(),
                        dirty_gfns: Vec::new(),
                        record_count: 1,
                        digest: [0; DIGEST_LEN],
                    },
                    hasher,
                }));
                match previous {
                    Mode::InEpoch(_) => Err(DecodeError::new(
                        at,
                        DecodeErrorKind::UnexpectedRecord {
                            record_type: record_type::EPOCH_BEGIN,
                            context: "the previous epoch did not end; it was discarded",
                        },
                    )),
                    _ => Ok(None),
                }
            }
            Record::EpochEnd {
                epoch,
                record_count,
                digest,
            } => {
                let Mode::InEpoch(staging) = mem::replace(&mut self.mode, Mode::Idle) else {
                    return Err(unexpected(at, record_type::EPOCH_END, "outside an epoch"));
                };
                let Staging {
                    epoch: mut epoch_value,
                    hasher,
                } = *staging;
                if epoch != epoch_value.number {
                    return Err(DecodeError::new(
                        body,
                        DecodeErrorKind::EpochMismatch {
                            begin: epoch_value.number,
                            end: epoch,
                        },
                    ));
                }
                if record_count != epoch_value.record_count {
                    return Err(DecodeError::new(
                        body.saturating_add(8),
                        DecodeErrorKind::RecordCountMismatch {
                            declared: record_count,
                            received: epoch_value.record_count,
                        },
                    ));
                }
                if hasher.finalize() != digest {
                    return Err(DecodeError::new(
                        body.saturating_add(16),
                        DecodeErrorKind::DigestMismatch,
                    ));
                }
                epoch_value.digest = digest;
                self.last_epoch = Some(epoch);
                Ok(Some(epoch_value))
            }
            Record::SkippedOptional { .. } => {
                if let Mode::InEpoch(staging) = &mut self.mode {
                    staging.count(bytes, at)?;
                }
                Ok(None)
            }
            record => {
                let Mode::InEpoch(staging) = &mut self.mode else {
                    return Err(unexpected(at, record.record_type(), "outside an epoch"));
                };
                staging.count(bytes, at)?;
                staging.add(record, body, self.ram_pages)?;
                Ok(None)
            }
        }
    }
}

fn unexpected(at: u64, record_type: u32, context: &'static str) -> DecodeError {
    DecodeError::new(
        at,
        DecodeErrorKind::UnexpectedRecord {
            record_type,
            context,
        },
    )
}

impl Staging {
    /// Counts a record (other than `EpochBegin`/`EpochEnd`) into the record count and digest.
    fn count(&mut self, bytes: &[u8], at: u64) -> Result<(), DecodeError> {
        self.epoch.record_count = self
            .epoch
            .record_count
            .checked_add(1)
            .ok_or(DecodeError::new(at, DecodeErrorKind::TooManyRecords))?;
        self.hasher.update(bytes);
        Ok(())
    }

    /// Adds a state, page or dirty-list record whose body starts at offset `body`.
    fn add(&mut self, record: Record, body: u64, ram_pages: u64) -> Result<(), DecodeError> {
        let err = |at: u64, kind| Err(DecodeError::new(at, kind));
        match record {
            Record::VcpuState { vcpu, state } => match self.epoch.vcpus.entry(vcpu) {
                Entry::Vacant(slot) => {
                    slot.insert(state);
                }
                Entry::Occupied(_) => return err(body, DecodeErrorKind::DuplicateVcpu { vcpu }),
            },
            Record::DeviceState { device_id, state } => {
                if self.epoch.devices.len() >= MAX_DEVICES_PER_EPOCH {
                    return err(body, DecodeErrorKind::TooManyDevices);
                }
                match self.epoch.devices.entry(device_id) {
                    Entry::Vacant(slot) => {
                        slot.insert(state);
                    }
                    Entry::Occupied(_) => {
                        return err(body, DecodeErrorKind::DuplicateDevice { device_id });
                    }
                }
            }
            Record::Page { gfn, data } => {
                if gfn >= ram_pages {
                    return err(body, DecodeErrorKind::GfnOutOfRange { gfn, ram_pages });
                }
                match self.epoch.pages.entry(gfn) {
                    Entry::Vacant(slot) => {
                        slot.insert(data);
                    }
                    Entry::Occupied(_) => return err(body, DecodeErrorKind::DuplicatePage { gfn }),
                }
            }
            Record::DirtyPageList { gfns } => {
                // Each record is strictly ascending (checked by the decoder); check the join
                // with earlier records and the largest frame against the RAM size.
                if let (Some(&last), Some(&first)) = (self.epoch.dirty_gfns.last(), gfns.first())
                    && first <= last
                {
                    return err(body, DecodeErrorKind::DirtyListNotAscending { gfn: first });
                }
                if let Some(&max) = gfns.last()
                    && max >= ram_pages
                {
                    let index = gfns.iter().position(|&g| g >= ram_pages).unwrap_or(0);
                    let at = body.saturating_add(8 * index as u64);
                    let gfn = gfns.get(index).copied().unwrap_or(max);
                    return err(at, DecodeErrorKind::GfnOutOfRange { gfn, ram_pages });
                }
                if self.epoch.dirty_gfns.try_reserve(gfns.len()).is_err() {
                    return err(body, DecodeErrorKind::OutOfMemory);
                }
                self.epoch.dirty_gfns.extend_from_slice(&gfns);
            }
            // EpochBegin, EpochEnd and skipped records are handled by the caller.
            Record::EpochBegin { .. }
            | Record::EpochEnd { .. }
            | Record::SkippedOptional { .. } => {}
        }
        Ok(())
    }
}
