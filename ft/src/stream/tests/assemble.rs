// SPDX-License-Identifier: MIT OR Apache-2.0
//! The epoch assembler: whole epochs in, verified epochs out, everything else rejected.

use alloc::collections::BTreeMap;

use super::*;

/// An epoch with every kind of record, written by `EpochWriter`, and the base pages its deltas
/// were made against.
struct Sample {
    bytes: Vec<u8>,
    bases: BTreeMap<u64, Box<PageBuf>>,
    pages: BTreeMap<u64, Box<PageBuf>>,
}

fn sample(epoch: u64, seed: u64) -> Sample {
    let mut rng = Rng::new(seed);
    let mut enc = Box::new(PageEncoder::new());
    let mut bases = BTreeMap::new();
    let mut pages = BTreeMap::new();
    let mut bytes = Vec::new();
    let mut w = EpochWriter::begin(&mut bytes, &header(), epoch, epoch * 1000).unwrap();
    w.vcpu_state(0, &rng.bytes(300)).unwrap();
    w.vcpu_state(1, &rng.bytes(301)).unwrap();
    w.device_state(7, &rng.bytes(5)).unwrap();
    let mut dirty = Vec::new();
    for gfn in [0u64, 3, 4, 100, 1023] {
        let base = random_page(&mut rng);
        let page = match gfn % 4 {
            0 => edited(&mut rng, &base, 4, 8),
            1 => zero_page(),
            2 => text_page(),
            _ => random_page(&mut rng),
        };
        w.encode_page(&mut enc, gfn, &page, Some(&base)).unwrap();
        bases.insert(gfn, base);
        pages.insert(gfn, page);
        dirty.push(gfn);
    }
    w.optional_record(record_type::OPTIONAL | 0x42, b"skip me")
        .unwrap();
    w.dirty_page_list(&dirty[..2]).unwrap();
    w.dirty_page_list(&dirty[2..]).unwrap();
    w.finish().unwrap();
    Sample {
        bytes,
        bases,
        pages,
    }
}

fn check(epoch: &Epoch, s: &Sample, number: u64) {
    assert_eq!(epoch.number, number);
    assert_eq!(epoch.guest_time, number * 1000);
    assert_eq!(epoch.vcpus.keys().copied().collect::<Vec<_>>(), [0, 1]);
    assert_eq!(epoch.vcpus[&1].len(), 301);
    assert_eq!(epoch.devices.len(), 1);
    assert_eq!(epoch.dirty_gfns, [0, 3, 4, 100, 1023]);
    // 1 begin + 3 state + 5 pages + 1 optional + 2 dirty lists.
    assert_eq!(epoch.record_count, 12);
    let mut store = s.bases.clone();
    epoch.apply_pages(&mut store).unwrap();
    assert_eq!(store, s.pages);
}

#[test]
fn epoch_round_trips_in_any_chunking() {
    let s = sample(1, 20);
    // Whole.
    let out = assemble_all(&s.bytes);
    let [Ok(epoch)] = out.as_slice() else {
        panic!("{out:?}")
    };
    check(epoch, &s, 1);
    // Byte by byte, and in random chunks.
    let mut rng = Rng::new(21);
    for max_chunk in [1, 3, 8, 9, 100, 5000] {
        let mut asm = EpochAssembler::new(&header());
        let mut got = Vec::new();
        let mut rest = &s.bytes[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(max_chunk)).min(rest.len());
            asm.feed_all(&rest[..n], |e| got.push(e));
            rest = &rest[n..];
        }
        let [Ok(epoch)] = got.as_slice() else {
            panic!("{got:?}")
        };
        check(epoch, &s, 1);
        assert_eq!(asm.last_epoch(), Some(1));
        assert_eq!(asm.offset(), s.bytes.len() as u64);
    }
}

#[test]
fn feed_stops_after_each_epoch() {
    let mut bytes = sample(1, 22).bytes;
    bytes.extend_from_slice(&sample(2, 23).bytes);
    let first_len = sample(1, 22).bytes.len();
    let mut asm = EpochAssembler::new(&header());
    let fed = asm.feed(&bytes);
    assert_eq!(fed.consumed, first_len);
    assert!(matches!(fed.outcome, Some(Ok(Epoch { number: 1, .. }))));
    let fed = asm.feed(&bytes[first_len..]);
    assert_eq!(fed.consumed, bytes.len() - first_len);
    assert!(matches!(fed.outcome, Some(Ok(Epoch { number: 2, .. }))));
    assert!(asm.feed(&[]).outcome.is_none());
}

#[test]
fn truncated_epoch_is_never_handed_out() {
    let s = sample(1, 24);
    for len in 0..s.bytes.len() {
        let mut asm = EpochAssembler::new(&header());
        let fed = asm.feed(&s.bytes[..len]);
        assert_eq!(fed.consumed, len);
        assert!(fed.outcome.is_none(), "prefix {len}");
    }
}

#[test]
fn every_flipped_bit_is_caught() {
    let rec = |k, b: &[u8]| raw_record(k, b);
    let bytes = raw_epoch(
        &[
            rec(record_type::EPOCH_BEGIN, &begin_body(9, 1)),
            rec(record_type::VCPU_STATE, &state_body(0, b"regs")),
            rec(record_type::PAGE, &page_body(5, 1, &[])),
            rec(record_type::PAGE, &page_body(6, 2, &[8, 0, 1, 0, 0xaa])),
            rec(record_type::DIRTY_PAGE_LIST, &dirty_body(&[5, 6])),
            rec(record_type::OPTIONAL | 3, b"x"),
        ],
        9,
        None,
        None,
    );
    assert!(matches!(assemble_all(&bytes).as_slice(), [Ok(_)]));
    for bit in 0..bytes.len() * 8 {
        let mut bad = bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        for outcome in assemble_all(&bad) {
            assert!(
                outcome.is_err(),
                "bit {bit} flipped and the epoch was accepted"
            );
        }
    }
}

#[test]
fn flipped_bits_in_a_large_epoch_are_caught() {
    let s = sample(3, 25);
    let mut rng = Rng::new(26);
    for _ in 0..300 {
        let bit = rng.below(s.bytes.len() * 8);
        let mut bad = s.bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        for outcome in assemble_all(&bad) {
            assert!(outcome.is_err(), "bit {bit}");
        }
    }
}

fn begin(epoch: u64) -> Vec<u8> {
    raw_record(record_type::EPOCH_BEGIN, &begin_body(epoch, 0))
}

fn zero_page_record(gfn: u64) -> Vec<u8> {
    raw_record(record_type::PAGE, &page_body(gfn, 1, &[]))
}

#[test]
fn epoch_numbers_must_match() {
    let bytes = raw_epoch(&[begin(4), zero_page_record(1)], 5, None, None);
    assert_eq!(
        rejected(&bytes),
        DecodeErrorKind::EpochMismatch { begin: 4, end: 5 }
    );
}

#[test]
fn record_count_must_match() {
    let bytes = raw_epoch(&[begin(4), zero_page_record(1)], 4, Some(3), None);
    assert_eq!(
        rejected(&bytes),
        DecodeErrorKind::RecordCountMismatch {
            declared: 3,
            received: 2
        }
    );
}

#[test]
fn digest_must_match() {
    let bytes = raw_epoch(
        &[begin(4), zero_page_record(1)],
        4,
        None,
        Some([0; DIGEST_LEN]),
    );
    assert_eq!(rejected(&bytes), DecodeErrorKind::DigestMismatch);
}

#[test]
fn delta_without_base_is_not_applied() {
    let mut rng = Rng::new(27);
    let mut enc = Box::new(PageEncoder::new());
    let base = random_page(&mut rng);
    let new = edited(&mut rng, &base, 1, 4);
    let mut bytes = Vec::new();
    let mut w = EpochWriter::begin(&mut bytes, &header(), 1, 0).unwrap();
    w.page(1, &EncodedPage::full(&base)).unwrap();
    assert_eq!(
        w.encode_page(&mut enc, 2, &new, Some(&base)).unwrap(),
        PageEncoding::Delta
    );
    w.finish().unwrap();
    let out = assemble_all(&bytes);
    let [Ok(epoch)] = out.as_slice() else {
        panic!("{out:?}")
    };
    // The backup holds no copy of page 2: nothing is applied, not even page 1.
    let mut store: BTreeMap<u64, Box<PageBuf>> = BTreeMap::new();
    assert_eq!(
        epoch.apply_pages(&mut store),
        Err(ApplyError::MissingBase { gfn: 2 })
    );
    assert!(store.is_empty());
    // With the base it applies.
    store.insert(2, base.clone());
    epoch.apply_pages(&mut store).unwrap();
    assert_eq!(*store[&1], *base);
    assert_eq!(*store[&2], *new);
}

#[test]
fn rejected_epoch_leaves_earlier_ones_and_the_stream_usable() {
    let good1 = sample(1, 28).bytes;
    let mut bad2 = sample(2, 29).bytes;
    let mid = bad2.len() / 2;
    bad2[mid] ^= 0x10;
    let good3 = sample(3, 30).bytes;
    let stream = [good1, bad2, good3].concat();
    let out = assemble_all(&stream);
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(matches!(out[0], Ok(Epoch { number: 1, .. })));
    assert!(out[1].is_err());
    assert!(matches!(out[2], Ok(Epoch { number: 3, .. })));
}

#[test]
fn skips_the_rest_of_a_rejected_epoch_and_resumes_at_the_next() {
    let dup = raw_epoch(
        &[
            begin(1),
            zero_page_record(1),
            zero_page_record(1),
            zero_page_record(2),
        ],
        1,
        None,
        None,
    );
    let good = raw_epoch(&[begin(2), zero_page_record(1)], 2, None, None);
    let mut asm = EpochAssembler::new(&header());
    let mut out = Vec::new();
    asm.feed_all(&[dup, good].concat(), |e| out.push(e));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        out[0].as_ref().unwrap_err().kind,
        DecodeErrorKind::DuplicatePage { gfn: 1 }
    );
    assert!(matches!(out[1], Ok(Epoch { number: 2, .. })));
    assert_eq!(asm.last_epoch(), Some(2));
}

#[test]
fn epochs_must_increase() {
    let one = raw_epoch(&[begin(5)], 5, None, None);
    let out = assemble_all(&[one.clone(), one.clone()].concat());
    assert!(matches!(out[0], Ok(Epoch { number: 5, .. })));
    assert_eq!(
        out[1].as_ref().unwrap_err().kind,
        DecodeErrorKind::EpochNotIncreasing { last: 5, found: 5 }
    );
    assert_eq!(out.len(), 2);
}

#[test]
fn restarted_epoch_replaces_the_unfinished_one() {
    // The sender aborts epoch 7 part-way and sends it again from the start.
    let partial = [begin(7), zero_page_record(1)].concat();
    let whole = raw_epoch(&[begin(7), zero_page_record(2)], 7, None, None);
    let out = assemble_all(&[partial, whole].concat());
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(matches!(
        out[0].as_ref().unwrap_err().kind,
        DecodeErrorKind::UnexpectedRecord {
            record_type: record_type::EPOCH_BEGIN,
            ..
        }
    ));
    let Ok(epoch) = &out[1] else { panic!() };
    assert_eq!(epoch.pages.keys().copied().collect::<Vec<_>>(), [2]);
}

#[test]
fn records_outside_an_epoch_are_rejected_optional_ones_skipped() {
    let opt = raw_record(record_type::OPTIONAL | 9, b"hello");
    let good = raw_epoch(&[begin(1), opt.clone()], 1, None, None);
    let out = assemble_all(&[opt.clone(), good.clone(), opt.clone()].concat());
    assert!(
        matches!(
            out.as_slice(),
            [Ok(Epoch {
                record_count: 2,
                ..
            })]
        ),
        "{out:?}"
    );

    let end = raw_record(record_type::EPOCH_END, &end_body(1, 1, &[0; DIGEST_LEN]));
    for stray in [zero_page_record(1), end] {
        let out = assemble_all(&[stray.clone(), stray, good.clone()].concat());
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(matches!(
            out[0].as_ref().unwrap_err().kind,
            DecodeErrorKind::UnexpectedRecord { .. }
        ));
        assert!(out[1].is_ok());
    }
}

#[test]
fn duplicates_and_out_of_range_frames_are_rejected() {
    let vcpu = raw_record(record_type::VCPU_STATE, &state_body(1, b"a"));
    let dev = raw_record(record_type::DEVICE_STATE, &state_body(1, b"a"));
    let cases = [
        (
            alloc::vec![begin(1), vcpu.clone(), vcpu],
            DecodeErrorKind::DuplicateVcpu { vcpu: 1 },
        ),
        (
            alloc::vec![begin(1), dev.clone(), dev],
            DecodeErrorKind::DuplicateDevice { device_id: 1 },
        ),
        (
            alloc::vec![begin(1), zero_page_record(RAM_PAGES)],
            DecodeErrorKind::GfnOutOfRange {
                gfn: RAM_PAGES,
                ram_pages: RAM_PAGES,
            },
        ),
        (
            alloc::vec![
                begin(1),
                raw_record(
                    record_type::DIRTY_PAGE_LIST,
                    &dirty_body(&[1, RAM_PAGES + 5])
                )
            ],
            DecodeErrorKind::GfnOutOfRange {
                gfn: RAM_PAGES + 5,
                ram_pages: RAM_PAGES,
            },
        ),
        (
            alloc::vec![
                begin(1),
                raw_record(record_type::DIRTY_PAGE_LIST, &dirty_body(&[1, 5])),
                raw_record(record_type::DIRTY_PAGE_LIST, &dirty_body(&[5, 6])),
            ],
            DecodeErrorKind::DirtyListNotAscending { gfn: 5 },
        ),
    ];
    for (records, kind) in cases {
        assert_eq!(rejected(&raw_epoch(&records, 1, None, None)), kind);
    }
}

#[test]
fn too_many_devices_are_rejected() {
    let mut records = alloc::vec![begin(1)];
    for id in 0..=MAX_DEVICES_PER_EPOCH as u32 {
        records.push(raw_record(record_type::DEVICE_STATE, &state_body(id, &[])));
    }
    assert_eq!(
        rejected(&raw_epoch(&records, 1, None, None)),
        DecodeErrorKind::TooManyDevices
    );
}

#[test]
fn framing_errors_desynchronize_until_reset() {
    let good = raw_epoch(&[begin(1)], 1, None, None);
    let mut bad = begin(1);
    bad[4] = 99; // length of an EpochBegin must be 16
    let mut asm = EpochAssembler::new(&header());
    let fed = asm.feed(&[bad.clone(), good.clone()].concat());
    // The whole input is consumed: nothing after a framing error can be trusted.
    assert_eq!(fed.consumed, bad.len() + good.len());
    let e = fed.outcome.unwrap().unwrap_err();
    assert_eq!((e.offset, e.kind.loses_framing()), (4, true));
    assert!(asm.is_desynchronized());
    let e = asm.feed(&good).outcome.unwrap().unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Desynchronized);
    assert_eq!(e.offset, (bad.len() + good.len()) as u64);
    asm.reset();
    assert!(!asm.is_desynchronized());
    assert!(matches!(
        asm.feed(&good).outcome,
        Some(Ok(Epoch { number: 1, .. }))
    ));
    // Also when the bad header arrives split across calls.
    let mut asm = EpochAssembler::new(&header());
    assert!(asm.feed(&bad[..5]).outcome.is_none());
    assert!(asm.feed(&bad[5..]).outcome.unwrap().is_err());
    assert!(asm.is_desynchronized());
}

#[test]
fn reset_drops_a_partial_epoch() {
    let good = raw_epoch(&[begin(1), zero_page_record(1)], 1, None, None);
    let mut asm = EpochAssembler::new(&header());
    assert!(asm.feed(&good[..30]).outcome.is_none());
    assert_eq!(asm.in_epoch(), Some(1));
    asm.reset();
    assert_eq!(asm.in_epoch(), None);
    assert!(matches!(asm.feed(&good).outcome, Some(Ok(_))));
}

#[test]
fn error_offsets_count_from_the_stream_start() {
    let good = raw_epoch(&[begin(1)], 1, None, None);
    let mut bad_pad = raw_record(record_type::VCPU_STATE, &state_body(0, &[1]));
    bad_pad[20] = 1;
    let stream = [good.clone(), begin(2), bad_pad].concat();
    let out = assemble_all(&stream);
    let e = out[1].as_ref().unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::PaddingNotZero);
    assert_eq!(e.offset, (good.len() + 24 + 20) as u64);
}
