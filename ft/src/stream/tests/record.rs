// SPDX-License-Identifier: MIT OR Apache-2.0
//! Single-record decoding: round trips and every rejection.

use super::*;

/// One record of every kind, as the writer emits them, with what each decodes to.
fn samples() -> Vec<(Vec<u8>, Record)> {
    let mut rng = Rng::new(10);
    let mut enc = Box::new(PageEncoder::new());
    let prev = random_page(&mut rng);
    let new = edited(&mut rng, &prev, 2, 3);
    let text = text_page();
    let mut bytes = Vec::new();
    let mut w = EpochWriter::begin(&mut bytes, &header(), 42, 0x1234_5678).unwrap();
    w.vcpu_state(3, &[1, 2, 3]).unwrap();
    w.vcpu_state(4, &[]).unwrap();
    w.device_state(0xdead, &[9; 17]).unwrap();
    w.page(1, &EncodedPage::zero()).unwrap();
    w.page(2, &EncodedPage::full(&prev)).unwrap();
    w.page(3, &enc.delta(&new, &prev).unwrap()).unwrap();
    w.page(4, &enc.lz4(&text).unwrap()).unwrap();
    w.dirty_page_list(&[1, 2, 3, 4, 1000]).unwrap();
    w.optional_record(record_type::OPTIONAL | 77, b"future")
        .unwrap();
    let (_, summary) = w.finish().unwrap();

    let delta = {
        let mut payload = Vec::new();
        let e = enc.delta(&new, &prev).unwrap();
        payload.extend_from_slice(e.payload());
        Delta::parse(&payload).unwrap()
    };
    let expected = [
        Record::EpochBegin {
            epoch: 42,
            guest_time: 0x1234_5678,
        },
        Record::VcpuState {
            vcpu: 3,
            state: alloc::vec![1, 2, 3],
        },
        Record::VcpuState {
            vcpu: 4,
            state: Vec::new(),
        },
        Record::DeviceState {
            device_id: 0xdead,
            state: alloc::vec![9; 17],
        },
        Record::Page {
            gfn: 1,
            data: PageData::Zero,
        },
        Record::Page {
            gfn: 2,
            data: PageData::Full(prev.clone()),
        },
        Record::Page {
            gfn: 3,
            data: PageData::Delta(delta),
        },
        Record::Page {
            gfn: 4,
            data: PageData::Full(text),
        },
        Record::DirtyPageList {
            gfns: alloc::vec![1, 2, 3, 4, 1000],
        },
        Record::SkippedOptional {
            record_type: record_type::OPTIONAL | 77,
            length: 6,
        },
        Record::EpochEnd {
            epoch: 42,
            record_count: 10,
            digest: summary.digest,
        },
    ];
    assert_eq!(summary.record_count, 10);
    assert_eq!(summary.bytes, bytes.len() as u64);
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    for record in expected {
        let (_, len) = decode_record(rest).unwrap();
        out.push((rest[..len].to_vec(), record));
        rest = &rest[len..];
    }
    assert!(rest.is_empty());
    out
}

#[test]
fn every_record_round_trips() {
    for (bytes, expected) in samples() {
        assert_eq!(bytes.len() % RECORD_ALIGN, 0);
        let (record, len) = decode_record(&bytes).unwrap();
        assert_eq!(len, bytes.len());
        assert_eq!(record, expected);
        // Both dirty records decode to a list (the runs of [1, 2, 3, 4, 1000] are shorter).
        let written = match u32::from_le_bytes(bytes[..4].try_into().unwrap()) {
            record_type::DIRTY_PAGE_RANGES => record_type::DIRTY_PAGE_LIST,
            t => t,
        };
        assert_eq!(record.record_type(), written);
        // Trailing bytes are left alone.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0xee; 13]);
        assert_eq!(decode_record(&longer).unwrap(), (expected, bytes.len()));
    }
}

#[test]
fn truncated_at_every_byte_boundary() {
    for (bytes, _) in samples() {
        for len in 0..bytes.len() {
            let e = decode_record(&bytes[..len]).unwrap_err();
            assert!(
                matches!(e.kind, DecodeErrorKind::Truncated { .. }),
                "{len}/{}: {e}",
                bytes.len()
            );
        }
    }
}

fn err(bytes: &[u8]) -> DecodeError {
    decode_record(bytes).unwrap_err()
}

#[test]
fn padding_must_be_zero() {
    let rec = raw_record(record_type::VCPU_STATE, &state_body(1, &[1, 2, 3]));
    assert_eq!(rec.len(), 24);
    for at in 19..24 {
        let mut bad = rec.clone();
        bad[at] = 0x80;
        let e = err(&bad);
        assert_eq!(
            (e.offset, e.kind),
            (at as u64, DecodeErrorKind::PaddingNotZero)
        );
    }
}

#[test]
fn misaligned_record_is_rejected() {
    // A record that starts four bytes late reads its length from the type field's neighbour:
    // the framing is wrong and the decoder says so instead of guessing.
    let rec = raw_record(record_type::EPOCH_BEGIN, &begin_body(1, 2));
    let mut shifted = alloc::vec![0u8; 4];
    shifted.extend_from_slice(&rec);
    assert!(err(&shifted).kind.loses_framing());
}

#[test]
fn reserved_fields_must_be_zero() {
    let mut vcpu = raw_record(record_type::VCPU_STATE, &state_body(1, &[7]));
    vcpu[12] = 1;
    assert_eq!(
        (err(&vcpu).offset, err(&vcpu).kind),
        (12, DecodeErrorKind::ReservedNotZero)
    );
    let mut page = raw_record(record_type::PAGE, &page_body(1, 1, &[]));
    page[23] = 1;
    assert_eq!(err(&page).kind, DecodeErrorKind::ReservedNotZero);
    let mut end = raw_record(record_type::EPOCH_END, &end_body(1, 1, &[0; DIGEST_LEN]));
    end[20] = 1;
    assert_eq!(
        (err(&end).offset, err(&end).kind),
        (20, DecodeErrorKind::ReservedNotZero)
    );
}

#[test]
fn oversize_and_impossible_lengths_are_rejected() {
    let bad_len = |kind: u32, len: u32| {
        let mut rec = Vec::new();
        rec.extend_from_slice(&kind.to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes());
        // Present bytes do not matter: the length is judged first.
        rec.extend_from_slice(&[0; 64]);
        let e = err(&rec);
        assert_eq!(e.offset, 4);
        assert_eq!(
            e.kind,
            DecodeErrorKind::BadRecordLength {
                record_type: kind,
                length: len
            }
        );
        assert!(e.kind.loses_framing());
    };
    use record_type::*;
    for len in [0, 15, 17, u32::MAX] {
        bad_len(EPOCH_BEGIN, len);
    }
    for len in [47, 49] {
        bad_len(EPOCH_END, len);
    }
    bad_len(VCPU_STATE, 7);
    bad_len(VCPU_STATE, (8 + MAX_VCPU_STATE_LEN + 1) as u32);
    bad_len(DEVICE_STATE, (8 + MAX_DEVICE_STATE_LEN + 1) as u32);
    bad_len(PAGE, 15);
    bad_len(PAGE, (16 + PAGE_SIZE + 1) as u32);
    for len in [0, 7, 12, (8 * MAX_DIRTY_GFNS_PER_RECORD + 8) as u32] {
        bad_len(DIRTY_PAGE_LIST, len);
    }
    bad_len(OPTIONAL | 5, (MAX_OPTIONAL_BODY_LEN + 1) as u32);
    bad_len(OPTIONAL, u32::MAX);
    // At the limits they are accepted (here: reported as merely truncated).
    let mut rec = (OPTIONAL | 5).to_le_bytes().to_vec();
    rec.extend_from_slice(&(MAX_OPTIONAL_BODY_LEN as u32).to_le_bytes());
    assert!(
        matches!(err(&rec).kind, DecodeErrorKind::Truncated { needed, .. }
        if needed == MAX_RECORD_LEN as u64)
    );
}

#[test]
fn unknown_mandatory_record_is_rejected() {
    for kind in [0, 8, 0x100, 0x7fff_ffff] {
        let e = err(&raw_record(kind, &[1, 2, 3]));
        assert_eq!(
            e.kind,
            DecodeErrorKind::UnknownMandatoryRecord { record_type: kind }
        );
        assert!(alloc::format!("{e}").contains("unknown mandatory record type"));
    }
}

#[test]
fn unknown_optional_record_is_skipped() {
    for (kind, body) in [
        (record_type::OPTIONAL, &[][..]),
        (record_type::OPTIONAL | 1, &[1, 2, 3][..]),
        (u32::MAX, &[0; 100][..]),
    ] {
        let rec = raw_record(kind, body);
        assert_eq!(
            decode_record(&rec).unwrap(),
            (
                Record::SkippedOptional {
                    record_type: kind,
                    length: body.len() as u32
                },
                rec.len()
            )
        );
    }
}

#[test]
fn dirty_list_must_be_sorted_without_duplicates() {
    for (gfns, bad, at) in [
        (&[1u64, 3, 2][..], 2u64, 24u64),
        (&[5, 5][..], 5, 16),
        (&[9, 1][..], 1, 16),
    ] {
        let e = err(&raw_record(record_type::DIRTY_PAGE_LIST, &dirty_body(gfns)));
        assert_eq!(e.kind, DecodeErrorKind::DirtyListNotAscending { gfn: bad });
        assert_eq!(e.offset, at);
    }
}

/// A `DIRTY_PAGE_RANGES` body from (first, count) runs.
fn ranges_body(runs: &[(u64, u64)]) -> Vec<u8> {
    runs.iter()
        .flat_map(|&(first, count)| [first.to_le_bytes(), count.to_le_bytes()])
        .flatten()
        .collect()
}

#[test]
fn dirty_ranges_expand_to_the_list() {
    let rec = raw_record(
        record_type::DIRTY_PAGE_RANGES,
        &ranges_body(&[(2, 3), (7, 1), (9, 2)]),
    );
    let (record, len) = decode_record(&rec).unwrap();
    assert_eq!(len, rec.len());
    assert_eq!(
        record,
        Record::DirtyPageList {
            gfns: alloc::vec![2, 3, 4, 7, 9, 10]
        }
    );
}

#[test]
fn hostile_dirty_ranges_are_refused() {
    let max = MAX_DIRTY_GFNS_PER_RECORD as u64;
    for (runs, kind, at) in [
        // Empty run.
        (
            &[(5u64, 0u64)][..],
            DecodeErrorKind::BadDirtyRange { first: 5, count: 0 },
            8u64,
        ),
        // Wraps past the last frame number.
        (
            &[(u64::MAX - 1, 4)][..],
            DecodeErrorKind::BadDirtyRange {
                first: u64::MAX - 1,
                count: 4,
            },
            8,
        ),
        // More frames than a list may hold (an allocation bomb otherwise).
        (
            &[(0, max + 1)][..],
            DecodeErrorKind::BadDirtyRange {
                first: 0,
                count: max + 1,
            },
            8,
        ),
        (
            &[(0, max), (max + 5, 1)][..],
            DecodeErrorKind::BadDirtyRange {
                first: max + 5,
                count: 1,
            },
            24,
        ),
        // Overlapping, adjacent, descending.
        (
            &[(4, 4), (6, 1)][..],
            DecodeErrorKind::DirtyListNotAscending { gfn: 6 },
            24,
        ),
        (
            &[(4, 4), (8, 1)][..],
            DecodeErrorKind::DirtyListNotAscending { gfn: 8 },
            24,
        ),
        (
            &[(9, 1), (1, 1)][..],
            DecodeErrorKind::DirtyListNotAscending { gfn: 1 },
            24,
        ),
    ] {
        let e = err(&raw_record(
            record_type::DIRTY_PAGE_RANGES,
            &ranges_body(runs),
        ));
        assert_eq!((e.kind, e.offset), (kind, at), "{runs:?}");
    }
    // A body that is not whole runs is refused from its header.
    let e = err(&raw_record(record_type::DIRTY_PAGE_RANGES, &[0; 24]));
    assert!(
        matches!(e.kind, DecodeErrorKind::BadRecordLength { .. }),
        "{e:?}"
    );
}

#[test]
fn vcpu_index_is_bounded() {
    let e = err(&raw_record(
        record_type::VCPU_STATE,
        &state_body(MAX_VCPUS, &[]),
    ));
    assert_eq!(e.kind, DecodeErrorKind::VcpuOutOfRange { vcpu: MAX_VCPUS });
}

#[test]
fn page_payloads_must_fit_their_encoding() {
    let page =
        |enc: u32, payload: &[u8]| err(&raw_record(record_type::PAGE, &page_body(1, enc, payload)));
    let len_err = |enc: u32, len: u64| DecodeErrorKind::BadPagePayload {
        encoding: enc,
        length: len,
    };
    assert_eq!(page(0, &[1; PAGE_SIZE - 1]).kind, len_err(0, 4095));
    assert_eq!(page(1, &[0]).kind, len_err(1, 1));
    assert_eq!(page(3, &[]).kind, len_err(3, 0));
    assert_eq!(page(3, &[0; PAGE_SIZE]).kind, len_err(3, 4096));
    assert_eq!(page(2, &[0; PAGE_SIZE]).kind, len_err(2, 4096));
    let e = page(4, &[]);
    assert_eq!(
        (e.offset, e.kind),
        (16, DecodeErrorKind::UnknownPageEncoding { encoding: 4 })
    );
    // LZ4 that is garbage, or decompresses to less than a page.
    assert_eq!(page(3, &[0xff; 40]).kind, DecodeErrorKind::BadLz4);
    let short = lz4(&[7u8; 4000]);
    assert_eq!(page(3, &short).kind, DecodeErrorKind::BadLz4);
    let long = lz4(&[7u8; 4200]);
    assert_eq!(page(3, &long).kind, DecodeErrorKind::BadLz4);
    let exact = lz4(&[7u8; PAGE_SIZE]);
    let rec = raw_record(record_type::PAGE, &page_body(1, 3, &exact));
    assert!(matches!(
        decode_record(&rec),
        Ok((
            Record::Page {
                data: PageData::Full(_),
                ..
            },
            _
        ))
    ));
    // Delta errors point into the payload.
    let e = page(2, &[0, 0, 0, 0]);
    assert_eq!(
        (e.offset, e.kind),
        (
            24 + 2,
            DecodeErrorKind::BadDelta {
                reason: "empty run"
            }
        )
    );
}

#[test]
fn error_messages_name_the_offset() {
    let e = err(&raw_record(8, &[]));
    let msg = alloc::format!("{e}");
    assert_eq!(
        msg,
        "unknown mandatory record type 0x00000008 (at byte offset 0)"
    );
}
