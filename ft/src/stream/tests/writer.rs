// SPDX-License-Identifier: MIT OR Apache-2.0
//! The epoch writer's own checks and its sink.

use super::*;

fn writer(buf: &mut Vec<u8>) -> EpochWriter<&mut Vec<u8>> {
    EpochWriter::begin(buf, &header(), 5, 0).unwrap()
}

#[test]
fn refuses_what_the_decoder_would_reject() {
    let mut buf = Vec::new();
    let mut w = writer(&mut buf);
    let before = w.bytes_written();
    assert_eq!(
        w.vcpu_state(MAX_VCPUS, &[]),
        Err(WriteError::VcpuOutOfRange { vcpu: MAX_VCPUS })
    );
    assert_eq!(
        w.vcpu_state(0, &alloc::vec![0; MAX_VCPU_STATE_LEN + 1]),
        Err(WriteError::StateTooLong {
            len: MAX_VCPU_STATE_LEN + 1,
            max: MAX_VCPU_STATE_LEN
        })
    );
    assert_eq!(
        w.page(RAM_PAGES, &EncodedPage::zero()),
        Err(WriteError::GfnOutOfRange { gfn: RAM_PAGES })
    );
    assert_eq!(
        w.dirty_page_list(&[]),
        Err(WriteError::DirtyListLength { len: 0 })
    );
    assert_eq!(
        w.dirty_page_list(&[2, 1]),
        Err(WriteError::DirtyListNotAscending { gfn: 1 })
    );
    assert_eq!(
        w.dirty_page_list(&[RAM_PAGES]),
        Err(WriteError::GfnOutOfRange { gfn: RAM_PAGES })
    );
    assert_eq!(
        w.optional_record(9, &[]),
        Err(WriteError::BadOptionalRecord { record_type: 9 })
    );
    // Nothing was written by refused records.
    assert_eq!(w.bytes_written(), before);
    assert_eq!(w.record_count(), 1);
    // Dirty lists must ascend across records too.
    w.dirty_page_list(&[3, 4]).unwrap();
    assert_eq!(
        w.dirty_page_list(&[4, 5]),
        Err(WriteError::DirtyListNotAscending { gfn: 4 })
    );
    w.dirty_page_list(&[5]).unwrap();
    let (_, summary) = w.finish().unwrap();
    assert_eq!(summary.record_count, 3);
    let out = assemble_all(&buf);
    let [Ok(epoch)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(epoch.dirty_gfns, [3, 4, 5]);
}

/// A sink that fails after a byte budget, like a full send queue.
struct Budget(usize);

impl Sink for Budget {
    type Error = &'static str;

    fn write(&mut self, bytes: &[u8]) -> Result<(), &'static str> {
        self.0 = self.0.checked_sub(bytes.len()).ok_or("queue full")?;
        Ok(())
    }
}

#[test]
fn sink_errors_are_passed_on() {
    assert!(matches!(
        EpochWriter::begin(Budget(10), &header(), 1, 0),
        Err(WriteError::Sink("queue full"))
    ));
    let mut w = EpochWriter::begin(Budget(100), &header(), 1, 0).unwrap();
    assert_eq!(
        w.vcpu_state(0, &[0; 200]),
        Err(WriteError::Sink("queue full"))
    );
    let msg = alloc::format!("{}", WriteError::Sink("queue full"));
    assert_eq!(msg, "checkpoint stream sink failed: queue full");
}

#[test]
fn digest_covers_exactly_the_records_before_epoch_end() {
    let mut buf = Vec::new();
    let mut w = writer(&mut buf);
    w.device_state(1, b"dev").unwrap();
    let (_, summary) = w.finish().unwrap();
    let end_len = 8 + 16 + DIGEST_LEN;
    let covered = &buf[..buf.len() - end_len];
    assert_eq!(summary.digest, digest(covered));
    assert_eq!(&buf[buf.len() - DIGEST_LEN..], &summary.digest);
}

/// Clustered dirty frames go as runs (much shorter), scattered ones as a list; either way the
/// backup assembles the same frames, across records too.
#[test]
fn dirty_frames_go_as_runs_where_that_is_shorter() {
    let clustered: Vec<u64> = (10..74).chain(100..164).collect();
    let scattered: Vec<u64> = (200..260).step_by(2).collect();
    let mut sizes = Vec::new();
    let mut buf = Vec::new();
    let mut w = writer(&mut buf);
    for list in [&clustered, &scattered] {
        let before = w.bytes_written();
        w.dirty_page_list(list).unwrap();
        sizes.push(w.bytes_written() - before);
    }
    // Two runs: an 8-byte header and two 16-byte runs; the scattered list: 8 bytes a frame.
    assert_eq!(sizes, [8 + 32, 8 + 8 * scattered.len() as u64]);
    w.finish().unwrap();
    let out = assemble_all(&buf);
    let [Ok(epoch)] = out.as_slice() else {
        panic!("{out:?}")
    };
    let all: Vec<u64> = clustered.iter().chain(&scattered).copied().collect();
    assert_eq!(epoch.dirty_gfns, all);
}

/// The digest is XXH3-128 (the specification's test vectors, little-endian), fed in pieces or
/// at once alike.
#[test]
fn epoch_digest_is_xxh3_128() {
    assert_eq!(
        u128::from_le_bytes(digest(b"")),
        0x99aa_06d3_0147_98d8_6001_c324_468d_497f
    );
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut pieces = super::digest::EpochDigest::new();
    for chunk in data.chunks(37) {
        pieces.update(chunk);
    }
    assert_eq!(pieces.finalize(), digest(&data));
    assert_ne!(digest(&data[..999]), digest(&data));
}
