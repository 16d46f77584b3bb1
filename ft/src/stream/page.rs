// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest page encodings: choosing the smallest on the primary, rebuilding the page on the backup.
//!
//! A `PAGE` record's payload is one of ([`PageEncoding`] codes):
//!
//! - `Full` (0): the page's [`PAGE_SIZE`] bytes.
//! - `Zero` (1): nothing; the page is all zeros.
//! - `Delta` (2): the changed bytes against the copy the backup holds ([`Delta`]); smaller than
//!   a page, and only valid if the backup holds a copy.
//! - `Lz4` (3): an LZ4 block (as produced by `lz4_flex::block`) of the full page; smaller than a
//!   page, and must decompress to exactly one page.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use super::delta::{Delta, encode_delta};
use super::error::{DecodeError, DecodeErrorKind};

/// Guest page size; the only one the format supports.
pub const PAGE_SIZE: usize = 4096;

/// One guest page.
pub type PageBuf = [u8; PAGE_SIZE];

/// How a page travels on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageEncoding {
    /// The page's bytes as they are.
    Full,
    /// An all-zero page; no payload.
    Zero,
    /// The changed bytes against the backup's copy.
    Delta,
    /// LZ4 block compression of the page.
    Lz4,
}

impl PageEncoding {
    /// The wire code.
    pub const fn code(self) -> u32 {
        match self {
            Self::Full => 0,
            Self::Zero => 1,
            Self::Delta => 2,
            Self::Lz4 => 3,
        }
    }

    /// The encoding a wire code names, if any.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::Full),
            1 => Some(Self::Zero),
            2 => Some(Self::Delta),
            3 => Some(Self::Lz4),
            _ => None,
        }
    }
}

/// A decoded page payload: what to write into a guest page.
#[derive(Clone, PartialEq, Eq)]
pub enum PageData {
    /// The page's full contents (sent `Full` or `Lz4`).
    Full(Box<PageBuf>),
    /// All zeros.
    Zero,
    /// Changes against the backup's copy of the page.
    Delta(Delta),
}

/// Error from [`PageData::reconstruct`]: a delta needs a base page and none was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingBase;

impl fmt::Display for MissingBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("page delta received for a page the backup does not hold")
    }
}

impl core::error::Error for MissingBase {}

impl PageData {
    /// True for deltas, which can only be applied over the backup's existing copy.
    pub const fn needs_base(&self) -> bool {
        matches!(self, Self::Delta(_))
    }

    /// Writes the page into `page` in place. For a delta, `page` must hold the copy the delta
    /// was made against.
    pub fn apply(&self, page: &mut PageBuf) {
        match self {
            Self::Full(data) => page.copy_from_slice(&data[..]),
            Self::Zero => page.fill(0),
            Self::Delta(delta) => delta.apply(page),
        }
    }

    /// Rebuilds the page into `out` from `base`, the backup's copy, if it holds one. A delta
    /// without a base is an error.
    pub fn reconstruct(
        &self,
        base: Option<&PageBuf>,
        out: &mut PageBuf,
    ) -> Result<(), MissingBase> {
        if let Self::Delta(_) = self {
            out.copy_from_slice(base.ok_or(MissingBase)?);
        }
        self.apply(out);
        Ok(())
    }
}

impl fmt::Debug for PageData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(page) => {
                let head = page.get(..8).unwrap_or_default();
                write!(f, "Full({head:02x?}..)")
            }
            Self::Zero => f.write_str("Zero"),
            Self::Delta(delta) => write!(f, "Delta({} runs)", delta.runs().count()),
        }
    }
}

/// True if every byte of `page` is zero. Checks 64 bytes per step (eight OR-ed words, which the
/// compiler vectorizes) and stops at the first non-zero block.
pub fn is_zero_page(page: &PageBuf) -> bool {
    let (blocks, _) = page.as_chunks::<64>();
    blocks.iter().all(|block| {
        let (words, _) = block.as_chunks::<8>();
        words
            .iter()
            .fold(0u64, |acc, w| acc | u64::from_ne_bytes(*w))
            == 0
    })
}

/// A page ready to be written into a `PAGE` record: its encoding and payload, borrowed from the
/// page itself or from a [`PageEncoder`]'s scratch space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedPage<'a> {
    encoding: PageEncoding,
    payload: &'a [u8],
}

impl<'a> EncodedPage<'a> {
    /// The page sent whole.
    pub fn full(page: &'a PageBuf) -> Self {
        Self {
            encoding: PageEncoding::Full,
            payload: page,
        }
    }

    /// An all-zero page (the caller vouches that it is).
    pub const fn zero() -> Self {
        Self {
            encoding: PageEncoding::Zero,
            payload: &[],
        }
    }

    /// The encoding chosen.
    pub const fn encoding(&self) -> PageEncoding {
        self.encoding
    }

    /// The payload bytes.
    pub const fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Bytes the whole `PAGE` record takes on the wire (header, body, padding).
    pub const fn record_len(&self) -> usize {
        let body = super::record::PAGE_HEADER_LEN + self.payload.len();
        super::record::RECORD_HEADER_LEN + body + super::wire::padding_len(body)
    }
}

/// Scratch space needed by `lz4_flex::block::compress_into` for one page.
const LZ4_SCRATCH_LEN: usize = lz4_flex::block::get_maximum_output_size(PAGE_SIZE);

/// A delta at most this long is sent without trying LZ4: a page changed in so few bytes
/// rarely compresses much smaller whole, and compressing it costs several times what the
/// delta did (measured on the Linux guest: LZ4 was tried on an eighth of the pages and took a
/// quarter of the encoding time).
const DELTA_GOOD_ENOUGH: usize = PAGE_SIZE / 4;

/// Chooses the smallest encoding for each page. Holds its scratch buffers (about 8.5 KiB), so
/// encoding never allocates; keep one per sending thread.
#[derive(Clone)]
pub struct PageEncoder {
    delta: [u8; PAGE_SIZE - 1],
    lz4: [u8; LZ4_SCRATCH_LEN],
}

impl Default for PageEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PageEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageEncoder").finish_non_exhaustive()
    }
}

impl PageEncoder {
    /// A new encoder.
    pub const fn new() -> Self {
        Self {
            delta: [0; PAGE_SIZE - 1],
            lz4: [0; LZ4_SCRATCH_LEN],
        }
    }

    /// The smallest encoding of `page`, given `prev`, the copy the backup holds (if any; a delta
    /// is only considered with one). Preference on equal size: zero, delta, LZ4, full. Delta and
    /// LZ4 are used only when smaller than a full page. A delta of at most a quarter of a page
    /// is taken without trying LZ4 ([`DELTA_GOOD_ENOUGH`]).
    pub fn encode<'a>(&'a mut self, page: &'a PageBuf, prev: Option<&PageBuf>) -> EncodedPage<'a> {
        if is_zero_page(page) {
            return EncodedPage::zero();
        }
        let delta_len = match prev {
            Some(prev) => encode_delta(prev, page, &mut self.delta),
            None => None,
        };
        if let Some(len) = delta_len
            && len <= DELTA_GOOD_ENOUGH
        {
            return delta_payload(&self.delta, len);
        }
        let best = delta_len.unwrap_or(PAGE_SIZE);
        match lz4_flex::block::compress_into(page, &mut self.lz4) {
            Ok(n) if n < best => EncodedPage {
                encoding: PageEncoding::Lz4,
                payload: self.lz4.get(..n).unwrap_or_default(),
            },
            _ => match delta_len {
                Some(len) => delta_payload(&self.delta, len),
                None => EncodedPage::full(page),
            },
        }
    }

    /// The delta from `prev` to `page`, if it is smaller than a full page.
    pub fn delta<'a>(&'a mut self, page: &PageBuf, prev: &PageBuf) -> Option<EncodedPage<'a>> {
        let len = encode_delta(prev, page, &mut self.delta)?;
        Some(delta_payload(&self.delta, len))
    }

    /// The LZ4 compression of `page`, if it is smaller than a full page.
    pub fn lz4(&mut self, page: &PageBuf) -> Option<EncodedPage<'_>> {
        match lz4_flex::block::compress_into(page, &mut self.lz4) {
            Ok(n) if n < PAGE_SIZE => Some(EncodedPage {
                encoding: PageEncoding::Lz4,
                payload: self.lz4.get(..n)?,
            }),
            _ => None,
        }
    }
}

fn delta_payload(buf: &[u8], len: usize) -> EncodedPage<'_> {
    EncodedPage {
        encoding: PageEncoding::Delta,
        payload: buf.get(..len).unwrap_or_default(),
    }
}

/// A zeroed page on the heap, or `None` if memory is exhausted.
pub(crate) fn try_new_page() -> Option<Box<PageBuf>> {
    let mut v = Vec::new();
    v.try_reserve_exact(PAGE_SIZE).ok()?;
    v.resize(PAGE_SIZE, 0u8);
    v.into_boxed_slice().try_into().ok()
}

/// Decodes and checks a page payload with encoding `code` (found at stream offset `at`); the
/// payload starts at `payload_at`.
pub(crate) fn decode_payload(
    code: u32,
    at: u64,
    payload: &[u8],
    payload_at: u64,
) -> Result<PageData, DecodeError> {
    let encoding = PageEncoding::from_code(code).ok_or(DecodeError::new(
        at,
        DecodeErrorKind::UnknownPageEncoding { encoding: code },
    ))?;
    let bad_len = DecodeError::new(
        at,
        DecodeErrorKind::BadPagePayload {
            encoding: code,
            length: payload.len() as u64,
        },
    );
    let oom = DecodeError::new(at, DecodeErrorKind::OutOfMemory);
    match encoding {
        PageEncoding::Zero if payload.is_empty() => Ok(PageData::Zero),
        PageEncoding::Full if payload.len() == PAGE_SIZE => {
            let mut page = try_new_page().ok_or(oom)?;
            page.copy_from_slice(payload);
            Ok(PageData::Full(page))
        }
        PageEncoding::Delta if payload.len() < PAGE_SIZE => {
            Delta::parse_at(payload, payload_at).map(PageData::Delta)
        }
        PageEncoding::Lz4 if !payload.is_empty() && payload.len() < PAGE_SIZE => {
            let mut page = try_new_page().ok_or(oom)?;
            match lz4_flex::block::decompress_into(payload, &mut page[..]) {
                Ok(PAGE_SIZE) => Ok(PageData::Full(page)),
                _ => Err(DecodeError::new(payload_at, DecodeErrorKind::BadLz4)),
            }
        }
        _ => Err(bad_len),
    }
}
