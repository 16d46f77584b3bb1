// SPDX-License-Identifier: MIT OR Apache-2.0
//! The checkpoint stream: how the primary sends each epoch's checkpoint to the backup.
//!
//! A stream is a [`StreamHeader`] followed by epochs. An epoch is a sequence of 8-byte-aligned
//! records (see [`record_type`] and the layouts in the `record` module docs):
//!
//! ```text
//! EpochBegin { epoch, guest_time }
//!   VcpuState { vcpu, state } | DeviceState { device_id, state }
//!   | Page { gfn, Full | Zero | Delta | Lz4 } | DirtyPageList { gfns } | optional records ...
//! EpochEnd { epoch, record_count, digest = XXH3-128(bytes of the records above) }
//! ```
//!
//! The primary writes an epoch with [`EpochWriter`] into any [`Sink`], choosing each page's
//! smallest encoding with [`PageEncoder`]. The backup feeds received bytes, in chunks of any
//! size, to an [`EpochAssembler`], which hands out an [`Epoch`] only once `EpochEnd` arrives and
//! the epoch number, record count and digest all check out; [`Epoch::apply_pages`] then writes
//! the pages into the backup's copy of guest memory. [`decode_record`] decodes single records.
//!
//! Decoding is strict and never panics: every length is bounded (see [`MAX_RECORD_LEN`] and the
//! other limits) and checked against the bytes present before anything is allocated, padding
//! and reserved fields must be zero, and unknown mandatory records are errors.
//!
//! Prior art: the framing follows Xen's migration stream v2 (`docs/specs/libxc-migration-stream.pandoc`
//! in the Xen tree, used by Remus and COLO checkpointing): an image header, then
//! `{type, length}` records padded to 8 bytes, whose type's top bit marks records a decoder may
//! skip. Unlike Xen, each epoch carries its own record count and digest, and pages may travel as
//! deltas against the copy the backup already holds. All integers are little-endian.
//!
//! Delta pages are made against the copy the backup holds when it applies the epoch: the copy
//! last sent on this stream. That holds because epochs are applied whole, in stream order, and
//! none after one that failed (`pair::backup`); the primary keeps those copies in a bounded
//! cache (`pair::primary`, `copies.rs`).

mod assemble;
mod decode;
mod delta;
pub mod digest;
mod encode;
mod epoch;
mod error;
mod header;
mod limits;
mod page;
mod record;
mod wire;

#[cfg(test)]
mod tests;

pub use assemble::{EpochAssembler, Fed};
pub use decode::decode_record;
pub use delta::{Delta, RUN_HEADER_LEN, Runs};
pub use encode::{EpochSummary, EpochWriter, Sink, WriteError};
pub use epoch::{ApplyError, Epoch, PageStore};
pub use error::{DecodeError, DecodeErrorKind};
pub use header::{HEADER_LEN, MAGIC, StreamHeader, VERSION_MAJOR, VERSION_MINOR};
pub use limits::{
    MAX_DEVICE_STATE_LEN, MAX_DEVICES_PER_EPOCH, MAX_DIRTY_GFNS_PER_RECORD, MAX_OPTIONAL_BODY_LEN,
    MAX_RAM_PAGES, MAX_RECORD_LEN, MAX_VCPU_STATE_LEN, MAX_VCPUS,
};
pub use page::{
    EncodedPage, MissingBase, PAGE_SIZE, PageBuf, PageData, PageEncoder, PageEncoding, is_zero_page,
};
pub use record::{RECORD_HEADER_LEN, Record, record_type};
pub use wire::RECORD_ALIGN;
