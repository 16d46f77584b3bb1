// SPDX-License-Identifier: MIT OR Apache-2.0
//! Record framing, record type codes and the decoded [`Record`] value.
//!
//! Every record is an 8-byte header followed by its body and zero padding up to the next 8-byte
//! boundary:
//!
//! | offset | size   | field                                                          |
//! |-------:|-------:|----------------------------------------------------------------|
//! |      0 |      4 | type; bit 31 ([`record_type::OPTIONAL`]) marks optional records |
//! |      4 |      4 | body length in bytes, padding excluded                          |
//! |      8 | length | body                                                           |
//! |      … | 0..=7  | zero padding                                                   |
//!
//! Bodies (little-endian):
//!
//! - `EPOCH_BEGIN`: epoch `u64`, guest time (TSC) `u64`.
//! - `VCPU_STATE`: vCPU index `u32`, reserved `u32`, opaque state
//!   (≤ [`MAX_VCPU_STATE_LEN`]).
//! - `DEVICE_STATE`: device id `u32`, reserved `u32`, opaque state
//!   (≤ [`MAX_DEVICE_STATE_LEN`]).
//! - `PAGE`: guest frame `u64`, [`PageEncoding`](super::PageEncoding) code `u32`, reserved
//!   `u32`, payload (see [`PageEncoding`](super::PageEncoding)).
//! - `DIRTY_PAGE_LIST`: 1..=[`MAX_DIRTY_GFNS_PER_RECORD`]
//!   guest frames as `u64`, strictly ascending.
//! - `DIRTY_PAGE_RANGES`: the same list as runs of consecutive frames: each run its first
//!   frame `u64` and its length `u64` (at least 1), runs ascending and apart (a run starts
//!   above the frame after the previous one's last), at most
//!   [`MAX_DIRTY_GFNS_PER_RECORD`] frames in all. Written instead of `DIRTY_PAGE_LIST`
//!   where it is shorter; decoded into the same [`Record::DirtyPageList`].
//! - `EPOCH_END`: epoch `u64`, record count `u32`, reserved `u32`, digest `[u8; 16]`
//!   ([`super::digest`]; format 1 had a 32-byte BLAKE3 digest).

use alloc::vec::Vec;

use super::digest::{DIGEST_LEN, Digest};
use super::limits::{
    MAX_DEVICE_STATE_LEN, MAX_DIRTY_GFNS_PER_RECORD, MAX_OPTIONAL_BODY_LEN, MAX_VCPU_STATE_LEN,
};
use super::page::{PAGE_SIZE, PageData};

/// Record type codes. Codes without [`OPTIONAL`](record_type::OPTIONAL) are mandatory: a decoder
/// that does not know one rejects the stream. Optional codes it does not know are skipped.
pub mod record_type {
    /// Bit 31: the record may be skipped by decoders that do not understand it.
    pub const OPTIONAL: u32 = 1 << 31;
    /// Starts an epoch.
    pub const EPOCH_BEGIN: u32 = 0x0000_0001;
    /// Opaque architectural state of one vCPU.
    pub const VCPU_STATE: u32 = 0x0000_0002;
    /// Opaque state of one emulated device.
    pub const DEVICE_STATE: u32 = 0x0000_0003;
    /// Contents of one guest page.
    pub const PAGE: u32 = 0x0000_0004;
    /// Guest frames dirtied in the epoch.
    pub const DIRTY_PAGE_LIST: u32 = 0x0000_0005;
    /// Ends an epoch, with its record count and digest.
    pub const EPOCH_END: u32 = 0x0000_0006;
    /// Guest frames dirtied in the epoch, as runs of consecutive frames.
    pub const DIRTY_PAGE_RANGES: u32 = 0x0000_0007;
}

/// Size of the `{type, length}` header in front of every record body.
pub const RECORD_HEADER_LEN: usize = 8;
/// Body length of `EPOCH_BEGIN`.
pub(crate) const EPOCH_BEGIN_BODY_LEN: usize = 16;
/// Body length of `EPOCH_END`.
pub(crate) const EPOCH_END_BODY_LEN: usize = 16 + DIGEST_LEN;
/// Fixed part of `VCPU_STATE` and `DEVICE_STATE` bodies (id, reserved).
pub(crate) const STATE_HEADER_LEN: usize = 8;
/// Fixed part of a `PAGE` body (gfn, encoding, reserved).
pub(crate) const PAGE_HEADER_LEN: usize = 16;

/// True if a body of `len` bytes may follow a header of type `record_type`. Checked as soon as a
/// record header is seen, before any body byte is buffered. `None` means the type is unknown and
/// mandatory.
pub(crate) fn body_len_valid(record_type: u32, len: usize) -> Option<bool> {
    use record_type::*;
    Some(match record_type {
        EPOCH_BEGIN => len == EPOCH_BEGIN_BODY_LEN,
        EPOCH_END => len == EPOCH_END_BODY_LEN,
        VCPU_STATE => (STATE_HEADER_LEN..=STATE_HEADER_LEN + MAX_VCPU_STATE_LEN).contains(&len),
        DEVICE_STATE => (STATE_HEADER_LEN..=STATE_HEADER_LEN + MAX_DEVICE_STATE_LEN).contains(&len),
        PAGE => (PAGE_HEADER_LEN..=PAGE_HEADER_LEN + PAGE_SIZE).contains(&len),
        DIRTY_PAGE_LIST => {
            len.is_multiple_of(8) && (8..=8 * MAX_DIRTY_GFNS_PER_RECORD).contains(&len)
        }
        DIRTY_PAGE_RANGES => {
            len.is_multiple_of(16) && (16..=16 * MAX_DIRTY_GFNS_PER_RECORD).contains(&len)
        }
        t if t & OPTIONAL != 0 => len <= MAX_OPTIONAL_BODY_LEN,
        _ => return None,
    })
}

/// One decoded, checked record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Starts epoch `epoch`.
    EpochBegin {
        /// Epoch number.
        epoch: u64,
        /// Guest time (TSC) at the checkpoint.
        guest_time: u64,
    },
    /// Opaque architectural state of one vCPU, produced and consumed by the arch layer.
    VcpuState {
        /// vCPU index, below [`MAX_VCPUS`](super::MAX_VCPUS).
        vcpu: u32,
        /// State blob.
        state: Vec<u8>,
    },
    /// Opaque state of one emulated device.
    DeviceState {
        /// Device id.
        device_id: u32,
        /// State blob.
        state: Vec<u8>,
    },
    /// Contents of one guest page (LZ4 payloads are already decompressed).
    Page {
        /// Guest frame number.
        gfn: u64,
        /// What to write into the page.
        data: PageData,
    },
    /// Guest frames dirtied in the epoch, strictly ascending.
    DirtyPageList {
        /// Frame numbers.
        gfns: Vec<u64>,
    },
    /// Ends epoch `epoch`.
    EpochEnd {
        /// Epoch number; must match `EpochBegin`'s.
        epoch: u64,
        /// Records from `EpochBegin` up to, not including, this one.
        record_count: u32,
        /// BLAKE3 of the bytes of those records (headers, bodies and padding).
        digest: Digest,
    },
    /// An optional record this decoder does not know; its body was skipped.
    SkippedOptional {
        /// Its type (bit 31 set).
        record_type: u32,
        /// Its body length.
        length: u32,
    },
}

impl Record {
    /// The type code this record travels under (`DIRTY_PAGE_LIST` for a dirty list that
    /// travelled as runs).
    pub const fn record_type(&self) -> u32 {
        match self {
            Self::EpochBegin { .. } => record_type::EPOCH_BEGIN,
            Self::VcpuState { .. } => record_type::VCPU_STATE,
            Self::DeviceState { .. } => record_type::DEVICE_STATE,
            Self::Page { .. } => record_type::PAGE,
            Self::DirtyPageList { .. } => record_type::DIRTY_PAGE_LIST,
            Self::EpochEnd { .. } => record_type::EPOCH_END,
            Self::SkippedOptional { record_type, .. } => *record_type,
        }
    }
}
