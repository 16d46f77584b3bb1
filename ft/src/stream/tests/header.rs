// SPDX-License-Identifier: MIT OR Apache-2.0
//! Stream header encoding and rejection.

use super::*;

#[test]
fn round_trip() {
    let h = header();
    let bytes = h.encode();
    assert_eq!(&bytes[..8], b"CASTORFT");
    assert_eq!(StreamHeader::decode(&bytes), Ok(h));
    assert_eq!(h.ram_pages(), RAM_PAGES);
    assert_eq!(h.version_minor(), VERSION_MINOR);
    // Trailing bytes (the first record) are not part of the header.
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0xff; 16]);
    assert_eq!(StreamHeader::decode(&longer), Ok(h));
}

#[test]
fn constructor_bounds_ram_size() {
    assert!(StreamHeader::new(0, 1).is_none());
    assert!(StreamHeader::new(MAX_RAM_PAGES + 1, 1).is_none());
    assert!(StreamHeader::new(MAX_RAM_PAGES, 1).is_some());
}

fn patched(at: usize, bytes: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = header().encode();
    h[at..at + bytes.len()].copy_from_slice(bytes);
    h
}

fn kind(bytes: &[u8]) -> (u64, DecodeErrorKind) {
    let e = StreamHeader::decode(bytes).unwrap_err();
    (e.offset, e.kind)
}

#[test]
fn truncated_at_every_length() {
    let h = header().encode();
    for len in 0..HEADER_LEN {
        assert!(matches!(
            kind(&h[..len]).1,
            DecodeErrorKind::Truncated { needed: 48, .. }
        ));
    }
}

#[test]
fn bad_magic() {
    assert_eq!(
        kind(&patched(0, b"XASTORFT")),
        (0, DecodeErrorKind::BadMagic)
    );
    assert_eq!(kind(&patched(7, b"t")), (0, DecodeErrorKind::BadMagic));
}

#[test]
fn unknown_major_version_is_rejected_newer_minor_is_read() {
    for major in [1u16, 3] {
        let (at, k) = kind(&patched(8, &major.to_le_bytes()));
        assert_eq!(at, 8);
        assert_eq!(k, DecodeErrorKind::UnsupportedVersion { major, minor: 0 });
        let msg = alloc::format!(
            "{}",
            StreamHeader::decode(&patched(8, &major.to_le_bytes())).unwrap_err()
        );
        assert!(
            msg.contains(&alloc::format!("unsupported stream version {major}.0")),
            "{msg}"
        );
        assert!(msg.contains("offset 8"), "{msg}");
    }
    assert!(matches!(
        kind(&patched(8, &0u16.to_le_bytes())).1,
        DecodeErrorKind::UnsupportedVersion { major: 0, .. }
    ));
    let newer = StreamHeader::decode(&patched(10, &7u16.to_le_bytes())).unwrap();
    assert_eq!(newer.version_minor(), 7);
    assert_eq!(newer.ram_pages(), RAM_PAGES);
}

#[test]
fn flags_page_size_reserved_and_ram_size_are_checked() {
    assert_eq!(
        kind(&patched(12, &1u32.to_le_bytes())),
        (12, DecodeErrorKind::UnknownHeaderFlags { flags: 1 })
    );
    assert_eq!(
        kind(&patched(16, &8192u32.to_le_bytes())),
        (16, DecodeErrorKind::BadPageSize { page_size: 8192 })
    );
    assert_eq!(
        kind(&patched(20, &[1])),
        (20, DecodeErrorKind::ReservedNotZero)
    );
    assert_eq!(
        kind(&patched(24, &0u64.to_le_bytes())),
        (24, DecodeErrorKind::BadRamSize { ram_pages: 0 })
    );
    assert_eq!(
        kind(&patched(24, &u64::MAX.to_le_bytes())),
        (
            24,
            DecodeErrorKind::BadRamSize {
                ram_pages: u64::MAX
            }
        )
    );
}
