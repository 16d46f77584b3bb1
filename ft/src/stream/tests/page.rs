// SPDX-License-Identifier: MIT OR Apache-2.0
//! Page encodings: delta correctness, smallest-encoding choice, sizes.

use super::*;

/// Reference delta encoder, byte by byte with the same merge rule (gaps of up to 4 equal bytes
/// are bridged). `None` if not smaller than a page.
fn reference_delta(prev: &PageBuf, new: &PageBuf) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < PAGE_SIZE {
        if prev[i] == new[i] {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i + 1;
        let mut j = end;
        while j < PAGE_SIZE && j - end <= 4 {
            if prev[j] != new[j] {
                end = j + 1;
            }
            j += 1;
        }
        out.extend_from_slice(&(start as u16).to_le_bytes());
        out.extend_from_slice(&((end - start) as u16).to_le_bytes());
        out.extend_from_slice(&new[start..end]);
        i = end;
    }
    (out.len() < PAGE_SIZE).then_some(out)
}

fn decode(encoded: &EncodedPage<'_>) -> PageData {
    let mut bytes = Vec::new();
    let mut w = EpochWriter::begin(&mut bytes, &header(), 1, 0).unwrap();
    w.page(7, encoded).unwrap();
    w.finish().unwrap();
    let (_, begin_len) = decode_record(&bytes).unwrap();
    match decode_record(&bytes[begin_len..]).unwrap() {
        (Record::Page { gfn: 7, data }, len) => {
            assert_eq!(len, encoded.record_len());
            data
        }
        other => panic!("{other:?}"),
    }
}

fn rebuild(data: &PageData, base: Option<&PageBuf>) -> Box<PageBuf> {
    let mut out = zero_page();
    data.reconstruct(base, &mut out).unwrap();
    out
}

#[test]
fn zero_detection() {
    let mut page = zero_page();
    assert!(is_zero_page(&page));
    for at in [0, 1, 63, 64, 2047, 4095] {
        page[at] = 1;
        assert!(!is_zero_page(&page), "byte {at}");
        page[at] = 0;
    }
}

#[test]
fn every_encoding_round_trips() {
    let mut rng = Rng::new(1);
    let mut enc = Box::new(PageEncoder::new());
    let prev = random_page(&mut rng);

    // Zero.
    let zero = zero_page();
    let e = enc.encode(&zero, Some(&prev));
    assert_eq!(e.encoding(), PageEncoding::Zero);
    assert_eq!(decode(&e), PageData::Zero);
    assert_eq!(*rebuild(&PageData::Zero, Some(&prev)), *zero);

    // Full: random bytes do not compress and share nothing with `prev`.
    let full = random_page(&mut rng);
    let e = enc.encode(&full, Some(&prev));
    assert_eq!(e.encoding(), PageEncoding::Full);
    let data = decode(&e);
    assert_eq!(data, PageData::Full(full.clone()));
    assert_eq!(*rebuild(&data, None), *full);

    // Delta: a few bytes changed.
    let new = edited(&mut rng, &prev, 3, 10);
    let e = enc.encode(&new, Some(&prev));
    assert_eq!(e.encoding(), PageEncoding::Delta);
    let data = decode(&e);
    assert!(data.needs_base());
    assert_eq!(*rebuild(&data, Some(&prev)), *new);
    assert_eq!(data.reconstruct(None, &mut zero_page()), Err(MissingBase));

    // LZ4: compressible, no previous copy.
    let text = text_page();
    let e = enc.encode(&text, None);
    assert_eq!(e.encoding(), PageEncoding::Lz4);
    assert!(e.payload().len() < 200, "{}", e.payload().len());
    let data = decode(&e);
    assert_eq!(data, PageData::Full(text.clone()));

    // Unchanged page: an empty delta.
    let e = enc.encode(&prev, Some(&prev));
    assert_eq!(e.encoding(), PageEncoding::Delta);
    assert!(e.payload().is_empty());
    assert_eq!(*rebuild(&decode(&e), Some(&prev)), *prev);
}

#[test]
fn delta_is_correct_on_random_edits() {
    let mut rng = Rng::new(2);
    let mut enc = Box::new(PageEncoder::new());
    for round in 0..2000 {
        let prev = if round % 3 == 0 {
            text_page()
        } else {
            random_page(&mut rng)
        };
        let edits = rng.below(40);
        let max_len = 1 + rng.below(if round % 5 == 0 { 600 } else { 16 });
        let new = edited(&mut rng, &prev, edits, max_len);
        let expected = reference_delta(&prev, &new);
        let got = enc.delta(&new, &prev).map(|e| e.payload().to_vec());
        assert_eq!(got, expected, "round {round}");
        if let Some(payload) = got {
            let delta = Delta::parse(&payload).unwrap();
            let mut page = prev.clone();
            delta.apply(&mut page);
            assert_eq!(*page, *new, "round {round}");
            // Runs are ascending, in bounds and non-empty.
            let mut min = 0;
            for (offset, bytes) in delta.runs() {
                assert!(offset >= min && !bytes.is_empty() && offset + bytes.len() <= PAGE_SIZE);
                min = offset + bytes.len();
            }
        }
    }
}

#[test]
fn delta_edges_of_the_page() {
    let mut enc = Box::new(PageEncoder::new());
    let prev = zero_page();
    let mut new = zero_page();
    new[0] = 1;
    new[4095] = 2;
    let payload = enc.delta(&new, &prev).unwrap().payload().to_vec();
    assert_eq!(payload, [0, 0, 1, 0, 1, 0xff, 0x0f, 1, 0, 2]);
    // Gaps of up to 4 equal bytes are bridged, 5 are not.
    let mut new = zero_page();
    new[10] = 1;
    new[15] = 1;
    assert_eq!(enc.delta(&new, &prev).unwrap().payload().len(), 4 + 6);
    new[15] = 0;
    new[16] = 1;
    assert_eq!(enc.delta(&new, &prev).unwrap().payload().len(), 2 * (4 + 1));
    // A delta that would not be smaller than a page is not produced.
    let mut rng = Rng::new(3);
    let mut new = random_page(&mut rng);
    new[0] = new[0].wrapping_add(1);
    new[1] = 1;
    assert!(enc.delta(&new, &zero_page()).is_none());
}

#[test]
fn encoder_chooses_the_smallest_encoding() {
    let mut rng = Rng::new(4);
    let mut enc = Box::new(PageEncoder::new());
    let mut seen = [0usize; 4];
    for round in 0..1500 {
        let base = match round % 4 {
            0 => text_page(),
            1 => zero_page(),
            _ => random_page(&mut rng),
        };
        let page = match rng.below(5) {
            0 => zero_page(),
            1 => base.clone(),
            _ => {
                let max_len = [1, 8, 64, 512, 4096][rng.below(5)];
                let edits = rng.below(12);
                edited(&mut rng, &base, edits, max_len)
            }
        };
        let prev = (rng.below(4) != 0).then(|| base.clone());
        let delta = prev
            .as_deref()
            .and_then(|p| enc.delta(&page, p).map(|e| e.payload().len()));
        let lz4 = enc.lz4(&page).map(|e| e.payload().len());
        let chosen = enc.encode(&page, prev.as_deref());
        let len = chosen.payload().len();
        let expected = if is_zero_page(&page) {
            PageEncoding::Zero
        } else {
            match (delta, lz4) {
                (Some(d), Some(l)) if l < d => PageEncoding::Lz4,
                (Some(_), _) => PageEncoding::Delta,
                (None, Some(_)) => PageEncoding::Lz4,
                (None, None) => PageEncoding::Full,
            }
        };
        assert_eq!(
            chosen.encoding(),
            expected,
            "round {round}: delta {delta:?} lz4 {lz4:?}"
        );
        for alternative in [delta, lz4].into_iter().flatten() {
            assert!(len <= alternative);
        }
        assert!(len <= PAGE_SIZE);
        seen[chosen.encoding().code() as usize] += 1;
        // And it decodes back to the page.
        let data = decode(&chosen);
        assert_eq!(*rebuild(&data, prev.as_deref()), *page, "round {round}");
    }
    assert!(
        seen.iter().all(|&n| n > 0),
        "every encoding exercised: {seen:?}"
    );
}

#[test]
fn no_lz4_block_of_a_page_is_tiny() {
    // The encoder skips LZ4 when a delta is at most 16 bytes; check that LZ4 never goes that low
    // on the most compressible pages there are.
    let mut enc = Box::new(PageEncoder::new());
    for fill in 0..=255u8 {
        let mut page = Box::new([fill; PAGE_SIZE]);
        assert!(enc.lz4(&page).unwrap().payload().len() > 16);
        page[4095] ^= 1;
        assert!(enc.lz4(&page).unwrap().payload().len() > 16);
        page[0] ^= 1;
        assert!(enc.lz4(&page).unwrap().payload().len() > 16);
    }
}

#[test]
fn size_figures() {
    let mut enc = Box::new(PageEncoder::new());
    let zero = zero_page();
    let e = enc.encode(&zero, None);
    assert_eq!(e.record_len(), 24);
    assert!(e.record_len() < 32);

    let mut rng = Rng::new(5);
    let prev = random_page(&mut rng);
    let mut one = prev.clone();
    one[1234] ^= 0x5a;
    let e = enc.encode(&one, Some(&prev));
    assert_eq!(e.encoding(), PageEncoding::Delta);
    assert_eq!(e.record_len(), 32);
    assert!(e.record_len() < 64);

    let e = enc.encode(&prev, None);
    assert_eq!(e.record_len(), 8 + 16 + PAGE_SIZE);

    // The writer emits exactly that many bytes.
    let mut bytes = Vec::new();
    let mut w = EpochWriter::begin(&mut bytes, &header(), 1, 0).unwrap();
    let before = w.bytes_written();
    w.encode_page(&mut enc, 3, &one, Some(&prev)).unwrap();
    assert_eq!(w.bytes_written() - before, 32);
}

#[test]
fn page_encoding_codes() {
    for e in [
        PageEncoding::Full,
        PageEncoding::Zero,
        PageEncoding::Delta,
        PageEncoding::Lz4,
    ] {
        assert_eq!(PageEncoding::from_code(e.code()), Some(e));
    }
    assert_eq!(PageEncoding::from_code(4), None);
}

#[test]
fn delta_parse_rejects_malformed_payloads() {
    let cases: [(&[u8], u64, &str); 6] = [
        (&[0, 0, 0, 0], 2, "empty run"),
        (
            &[0xff, 0x0f, 2, 0, 1, 2],
            0,
            "run extends past the end of the page",
        ),
        (&[0, 0, 1], 0, "truncated run header"),
        (&[0, 0, 3, 0, 1, 2], 4, "truncated run data"),
        (
            &[4, 0, 2, 0, 1, 2, 5, 0, 1, 0, 9],
            6,
            "runs overlap or are out of order",
        ),
        (
            &[4, 0, 1, 0, 1, 0, 0, 1, 0, 9],
            5,
            "runs overlap or are out of order",
        ),
    ];
    for (payload, at, reason) in cases {
        let e = Delta::parse(payload).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::BadDelta { reason }, "{payload:?}");
        assert_eq!(e.offset, at, "{payload:?}");
    }
    assert!(Delta::parse(&[0; PAGE_SIZE]).is_err());
    // Adjacent runs and the empty delta are fine.
    assert!(Delta::parse(&[0, 0, 1, 0, 7, 1, 0, 1, 0, 8]).is_ok());
    assert!(Delta::parse(&[]).is_ok());
}
