// SPDX-License-Identifier: MIT OR Apache-2.0
//! Randomized no-panic tests: thousands of random and mutated inputs through every decoder.
//! (The same idea, open-ended, is the cargo-fuzz target in `ft/fuzz`.)

use alloc::collections::BTreeMap;

use super::*;

/// Runs every decoder over `bytes`; returns the epochs the assembler accepted.
fn decode_everything(rng: &mut Rng, bytes: &[u8]) -> Vec<Epoch> {
    let _ = StreamHeader::decode(bytes);
    let _ = Delta::parse(bytes);
    // The slice decoder, from every aligned offset.
    for start in (0..bytes.len()).step_by(8) {
        if let Ok((record, len)) = decode_record(&bytes[start..]) {
            assert!(len >= 8 && len % 8 == 0 && start + len <= bytes.len());
            let _ = alloc::format!("{record:?}");
        }
    }
    // The assembler, in random chunks.
    let mut asm = EpochAssembler::new(&header());
    let mut accepted = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = (1 + rng.below(64)).min(rest.len());
        asm.feed_all(&rest[..n], |outcome| match outcome {
            Ok(epoch) => accepted.push(epoch),
            Err(e) => {
                let _ = alloc::format!("{e}");
            }
        });
        rest = &rest[n..];
    }
    assert!(asm.offset() == bytes.len() as u64);
    for epoch in &accepted {
        let mut store: BTreeMap<u64, Box<PageBuf>> = BTreeMap::new();
        let _ = epoch.apply_pages(&mut store);
    }
    accepted
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(100);
    for _ in 0..4000 {
        let len = rng.below(300);
        let bytes = rng.bytes(len);
        assert!(decode_everything(&mut rng, &bytes).is_empty());
    }
}

/// A record with a plausible header (known or optional type, length near the valid range) and
/// random body bytes: gets past the framing checks into the body decoders.
fn random_record(rng: &mut Rng) -> Vec<u8> {
    use record_type::*;
    let kind = [
        EPOCH_BEGIN,
        VCPU_STATE,
        DEVICE_STATE,
        PAGE,
        DIRTY_PAGE_LIST,
        EPOCH_END,
        OPTIONAL | 1,
        8,
    ][rng.below(8)];
    let len = match kind {
        EPOCH_BEGIN => 16,
        EPOCH_END => 48,
        PAGE => 16 + rng.below(PAGE_SIZE + 2),
        DIRTY_PAGE_LIST => 8 * rng.below(6),
        _ => rng.below(40),
    };
    let mut body = rng.bytes(len);
    // Keep ids, encodings and reserved fields mostly sensible so deeper checks run.
    if rng.below(4) != 0 {
        match kind {
            VCPU_STATE | DEVICE_STATE if len >= 8 => {
                body[..8].copy_from_slice(&[rng.below(4) as u8, 0, 0, 0, 0, 0, 0, 0]);
            }
            PAGE => {
                body[..8]
                    .copy_from_slice(&(rng.below(RAM_PAGES as usize + 2) as u64).to_le_bytes());
                body[8..16].copy_from_slice(&[rng.below(5) as u8, 0, 0, 0, 0, 0, 0, 0]);
            }
            DIRTY_PAGE_LIST => {
                let mut gfn = 0u64;
                for chunk in body.chunks_exact_mut(8) {
                    gfn += rng.below(3) as u64;
                    chunk.copy_from_slice(&gfn.to_le_bytes());
                }
            }
            _ => {}
        }
    }
    let mut rec = raw_record(kind, &body);
    if rng.below(20) == 0 {
        // Occasionally a nonzero padding byte or a wrong length.
        let at = rng.below(rec.len());
        rec[at] ^= 1 << rng.below(8);
    }
    rec
}

#[test]
fn random_records_never_panic() {
    let mut rng = Rng::new(101);
    for _ in 0..5000 {
        let count = 1 + rng.below(6);
        let mut records = alloc::vec![raw_record(
            record_type::EPOCH_BEGIN,
            &begin_body(rng.below(3) as u64, 0)
        )];
        for _ in 0..count {
            records.push(random_record(&mut rng));
        }
        let bytes = if rng.below(2) == 0 {
            raw_epoch(&records, rng.below(3) as u64, None, None)
        } else {
            records.concat()
        };
        decode_everything(&mut rng, &bytes);
    }
}

/// Valid epochs with all kinds of records, to mutate.
fn corpus() -> Vec<Vec<u8>> {
    let mut rng = Rng::new(102);
    let mut enc = Box::new(PageEncoder::new());
    let mut out = Vec::new();
    for epoch in 1..=4u64 {
        let mut bytes = Vec::new();
        let mut w = EpochWriter::begin(&mut bytes, &header(), epoch, 0).unwrap();
        w.vcpu_state(0, &rng.bytes(20)).unwrap();
        w.device_state(1, &rng.bytes(9)).unwrap();
        let base = random_page(&mut rng);
        let new = edited(&mut rng, &base, 3, 6);
        w.encode_page(&mut enc, 1, &new, Some(&base)).unwrap();
        w.encode_page(&mut enc, 2, &text_page(), None).unwrap();
        w.encode_page(&mut enc, 3, &zero_page(), None).unwrap();
        if epoch == 4 {
            w.encode_page(&mut enc, 4, &random_page(&mut rng), None)
                .unwrap();
        }
        w.dirty_page_list(&[1, 2, 3]).unwrap();
        w.optional_record(record_type::OPTIONAL | 5, b"opt")
            .unwrap();
        w.finish().unwrap();
        out.push(bytes);
    }
    out
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    match rng.below(7) {
        0 => {
            let bit = rng.below(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        1 => {
            let at = rng.below(bytes.len());
            bytes[at] = rng.byte();
        }
        2 => {
            let at = rng.below(bytes.len() + 1);
            let n = 1 + rng.below(16);
            let junk = rng.bytes(n);
            bytes.splice(at..at, junk);
        }
        3 => {
            let at = rng.below(bytes.len());
            let end = (at + 1 + rng.below(16)).min(bytes.len());
            bytes.drain(at..end);
        }
        4 => {
            let len = rng.below(bytes.len() + 1);
            bytes.truncate(len);
        }
        5 => {
            // An interesting value in an aligned u32 (a type or length field, often).
            let at = rng.below(bytes.len() / 4 + 1) * 4;
            let v: u32 =
                [0, 1, 7, 8, 0x8000_0000, 0xffff_ffff, 4096, 4112, 0x10_0000][rng.below(9)];
            if let Some(field) = bytes.get_mut(at..at + 4) {
                field.copy_from_slice(&v.to_le_bytes());
            }
        }
        _ => {
            // Duplicate a range (repeats records).
            let at = rng.below(bytes.len());
            let end = (at + 1 + rng.below(200)).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            bytes.splice(end..end, copy);
        }
    }
}

#[test]
fn mutated_epochs_never_panic_and_are_never_accepted_altered() {
    let corpus = corpus();
    let mut rng = Rng::new(103);
    for round in 0..10_000 {
        let original = &corpus[round % corpus.len()];
        let mut bytes = original.clone();
        for _ in 0..1 + rng.below(4) {
            if bytes.is_empty() {
                break;
            }
            mutate(&mut rng, &mut bytes);
        }
        for epoch in decode_everything(&mut rng, &bytes) {
            // Anything accepted must be the original epoch, byte for byte (a mutation can only
            // be accepted if it left the epoch itself intact, e.g. junk after its end).
            let intact = decode_everything(&mut Rng::new(0), original);
            assert_eq!(intact.len(), 1);
            assert_eq!(epoch, intact[0], "round {round}");
        }
    }
}
