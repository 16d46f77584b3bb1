// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests for the checkpoint stream, and the helpers they share.

mod assemble;
mod header;
mod page;
mod random;
mod record;
mod writer;

use alloc::boxed::Box;
use alloc::vec::Vec;

pub(super) use super::digest::{DIGEST_LEN, Digest, digest};
use super::*;
pub(super) use crate::testutil::Rng;

pub(super) const RAM_PAGES: u64 = 1024;

pub(super) fn header() -> StreamHeader {
    StreamHeader::new(RAM_PAGES, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210).unwrap()
}

pub(super) fn zero_page() -> Box<PageBuf> {
    Box::new([0; PAGE_SIZE])
}

pub(super) fn random_page(rng: &mut Rng) -> Box<PageBuf> {
    let mut page = zero_page();
    rng.fill(&mut page[..]);
    page
}

/// A page that compresses well: text-like, repeating.
pub(super) fn text_page() -> Box<PageBuf> {
    let mut page = zero_page();
    let text = b"Castor checkpoints guest memory every epoch. ";
    for (i, b) in page.iter_mut().enumerate() {
        *b = text[i % text.len()];
    }
    page
}

/// `page` with `edits` random runs (1..=max_len bytes) overwritten with random bytes.
pub(super) fn edited(rng: &mut Rng, page: &PageBuf, edits: usize, max_len: usize) -> Box<PageBuf> {
    let mut new = Box::new(*page);
    for _ in 0..edits {
        let len = 1 + rng.below(max_len);
        let at = rng.below(PAGE_SIZE - len + 1);
        rng.fill(&mut new[at..at + len]);
    }
    new
}

/// A record's wire bytes, built by hand: header, body, zero padding.
pub(super) fn raw_record(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(body);
    while v.len() % 8 != 0 {
        v.push(0);
    }
    v
}

pub(super) fn begin_body(epoch: u64, guest_time: u64) -> Vec<u8> {
    let mut b = epoch.to_le_bytes().to_vec();
    b.extend_from_slice(&guest_time.to_le_bytes());
    b
}

pub(super) fn state_body(id: u32, state: &[u8]) -> Vec<u8> {
    let mut b = id.to_le_bytes().to_vec();
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(state);
    b
}

pub(super) fn page_body(gfn: u64, encoding: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = gfn.to_le_bytes().to_vec();
    b.extend_from_slice(&encoding.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(payload);
    b
}

pub(super) fn dirty_body(gfns: &[u64]) -> Vec<u8> {
    gfns.iter().flat_map(|g| g.to_le_bytes()).collect()
}

pub(super) fn end_body(epoch: u64, count: u32, digest: &Digest) -> Vec<u8> {
    let mut b = epoch.to_le_bytes().to_vec();
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(digest);
    b
}

/// An epoch built by hand from `records` (the first should be an EpochBegin), closed by an
/// EpochEnd for `end_epoch` whose count and digest are correct unless overridden.
pub(super) fn raw_epoch(
    records: &[Vec<u8>],
    end_epoch: u64,
    count: Option<u32>,
    digest: Option<Digest>,
) -> Vec<u8> {
    let bytes: Vec<u8> = records.concat();
    let real = super::digest::digest(&bytes);
    let end = end_body(
        end_epoch,
        count.unwrap_or(records.len() as u32),
        &digest.unwrap_or(real),
    );
    let mut out = bytes;
    out.extend_from_slice(&raw_record(record_type::EPOCH_END, &end));
    out
}

/// Feeds `bytes` to a fresh assembler and collects every outcome.
pub(super) fn assemble_all(bytes: &[u8]) -> Vec<Result<Epoch, DecodeError>> {
    let mut asm = EpochAssembler::new(&header());
    let mut out = Vec::new();
    asm.feed_all(bytes, |e| out.push(e));
    out
}

/// Feeds `bytes` and expects exactly one rejected epoch; returns its error kind.
pub(super) fn rejected(bytes: &[u8]) -> DecodeErrorKind {
    let out = assemble_all(bytes);
    match out.as_slice() {
        [Err(e)] => e.kind.clone(),
        other => panic!("expected one rejection, got {other:?}"),
    }
}

/// An LZ4 block of `data` (the crate's allocating helpers are not enabled).
pub(super) fn lz4(data: &[u8]) -> Vec<u8> {
    let mut out = alloc::vec![0; lz4_flex::block::get_maximum_output_size(data.len())];
    let n = lz4_flex::block::compress_into(data, &mut out).unwrap();
    out.truncate(n);
    out
}
