// SPDX-License-Identifier: MIT OR Apache-2.0
//! Writing epochs: [`EpochWriter`] streams records into a [`Sink`] and computes the epoch digest
//! as it goes, so the sender never needs the whole epoch in memory.

use alloc::vec::Vec;
use core::convert::Infallible;
use core::fmt;

use super::digest::{Digest, EpochDigest};
use super::header::StreamHeader;
use super::limits::{
    MAX_DEVICE_STATE_LEN, MAX_DIRTY_GFNS_PER_RECORD, MAX_OPTIONAL_BODY_LEN, MAX_VCPU_STATE_LEN,
    MAX_VCPUS,
};
use super::page::{EncodedPage, PageBuf, PageEncoder, PageEncoding};
use super::record::{
    EPOCH_BEGIN_BODY_LEN, EPOCH_END_BODY_LEN, PAGE_HEADER_LEN, STATE_HEADER_LEN, record_type,
};
use super::wire::{ZEROS, padding_len};

/// Where encoded bytes go: a buffer, a socket, the peer link's send queue.
pub trait Sink {
    /// What writing can fail with.
    type Error;

    /// Appends `bytes` to the stream.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}

impl Sink for Vec<u8> {
    type Error = Infallible;

    fn write(&mut self, bytes: &[u8]) -> Result<(), Infallible> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    type Error = S::Error;

    fn write(&mut self, bytes: &[u8]) -> Result<(), S::Error> {
        (**self).write(bytes)
    }
}

/// Why the writer refused a record (nothing of it was written), or the sink's error (the epoch
/// is then incomplete on the wire and must be abandoned).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError<E> {
    /// The sink failed.
    Sink(E),
    /// A state blob longer than its limit.
    StateTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A vCPU index at or above [`MAX_VCPUS`].
    VcpuOutOfRange {
        /// The index.
        vcpu: u32,
    },
    /// A guest frame at or above the stream's RAM size.
    GfnOutOfRange {
        /// The frame.
        gfn: u64,
    },
    /// A dirty-page list that is empty or longer than [`MAX_DIRTY_GFNS_PER_RECORD`].
    DirtyListLength {
        /// Its length.
        len: usize,
    },
    /// A dirty-page list not strictly ascending (also across the epoch's earlier lists).
    DirtyListNotAscending {
        /// The first out-of-order frame.
        gfn: u64,
    },
    /// [`EpochWriter::optional_record`] with a type lacking the optional bit, or a body over
    /// [`MAX_OPTIONAL_BODY_LEN`].
    BadOptionalRecord {
        /// The type given.
        record_type: u32,
    },
    /// More than `u32::MAX` records in the epoch.
    TooManyRecords,
}

impl<E: fmt::Display> fmt::Display for WriteError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sink(e) => write!(f, "checkpoint stream sink failed: {e}"),
            Self::StateTooLong { len, max } => {
                write!(f, "state blob of {len} bytes exceeds the limit of {max}")
            }
            Self::VcpuOutOfRange { vcpu } => {
                write!(f, "vCPU index {vcpu} is not below the limit of {MAX_VCPUS}")
            }
            Self::GfnOutOfRange { gfn } => write!(f, "guest frame {gfn:#x} is outside guest RAM"),
            Self::DirtyListLength { len } => write!(
                f,
                "dirty page list of {len} frames is empty or above {MAX_DIRTY_GFNS_PER_RECORD}"
            ),
            Self::DirtyListNotAscending { gfn } => {
                write!(
                    f,
                    "dirty page list not strictly ascending at frame {gfn:#x}"
                )
            }
            Self::BadOptionalRecord { record_type } => write!(
                f,
                "record type {record_type:#010x} is not optional or its body is too long"
            ),
            Self::TooManyRecords => f.write_str("more than u32::MAX records in one epoch"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for WriteError<E> {}

/// What [`EpochWriter::finish`] wrote into `EpochEnd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochSummary {
    /// Epoch number.
    pub epoch: u64,
    /// Records from `EpochBegin` up to, not including, `EpochEnd`.
    pub record_count: u32,
    /// Digest of those records' bytes ([`super::digest`]).
    pub digest: Digest,
    /// Bytes written, `EpochEnd` included.
    pub bytes: u64,
}

/// Writes one epoch: `EpochBegin` on [`begin`](Self::begin), then state, page and dirty-list
/// records in any order, then `EpochEnd` on [`finish`](Self::finish).
///
/// Checks what it can without allocating (lengths, ranges, dirty-list order); the receiver also
/// rejects a second record for the same vCPU, device or page in one epoch, which the caller
/// must avoid.
pub struct EpochWriter<S: Sink> {
    sink: S,
    hasher: EpochDigest,
    epoch: u64,
    ram_pages: u64,
    records: u32,
    bytes: u64,
    last_dirty: Option<u64>,
}

impl<S: Sink> fmt::Debug for EpochWriter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpochWriter")
            .field("epoch", &self.epoch)
            .field("records", &self.records)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl<S: Sink> EpochWriter<S> {
    /// Starts epoch `epoch` by writing its `EpochBegin` record to `sink`.
    pub fn begin(
        sink: S,
        header: &StreamHeader,
        epoch: u64,
        guest_time: u64,
    ) -> Result<Self, WriteError<S::Error>> {
        let mut writer = Self {
            sink,
            hasher: EpochDigest::new(),
            epoch,
            ram_pages: header.ram_pages(),
            records: 0,
            bytes: 0,
            last_dirty: None,
        };
        writer.start_record(record_type::EPOCH_BEGIN, EPOCH_BEGIN_BODY_LEN)?;
        writer.emit(&epoch.to_le_bytes())?;
        writer.emit(&guest_time.to_le_bytes())?;
        writer.end_record(EPOCH_BEGIN_BODY_LEN)?;
        Ok(writer)
    }

    /// The epoch being written.
    pub const fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Records written so far, `EpochBegin` included.
    pub const fn record_count(&self) -> u32 {
        self.records
    }

    /// Bytes written so far.
    pub const fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// The sink being written.
    pub const fn sink(&self) -> &S {
        &self.sink
    }

    /// The sink being written, to drain what it holds (without writing into it).
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Writes the opaque state of vCPU `vcpu`.
    pub fn vcpu_state(&mut self, vcpu: u32, state: &[u8]) -> Result<(), WriteError<S::Error>> {
        if vcpu >= MAX_VCPUS {
            return Err(WriteError::VcpuOutOfRange { vcpu });
        }
        self.state_record(record_type::VCPU_STATE, vcpu, state, MAX_VCPU_STATE_LEN)
    }

    /// Writes the opaque state of device `device_id`.
    pub fn device_state(
        &mut self,
        device_id: u32,
        state: &[u8],
    ) -> Result<(), WriteError<S::Error>> {
        self.state_record(
            record_type::DEVICE_STATE,
            device_id,
            state,
            MAX_DEVICE_STATE_LEN,
        )
    }

    fn state_record(
        &mut self,
        kind: u32,
        id: u32,
        state: &[u8],
        max: usize,
    ) -> Result<(), WriteError<S::Error>> {
        if state.len() > max {
            return Err(WriteError::StateTooLong {
                len: state.len(),
                max,
            });
        }
        let body_len = STATE_HEADER_LEN + state.len();
        self.start_record(kind, body_len)?;
        self.emit(&id.to_le_bytes())?;
        self.emit(&0u32.to_le_bytes())?;
        self.emit(state)?;
        self.end_record(body_len)
    }

    /// Writes page `gfn` as encoded by [`PageEncoder`] (or [`EncodedPage::full`] /
    /// [`EncodedPage::zero`]).
    pub fn page(&mut self, gfn: u64, page: &EncodedPage<'_>) -> Result<(), WriteError<S::Error>> {
        if gfn >= self.ram_pages {
            return Err(WriteError::GfnOutOfRange { gfn });
        }
        let payload = page.payload();
        let body_len = PAGE_HEADER_LEN + payload.len();
        self.start_record(record_type::PAGE, body_len)?;
        self.emit(&gfn.to_le_bytes())?;
        self.emit(&page.encoding().code().to_le_bytes())?;
        self.emit(&0u32.to_le_bytes())?;
        self.emit(payload)?;
        self.end_record(body_len)
    }

    /// Encodes `page` with `encoder` (smallest encoding given `prev`, the backup's copy) and
    /// writes it. Returns the encoding chosen.
    pub fn encode_page(
        &mut self,
        encoder: &mut PageEncoder,
        gfn: u64,
        page: &PageBuf,
        prev: Option<&PageBuf>,
    ) -> Result<PageEncoding, WriteError<S::Error>> {
        let encoded = encoder.encode(page, prev);
        self.page(gfn, &encoded)?;
        Ok(encoded.encoding())
    }

    /// Writes a dirty-page list: 1..=[`MAX_DIRTY_GFNS_PER_RECORD`] frames, strictly ascending,
    /// and above every frame of the epoch's earlier lists.
    pub fn dirty_page_list(&mut self, gfns: &[u64]) -> Result<(), WriteError<S::Error>> {
        if gfns.is_empty() || gfns.len() > MAX_DIRTY_GFNS_PER_RECORD {
            return Err(WriteError::DirtyListLength { len: gfns.len() });
        }
        let mut last = self.last_dirty;
        for &gfn in gfns {
            if last.is_some_and(|l| l >= gfn) {
                return Err(WriteError::DirtyListNotAscending { gfn });
            }
            if gfn >= self.ram_pages {
                return Err(WriteError::GfnOutOfRange { gfn });
            }
            last = Some(gfn);
        }
        // As runs where that is shorter (16 bytes a run against 8 a frame): dirty pages
        // cluster, and every byte written here is hashed and sealed during the stun.
        let run_count = runs(gfns).count();
        if 2 * run_count < gfns.len() {
            let body_len = 16 * run_count;
            self.start_record(record_type::DIRTY_PAGE_RANGES, body_len)?;
            self.emit_u64s(runs(gfns).flat_map(|(first, count)| [first, count]))?;
            self.end_record(body_len)?;
        } else {
            let body_len = 8 * gfns.len();
            self.start_record(record_type::DIRTY_PAGE_LIST, body_len)?;
            self.emit_u64s(gfns.iter().copied())?;
            self.end_record(body_len)?;
        }
        self.last_dirty = last;
        Ok(())
    }

    /// Writes an optional record (type with [`record_type::OPTIONAL`] set, body at most
    /// [`MAX_OPTIONAL_BODY_LEN`]): for extensions that older receivers may skip.
    pub fn optional_record(
        &mut self,
        record_type: u32,
        body: &[u8],
    ) -> Result<(), WriteError<S::Error>> {
        if record_type & record_type::OPTIONAL == 0 || body.len() > MAX_OPTIONAL_BODY_LEN {
            return Err(WriteError::BadOptionalRecord { record_type });
        }
        self.start_record(record_type, body.len())?;
        self.emit(body)?;
        self.end_record(body.len())
    }

    /// Writes `EpochEnd` and returns the sink and what was written.
    pub fn finish(mut self) -> Result<(S, EpochSummary), WriteError<S::Error>> {
        let digest = self.hasher.finalize();
        let mut body = [0u8; EPOCH_END_BODY_LEN];
        let fields: [(usize, &[u8]); 3] = [
            (0, &self.epoch.to_le_bytes()),
            (8, &self.records.to_le_bytes()),
            (16, &digest),
        ];
        for (at, bytes) in fields {
            if let Some(dst) = body.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        }
        let mut record = [0u8; 8 + EPOCH_END_BODY_LEN];
        let (header, rest) = record.split_at_mut(8);
        header[..4].copy_from_slice(&record_type::EPOCH_END.to_le_bytes());
        header[4..].copy_from_slice(&(EPOCH_END_BODY_LEN as u32).to_le_bytes());
        rest.copy_from_slice(&body);
        // EpochEnd is outside the digest: write it to the sink only.
        self.sink.write(&record).map_err(WriteError::Sink)?;
        let summary = EpochSummary {
            epoch: self.epoch,
            record_count: self.records,
            digest,
            bytes: self.bytes + record.len() as u64,
        };
        Ok((self.sink, summary))
    }

    /// Writes a record header, counting the record.
    fn start_record(&mut self, kind: u32, body_len: usize) -> Result<(), WriteError<S::Error>> {
        let records = self
            .records
            .checked_add(1)
            .ok_or(WriteError::TooManyRecords)?;
        // Callers bound body_len by MAX_OPTIONAL_BODY_LEN, far below u32::MAX.
        let len = u32::try_from(body_len)
            .map_err(|_| WriteError::BadOptionalRecord { record_type: kind })?;
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&kind.to_le_bytes());
        header[4..].copy_from_slice(&len.to_le_bytes());
        self.emit(&header)?;
        self.records = records;
        Ok(())
    }

    /// Writes a body's padding.
    fn end_record(&mut self, body_len: usize) -> Result<(), WriteError<S::Error>> {
        self.emit(ZEROS.get(..padding_len(body_len)).unwrap_or_default())
    }

    /// Writes `words` little-endian, converted in stack-sized batches: no allocation for long
    /// lists.
    fn emit_u64s(&mut self, words: impl Iterator<Item = u64>) -> Result<(), WriteError<S::Error>> {
        let mut buf = [0u8; 512];
        let mut n = 0;
        for word in words {
            if let Some(dst) = buf.get_mut(n..n + 8) {
                dst.copy_from_slice(&word.to_le_bytes());
            }
            n += 8;
            if n == buf.len() {
                self.emit(&buf)?;
                n = 0;
            }
        }
        if n > 0 {
            self.emit(buf.get(..n).unwrap_or_default())?;
        }
        Ok(())
    }

    /// Writes bytes that the digest covers.
    fn emit(&mut self, bytes: &[u8]) -> Result<(), WriteError<S::Error>> {
        self.hasher.update(bytes);
        self.sink.write(bytes).map_err(WriteError::Sink)?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

/// The runs of consecutive frames in strictly ascending `gfns`: (first frame, length).
fn runs(gfns: &[u64]) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut i = 0;
    core::iter::from_fn(move || {
        let first = *gfns.get(i)?;
        let mut count = 1;
        while gfns.get(i + count as usize) == Some(&(first + count)) {
            count += 1;
        }
        i += count as usize;
        Some((first, count))
    })
}
