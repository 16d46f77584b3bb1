// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fuzzes every checkpoint-stream decoder: the header decoder, the one-record decoder, the delta
//! parser, and the epoch assembler fed in chunks, then applies any epoch it accepts. None may
//! panic, whatever the input.
#![no_main]

use std::collections::BTreeMap;

use castor_ft::stream::{
    Delta, EpochAssembler, HEADER_LEN, PageBuf, RECORD_ALIGN, StreamHeader, decode_record,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: chunk size for the assembler; the rest is the stream.
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk) + 1;

    // A stream that starts with a valid header is assembled with it; otherwise with a fixed one.
    let (header, records) = match StreamHeader::decode(stream) {
        Ok(header) => (header, stream.get(HEADER_LEN..).unwrap_or_default()),
        Err(_) => (StreamHeader::new(4096, 0).expect("valid header"), stream),
    };

    let _ = Delta::parse(records);

    // Record by record, resynchronizing at the next aligned offset after an error.
    let mut at = 0;
    while let Some(rest) = records.get(at..).filter(|rest| !rest.is_empty()) {
        at += match decode_record(rest) {
            Ok((_, len)) => len,
            Err(_) => RECORD_ALIGN,
        };
    }

    let mut assembler = EpochAssembler::new(&header);
    for piece in records.chunks(chunk) {
        assembler.feed_all(piece, |outcome| {
            if let Ok(epoch) = outcome {
                let mut memory: BTreeMap<u64, Box<PageBuf>> = BTreeMap::new();
                let _ = epoch.apply_pages(&mut memory);
            }
        });
    }
});
