// SPDX-License-Identifier: MIT OR Apache-2.0
//! Decode errors: what was wrong with a stream, and at which byte offset.

use core::fmt;

/// Why a stream header, record or epoch was rejected, and where.
///
/// `offset` is relative to the slice given to [`decode_record`](super::decode_record) or
/// [`StreamHeader::decode`](super::StreamHeader::decode), and counts bytes fed since creation for
/// [`EpochAssembler`](super::EpochAssembler).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset of the offending field (or of the record that holds it).
    pub offset: u64,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) const fn new(offset: u64, kind: DecodeErrorKind) -> Self {
        Self { offset, kind }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte offset {})", self.kind, self.offset)
    }
}

impl core::error::Error for DecodeError {}

/// The kinds of [`DecodeError`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ends before the header or record does (only from the slice decoders; the
    /// assembler waits for more bytes instead).
    Truncated {
        /// Bytes needed from `offset` on.
        needed: u64,
        /// Bytes present from `offset` on.
        available: u64,
    },
    /// The stream does not start with [`MAGIC`](super::MAGIC).
    BadMagic,
    /// The header's major version is not [`VERSION_MAJOR`](super::VERSION_MAJOR).
    UnsupportedVersion {
        /// Major version found.
        major: u16,
        /// Minor version found.
        minor: u16,
    },
    /// The header sets flags this version does not define.
    UnknownHeaderFlags {
        /// The flags word found.
        flags: u32,
    },
    /// The header's guest page size is not [`PAGE_SIZE`](super::PAGE_SIZE).
    BadPageSize {
        /// Page size found.
        page_size: u32,
    },
    /// Guest RAM size is zero or above [`MAX_RAM_PAGES`](super::MAX_RAM_PAGES).
    BadRamSize {
        /// RAM size in pages found.
        ram_pages: u64,
    },
    /// A reserved field is not zero.
    ReservedNotZero,
    /// A padding byte after a record body is not zero.
    PaddingNotZero,
    /// A record type without the optional bit that this decoder does not know.
    UnknownMandatoryRecord {
        /// The record type found.
        record_type: u32,
    },
    /// A record's length is impossible for its type (too short, too long, or not a multiple of
    /// the element size). The stream's framing can no longer be trusted.
    BadRecordLength {
        /// The record type.
        record_type: u32,
        /// The body length found.
        length: u32,
    },
    /// A vCPU index at or above [`MAX_VCPUS`](super::MAX_VCPUS).
    VcpuOutOfRange {
        /// The vCPU index found.
        vcpu: u32,
    },
    /// A page record's encoding field names no known encoding.
    UnknownPageEncoding {
        /// The encoding code found.
        encoding: u32,
    },
    /// A page payload's length does not fit its encoding (a full page must be exactly one page;
    /// zero pages carry nothing; delta and LZ4 payloads must be smaller than a page).
    BadPagePayload {
        /// The encoding code.
        encoding: u32,
        /// The payload length found.
        length: u64,
    },
    /// A delta payload is malformed.
    BadDelta {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An LZ4 payload does not decompress to exactly one page.
    BadLz4,
    /// A dirty-page list is not strictly ascending (unsorted or duplicated), within a record or
    /// across the records of one epoch.
    DirtyListNotAscending {
        /// The first out-of-order frame number.
        gfn: u64,
    },
    /// A run of a `DIRTY_PAGE_RANGES` record is empty, wraps past the last frame number, or
    /// takes the record past [`MAX_DIRTY_GFNS_PER_RECORD`](super::MAX_DIRTY_GFNS_PER_RECORD)
    /// frames.
    BadDirtyRange {
        /// The run's first frame.
        first: u64,
        /// Its length.
        count: u64,
    },
    /// A guest frame number at or above the guest RAM size in the stream header.
    GfnOutOfRange {
        /// The frame number found.
        gfn: u64,
        /// Guest RAM size in pages.
        ram_pages: u64,
    },
    /// A second state record for the same vCPU in one epoch.
    DuplicateVcpu {
        /// The vCPU index.
        vcpu: u32,
    },
    /// A second state record for the same device in one epoch.
    DuplicateDevice {
        /// The device id.
        device_id: u32,
    },
    /// More than [`MAX_DEVICES_PER_EPOCH`](super::MAX_DEVICES_PER_EPOCH) device records.
    TooManyDevices,
    /// A second page record for the same frame in one epoch.
    DuplicatePage {
        /// The frame number.
        gfn: u64,
    },
    /// A record that is not allowed where it appears.
    UnexpectedRecord {
        /// The record type.
        record_type: u32,
        /// Where it appeared and why that is wrong.
        context: &'static str,
    },
    /// An epoch number not above the last completed epoch.
    EpochNotIncreasing {
        /// Last completed epoch.
        last: u64,
        /// Epoch number found.
        found: u64,
    },
    /// `EpochEnd` names a different epoch than `EpochBegin`.
    EpochMismatch {
        /// Number in `EpochBegin`.
        begin: u64,
        /// Number in `EpochEnd`.
        end: u64,
    },
    /// `EpochEnd`'s record count differs from the records received.
    RecordCountMismatch {
        /// Count declared in `EpochEnd`.
        declared: u32,
        /// Records actually received from `EpochBegin` on.
        received: u32,
    },
    /// More than `u32::MAX` records in one epoch.
    TooManyRecords,
    /// The epoch's digest does not match its bytes.
    DigestMismatch,
    /// Memory for a decoded record could not be allocated.
    OutOfMemory,
    /// An earlier framing error left the assembler unable to find record boundaries; it rejects
    /// all input until [`EpochAssembler::reset`](super::EpochAssembler::reset).
    Desynchronized,
}

impl DecodeErrorKind {
    /// True if record boundaries can no longer be found after this error: the receiver must
    /// resynchronize with the sender (reset the assembler at a known epoch boundary).
    pub const fn loses_framing(&self) -> bool {
        matches!(
            self,
            Self::BadRecordLength { .. }
                | Self::UnknownMandatoryRecord { .. }
                | Self::Desynchronized
        )
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(
                    f,
                    "input truncated: {needed} bytes needed, {available} present"
                )
            }
            Self::BadMagic => f.write_str("bad magic: not a Castor checkpoint stream"),
            Self::UnsupportedVersion { major, minor } => write!(
                f,
                "unsupported stream version {major}.{minor} (this decoder reads major version {})",
                super::VERSION_MAJOR
            ),
            Self::UnknownHeaderFlags { flags } => write!(f, "unknown header flags {flags:#x}"),
            Self::BadPageSize { page_size } => {
                write!(f, "guest page size {page_size} is not {}", super::PAGE_SIZE)
            }
            Self::BadRamSize { ram_pages } => write!(
                f,
                "guest RAM size of {ram_pages} pages is zero or above the limit of {}",
                super::MAX_RAM_PAGES
            ),
            Self::ReservedNotZero => f.write_str("reserved field is not zero"),
            Self::PaddingNotZero => f.write_str("record padding is not zero"),
            Self::UnknownMandatoryRecord { record_type } => {
                write!(f, "unknown mandatory record type {record_type:#010x}")
            }
            Self::BadRecordLength {
                record_type,
                length,
            } => write!(
                f,
                "body length {length} is invalid for record type {record_type:#010x}"
            ),
            Self::VcpuOutOfRange { vcpu } => write!(
                f,
                "vCPU index {vcpu} is not below the limit of {}",
                super::MAX_VCPUS
            ),
            Self::UnknownPageEncoding { encoding } => {
                write!(f, "unknown page encoding {encoding}")
            }
            Self::BadPagePayload { encoding, length } => write!(
                f,
                "page payload of {length} bytes is invalid for page encoding {encoding}"
            ),
            Self::BadDelta { reason } => write!(f, "bad page delta: {reason}"),
            Self::BadLz4 => f.write_str("LZ4 payload does not decompress to exactly one page"),
            Self::DirtyListNotAscending { gfn } => write!(
                f,
                "dirty page list not strictly ascending at frame {gfn:#x}"
            ),
            Self::BadDirtyRange { first, count } => write!(
                f,
                "dirty page run of {count} frames from {first:#x} is empty, wraps or is too long"
            ),
            Self::GfnOutOfRange { gfn, ram_pages } => write!(
                f,
                "guest frame {gfn:#x} is outside guest RAM of {ram_pages} pages"
            ),
            Self::DuplicateVcpu { vcpu } => write!(f, "second state record for vCPU {vcpu}"),
            Self::DuplicateDevice { device_id } => {
                write!(f, "second state record for device {device_id}")
            }
            Self::TooManyDevices => write!(
                f,
                "more than {} device records in one epoch",
                super::MAX_DEVICES_PER_EPOCH
            ),
            Self::DuplicatePage { gfn } => write!(f, "second page record for frame {gfn:#x}"),
            Self::UnexpectedRecord {
                record_type,
                context,
            } => write!(f, "unexpected record type {record_type:#010x}: {context}"),
            Self::EpochNotIncreasing { last, found } => write!(
                f,
                "epoch {found} does not follow the last completed epoch {last}"
            ),
            Self::EpochMismatch { begin, end } => {
                write!(f, "epoch {begin} is closed by an EpochEnd for epoch {end}")
            }
            Self::RecordCountMismatch { declared, received } => write!(
                f,
                "EpochEnd declares {declared} records but {received} were received"
            ),
            Self::TooManyRecords => f.write_str("more than u32::MAX records in one epoch"),
            Self::DigestMismatch => {
                f.write_str("epoch digest mismatch: the epoch was altered or not received whole")
            }
            Self::OutOfMemory => f.write_str("out of memory while decoding a record"),
            Self::Desynchronized => {
                f.write_str("stream framing lost after an earlier error; reset required")
            }
        }
    }
}
