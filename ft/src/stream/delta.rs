// SPDX-License-Identifier: MIT OR Apache-2.0
//! Page deltas: the bytes of a page that changed since the copy the backup holds.
//!
//! A delta payload is a sequence of runs, each `offset: u16, len: u16` (little-endian) followed
//! by `len` new bytes to store at `offset`. Runs carry the new bytes, not an XOR, so applying a
//! delta twice is harmless. A valid payload has runs with `len ≥ 1`, `offset + len ≤ PAGE_SIZE`,
//! in ascending, non-overlapping order, and no trailing bytes. No runs at all means "unchanged".
//!
//! The encoder merges two changed stretches separated by at most [`RUN_HEADER_LEN`] unchanged
//! bytes, since resending those bytes costs no more than a new run header.

use alloc::vec::Vec;

use super::error::{DecodeError, DecodeErrorKind};
use super::page::{PAGE_SIZE, PageBuf};

/// Size of a run's `{offset, len}` header.
pub const RUN_HEADER_LEN: usize = 4;

/// A checked delta payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta {
    payload: Vec<u8>,
}

/// One step of parsing: the next run and what follows it, or why the payload is malformed.
type Step<'a> = Result<Option<(usize, &'a [u8], &'a [u8])>, (usize, &'static str)>;

/// Splits the first run off `rest`. Errors carry the offset (within `rest`) of the bad field.
fn next_run(rest: &[u8]) -> Step<'_> {
    if rest.is_empty() {
        return Ok(None);
    }
    let Some((header, data)) = rest.split_first_chunk::<RUN_HEADER_LEN>() else {
        return Err((0, "truncated run header"));
    };
    let [o0, o1, l0, l1] = *header;
    let offset = usize::from(u16::from_le_bytes([o0, o1]));
    let len = usize::from(u16::from_le_bytes([l0, l1]));
    if len == 0 {
        return Err((2, "empty run"));
    }
    if offset + len > PAGE_SIZE {
        return Err((0, "run extends past the end of the page"));
    }
    match data.split_at_checked(len) {
        Some((bytes, rest)) => Ok(Some((offset, bytes, rest))),
        None => Err((RUN_HEADER_LEN, "truncated run data")),
    }
}

impl Delta {
    /// Checks `payload` (runs non-empty, in bounds, ascending and non-overlapping, no trailing
    /// bytes, smaller than a page) and keeps a copy. Error offsets count from
    /// the start of `payload`.
    pub fn parse(payload: &[u8]) -> Result<Self, DecodeError> {
        Self::parse_at(payload, 0)
    }

    /// [`parse`](Self::parse) for a payload found at stream offset `base`.
    pub(crate) fn parse_at(payload: &[u8], base: u64) -> Result<Self, DecodeError> {
        let bad = |at: usize, reason| {
            DecodeError::new(
                base.saturating_add(at as u64),
                DecodeErrorKind::BadDelta { reason },
            )
        };
        if payload.len() >= PAGE_SIZE {
            return Err(bad(0, "delta is not smaller than a full page"));
        }
        let mut rest = payload;
        let mut min_offset = 0usize;
        loop {
            let at = payload.len() - rest.len();
            match next_run(rest) {
                Ok(None) => break,
                Ok(Some((offset, bytes, tail))) => {
                    if offset < min_offset {
                        return Err(bad(at, "runs overlap or are out of order"));
                    }
                    min_offset = offset + bytes.len();
                    rest = tail;
                }
                Err((field, reason)) => return Err(bad(at + field, reason)),
            }
        }
        let mut copy = Vec::new();
        copy.try_reserve_exact(payload.len())
            .map_err(|_| DecodeError::new(base, DecodeErrorKind::OutOfMemory))?;
        copy.extend_from_slice(payload);
        Ok(Self { payload: copy })
    }

    /// The payload as it travels on the wire.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The runs: `(offset, new bytes)`, ascending.
    pub fn runs(&self) -> Runs<'_> {
        Runs {
            rest: &self.payload,
        }
    }

    /// Stores the delta's bytes into `page`, which must hold the base copy it was made against.
    pub fn apply(&self, page: &mut PageBuf) {
        for (offset, bytes) in self.runs() {
            if let Some(dst) = page.get_mut(offset..offset + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        }
    }
}

/// Iterator over a [`Delta`]'s runs, from [`Delta::runs`].
#[derive(Clone, Debug)]
pub struct Runs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Runs<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        // The payload was checked by `Delta::parse`, so this never meets an error.
        let (offset, bytes, rest) = next_run(self.rest).ok().flatten()?;
        self.rest = rest;
        Some((offset, bytes))
    }
}

/// Index of the first byte at or after `from` where `a` and `b` differ. Once aligned, compares
/// 64 bytes per step (eight words XORed and ORed, one branch), then finds the word and byte;
/// most of a page that changed a little is skipped this way.
fn next_difference(a: &PageBuf, b: &PageBuf, from: usize) -> Option<usize> {
    let mut i = from;
    while i < PAGE_SIZE && !i.is_multiple_of(8) {
        if a[i] != b[i] {
            return Some(i);
        }
        i += 1;
    }
    let (wa, _) = a.as_chunks::<8>();
    let (wb, _) = b.as_chunks::<8>();
    let diff = |w: usize| match (wa.get(w), wb.get(w)) {
        (Some(x), Some(y)) => u64::from_le_bytes(*x) ^ u64::from_le_bytes(*y),
        _ => 0,
    };
    let mut w = i / 8;
    while w < wa.len() {
        // A whole 64-byte block equal: one branch for eight words.
        if w.is_multiple_of(8) && (w..w + 8).fold(0, |acc, k| acc | diff(k)) == 0 {
            w += 8;
            continue;
        }
        let d = diff(w);
        if d != 0 {
            return Some(w * 8 + (d.trailing_zeros() / 8) as usize);
        }
        w += 1;
    }
    None
}

/// Bytes `i..i + 8` of `a` XOR those of `b`, little-endian; 0 past the page.
fn xor_word(a: &PageBuf, b: &PageBuf, i: usize) -> u64 {
    match (a.get(i..i + 8), b.get(i..i + 8)) {
        (Some(x), Some(y)) => {
            let w = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]));
            w(x) ^ w(y)
        }
        _ => 0,
    }
}

/// How many of the low-order bytes of `x` are non-zero before its first zero byte (8 if none
/// is zero). The lowest zero byte found by the carry trick is always a true one.
fn nonzero_low_bytes(x: u64) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = x.wrapping_sub(ONES) & !x & HIGHS;
    (zero_bytes.trailing_zeros() / 8) as usize
}

/// Where the run whose first changed byte is `start` ends: it takes changed bytes, bridging
/// gaps of up to [`RUN_HEADER_LEN`] unchanged ones, and ends before a longer gap or at the
/// page's end. `None` once it would pass `limit`. Looks at a word at a time: a word of
/// changed bytes extends the run at once, one of unchanged bytes ends it or names the gap.
fn run_end(prev: &PageBuf, new: &PageBuf, start: usize, limit: usize) -> Option<usize> {
    let mut end = start + 1;
    while end + 8 <= PAGE_SIZE {
        let x = xor_word(prev, new, end);
        let changed = nonzero_low_bytes(x);
        if changed > 0 {
            end += changed;
        } else {
            // Bytes from `end` unchanged up to the first changed one (8: none in the word).
            let gap = (x.trailing_zeros() / 8) as usize;
            if gap > RUN_HEADER_LEN {
                return (end <= limit).then_some(end);
            }
            end += gap + 1;
        }
        if end > limit {
            return None;
        }
    }
    // The last few bytes of the page, one at a time.
    let mut i = end;
    while i < PAGE_SIZE && i - end <= RUN_HEADER_LEN {
        if prev[i] != new[i] {
            end = i + 1;
        }
        i += 1;
    }
    (end <= limit).then_some(end)
}

/// Writes a delta turning `prev` into `new` into `out` and returns its length, or `None` if it
/// does not fit in `out` (the caller sizes `out` to the most it is willing to send). Stops as
/// soon as it knows the delta will not fit.
pub(crate) fn encode_delta(prev: &PageBuf, new: &PageBuf, out: &mut [u8]) -> Option<usize> {
    let mut len = 0usize;
    let mut from = 0usize;
    while let Some(start) = next_difference(prev, new, from) {
        // Room left for this run's bytes, after its header.
        let room = out.len().checked_sub(len + RUN_HEADER_LEN)?;
        let limit = start.checked_add(room)?.min(PAGE_SIZE);
        let end = run_end(prev, new, start, limit)?;
        let run = new.get(start..end)?;
        let dst = out.get_mut(len..len + RUN_HEADER_LEN + run.len())?;
        let (header, data) = dst.split_at_mut_checked(RUN_HEADER_LEN)?;
        let offset = u16::try_from(start).ok()?.to_le_bytes();
        let run_len = u16::try_from(run.len()).ok()?.to_le_bytes();
        header.copy_from_slice(&[offset[0], offset[1], run_len[0], run_len[1]]);
        data.copy_from_slice(run);
        len += RUN_HEADER_LEN + run.len();
        from = end;
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    /// The run's end found a byte at a time: the rule [`run_end`] implements word-wise.
    fn run_end_bytewise(
        prev: &PageBuf,
        new: &PageBuf,
        start: usize,
        limit: usize,
    ) -> Option<usize> {
        let mut end = start + 1;
        let mut i = end;
        while i < PAGE_SIZE && i - end < RUN_HEADER_LEN + 1 {
            if prev[i] != new[i] {
                end = i + 1;
                if end > limit {
                    return None;
                }
            }
            i += 1;
        }
        (end <= limit).then_some(end)
    }

    /// Word-wise and byte-wise runs end alike: over pages changed in scattered bytes, in
    /// stretches with gaps of every length around the bridged one, wholly, and near the end.
    #[test]
    fn runs_end_where_a_byte_scan_ends_them() {
        let mut rng = Rng::new(7);
        let prev = [0x33u8; PAGE_SIZE];
        for case in 0..3000 {
            let mut new = prev;
            match case % 3 {
                0 => {
                    for _ in 0..rng.below(40) {
                        new[rng.below(PAGE_SIZE)] ^= 1 + rng.below(255) as u8;
                    }
                }
                1 => {
                    // Stretches of changed bytes separated by gaps of 0 to 7 bytes.
                    let mut i = rng.below(PAGE_SIZE);
                    while i < PAGE_SIZE {
                        for _ in 0..1 + rng.below(20) {
                            if i < PAGE_SIZE {
                                new[i] ^= 0xFF;
                            }
                            i += 1;
                        }
                        i += rng.below(8);
                    }
                }
                _ => {
                    for b in new.iter_mut() {
                        if rng.below(10) > 0 {
                            *b ^= 0x5A;
                        }
                    }
                }
            }
            let limit = [PAGE_SIZE, rng.below(PAGE_SIZE) + 1][rng.below(2)];
            let mut from = 0;
            while let Some(start) = next_difference(&prev, &new, from) {
                let want = run_end_bytewise(&prev, &new, start, limit);
                assert_eq!(
                    run_end(&prev, &new, start, limit),
                    want,
                    "case {case} run at {start}"
                );
                match want {
                    Some(end) => from = end,
                    None => break,
                }
            }
        }
    }

    #[test]
    fn nonzero_low_bytes_counts_to_the_first_zero_byte() {
        assert_eq!(nonzero_low_bytes(0), 0);
        assert_eq!(nonzero_low_bytes(u64::MAX), 8);
        assert_eq!(nonzero_low_bytes(0x0100_0000_0000_00FF), 1);
        assert_eq!(nonzero_low_bytes(0x00FF_FFFF_FFFF_FFFF), 7);
        // A zero byte above a 0x01 byte: the borrow trick must not report the 0x01.
        assert_eq!(nonzero_low_bytes(0x0000_0000_0001_0101), 3);
        assert_eq!(nonzero_low_bytes(0x0100_0101), 2);
    }

    /// The block-wise scan finds what a byte-by-byte scan finds: differences at every offset
    /// (block and word edges included), from every start, one or several per page.
    #[test]
    fn next_difference_matches_a_byte_scan() {
        let naive =
            |a: &PageBuf, b: &PageBuf, from: usize| (from..PAGE_SIZE).find(|&i| a[i] != b[i]);
        let a = [0x5au8; PAGE_SIZE];
        for at in (0..PAGE_SIZE)
            .step_by(7)
            .chain([63, 64, 65, 4031, 4032, 4088, 4095])
        {
            let mut b = a;
            b[at] ^= 1;
            for from in [0, 1, 8, at.saturating_sub(1), at, at + 1, 4095] {
                assert_eq!(
                    next_difference(&a, &b, from),
                    naive(&a, &b, from),
                    "at {at} from {from}"
                );
            }
        }
        let mut rng = Rng::new(99);
        for _ in 0..200 {
            let mut b = a;
            for _ in 0..rng.below(6) {
                b[rng.below(PAGE_SIZE)] ^= 0x80;
            }
            let from = rng.below(PAGE_SIZE);
            assert_eq!(next_difference(&a, &b, from), naive(&a, &b, from));
        }
    }
}
