// SPDX-License-Identifier: MIT OR Apache-2.0
//! Strict decoding of one record from a byte slice.
//!
//! Every length is checked against its documented maximum (see [`MAX_RECORD_LEN`](super::MAX_RECORD_LEN)
//! and the other limits) and against the bytes present before anything is allocated; arithmetic is checked; nothing
//! here panics on any input.

use alloc::vec::Vec;

use super::digest::DIGEST_LEN;
use super::error::{DecodeError, DecodeErrorKind};
use super::limits::{MAX_DIRTY_GFNS_PER_RECORD, MAX_VCPUS};
use super::page::decode_payload;
use super::record::{RECORD_HEADER_LEN, Record, body_len_valid, record_type};
use super::wire::{Reader, padding_len};

/// A record header whose length is valid for its type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordHeader {
    pub(crate) record_type: u32,
    pub(crate) body_len: usize,
    /// Header, body and padding.
    pub(crate) total_len: usize,
}

/// Reads and checks the 8-byte record header at the start of `input` (at stream offset `base`).
/// Errors here lose the stream's framing (see [`DecodeErrorKind::loses_framing`]), except
/// [`DecodeErrorKind::Truncated`].
pub(crate) fn parse_record_header(input: &[u8], base: u64) -> Result<RecordHeader, DecodeError> {
    let mut r = Reader::new(input, base);
    let record_type = r.u32()?;
    let length = r.u32()?;
    let body_len = length as usize;
    match body_len_valid(record_type, body_len) {
        None => Err(DecodeError::new(
            base,
            DecodeErrorKind::UnknownMandatoryRecord { record_type },
        )),
        Some(false) => Err(DecodeError::new(
            base.saturating_add(4),
            DecodeErrorKind::BadRecordLength {
                record_type,
                length,
            },
        )),
        // Lengths are bounded by MAX_OPTIONAL_BODY_LEN, so this sum cannot overflow.
        Some(true) => Ok(RecordHeader {
            record_type,
            body_len,
            total_len: RECORD_HEADER_LEN + body_len + padding_len(body_len),
        }),
    }
}

/// Decodes one record from the start of `input`, returning it and the bytes it took (header,
/// body and padding: always a multiple of 8). Unknown optional records decode as
/// [`Record::SkippedOptional`]. Error offsets count from the start of `input`.
///
/// This checks everything one record can show on its own; rules spanning records (epoch
/// numbers, duplicates, record counts, digests, frame numbers against the RAM size) are checked
/// by [`EpochAssembler`](super::EpochAssembler).
pub fn decode_record(input: &[u8]) -> Result<(Record, usize), DecodeError> {
    decode_record_at(input, 0)
}

/// [`decode_record`] for input that starts at stream offset `base`.
pub(crate) fn decode_record_at(input: &[u8], base: u64) -> Result<(Record, usize), DecodeError> {
    let header = parse_record_header(input, base)?;
    let Some(record) = input.get(..header.total_len) else {
        return Err(DecodeError::new(
            base,
            DecodeErrorKind::Truncated {
                needed: header.total_len as u64,
                available: input.len() as u64,
            },
        ));
    };
    let body_end = RECORD_HEADER_LEN + header.body_len;
    let (body, padding) = match (
        record.get(RECORD_HEADER_LEN..body_end),
        record.get(body_end..),
    ) {
        (Some(body), Some(padding)) => (body, padding),
        _ => {
            return Err(DecodeError::new(
                base,
                DecodeErrorKind::BadRecordLength {
                    record_type: header.record_type,
                    length: header.body_len as u32,
                },
            ));
        }
    };
    if let Some(i) = padding.iter().position(|&b| b != 0) {
        let at = base.saturating_add((body_end + i) as u64);
        return Err(DecodeError::new(at, DecodeErrorKind::PaddingNotZero));
    }
    let body_base = base.saturating_add(RECORD_HEADER_LEN as u64);
    let record = decode_body(header.record_type, body, body_base)?;
    Ok((record, header.total_len))
}

/// Decodes a body whose length is already known to be valid for its type.
fn decode_body(kind: u32, body: &[u8], base: u64) -> Result<Record, DecodeError> {
    let mut r = Reader::new(body, base);
    let oom = DecodeError::new(base, DecodeErrorKind::OutOfMemory);
    let record = match kind {
        record_type::EPOCH_BEGIN => Record::EpochBegin {
            epoch: r.u64()?,
            guest_time: r.u64()?,
        },
        record_type::VCPU_STATE => {
            let at = r.offset();
            let vcpu = r.u32()?;
            if vcpu >= MAX_VCPUS {
                return Err(DecodeError::new(
                    at,
                    DecodeErrorKind::VcpuOutOfRange { vcpu },
                ));
            }
            r.reserved_u32()?;
            let state = copy_bytes(r.rest()).ok_or(oom)?;
            Record::VcpuState { vcpu, state }
        }
        record_type::DEVICE_STATE => {
            let device_id = r.u32()?;
            r.reserved_u32()?;
            let state = copy_bytes(r.rest()).ok_or(oom)?;
            Record::DeviceState { device_id, state }
        }
        record_type::PAGE => {
            let gfn = r.u64()?;
            let at = r.offset();
            let encoding = r.u32()?;
            r.reserved_u32()?;
            let payload_at = r.offset();
            let data = decode_payload(encoding, at, r.rest(), payload_at)?;
            Record::Page { gfn, data }
        }
        record_type::DIRTY_PAGE_LIST => {
            let mut gfns = Vec::new();
            gfns.try_reserve_exact(r.remaining() / 8).map_err(|_| oom)?;
            while r.remaining() > 0 {
                let at = r.offset();
                let gfn = r.u64()?;
                if gfns.last().is_some_and(|&last| last >= gfn) {
                    return Err(DecodeError::new(
                        at,
                        DecodeErrorKind::DirtyListNotAscending { gfn },
                    ));
                }
                gfns.push(gfn);
            }
            Record::DirtyPageList { gfns }
        }
        record_type::DIRTY_PAGE_RANGES => {
            let mut gfns: Vec<u64> = Vec::new();
            while r.remaining() > 0 {
                let at = r.offset();
                let (first, count) = (r.u64()?, r.u64()?);
                let bad = |kind| Err(DecodeError::new(at, kind));
                // Apart from the previous run: not overlapping, and not adjacent either (the
                // encoder joins adjacent runs), so the expanded list is strictly ascending.
                if gfns
                    .last()
                    .is_some_and(|&last| first <= last.saturating_add(1))
                {
                    return bad(DecodeErrorKind::DirtyListNotAscending { gfn: first });
                }
                let total = (gfns.len() as u64).saturating_add(count);
                if count == 0
                    || first.checked_add(count).is_none()
                    || total > MAX_DIRTY_GFNS_PER_RECORD as u64
                {
                    return bad(DecodeErrorKind::BadDirtyRange { first, count });
                }
                gfns.try_reserve(count as usize).map_err(|_| oom.clone())?;
                gfns.extend(first..first + count);
            }
            Record::DirtyPageList { gfns }
        }
        record_type::EPOCH_END => {
            let epoch = r.u64()?;
            let record_count = r.u32()?;
            r.reserved_u32()?;
            let digest = r.array::<DIGEST_LEN>()?;
            Record::EpochEnd {
                epoch,
                record_count,
                digest,
            }
        }
        _ => Record::SkippedOptional {
            record_type: kind,
            length: body.len() as u32,
        },
    };
    Ok(record)
}

/// A copy of `bytes`, or `None` if memory is exhausted.
fn copy_bytes(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(bytes.len()).ok()?;
    v.extend_from_slice(bytes);
    Some(v)
}
