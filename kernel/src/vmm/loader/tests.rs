// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests of the Multiboot loader with images built byte by byte.

use alloc::format;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::GuestPhys;
use super::elf32::ElfError;
use super::multiboot::*;
use super::test_ram::{POISON, Ram};
use crate::testutil::Rng;

mod format;
mod modules;

const MIB: u64 = 1 << 20;

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn mb_header(v: &mut Vec<u8>, flags: u32) {
    put32(v, HEADER_MAGIC);
    put32(v, flags);
    put32(v, 0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags));
}

/// The fields of a kludge test image.
#[derive(Clone, Copy)]
struct Kludge {
    flags: u32,
    /// File offset of the header (multiple of 4).
    offset: usize,
    header_addr: u32,
    load_addr: u32,
    load_end_addr: u32,
    bss_end_addr: u32,
    entry_addr: u32,
    /// File length.
    len: usize,
}

impl Default for Kludge {
    /// A 0x300-byte image loaded at 1 MiB with its header at file offset 0x10, 0x1000 bytes
    /// of bss, entry at 0x100040.
    fn default() -> Self {
        Self {
            flags: FLAG_MEMORY_INFO | FLAG_AOUT_KLUDGE,
            offset: 0x10,
            header_addr: 0x10_0010,
            load_addr: 0x10_0000,
            load_end_addr: 0x10_0300,
            bss_end_addr: 0x10_1300,
            entry_addr: 0x10_0040,
            len: 0x300,
        }
    }
}

impl Kludge {
    /// The image: the header at `offset`, every other byte `i as u8` (so copies can be checked).
    fn build(&self) -> Vec<u8> {
        let mut v: Vec<u8> = (0..self.offset).map(|i| i as u8).collect();
        mb_header(&mut v, self.flags);
        for x in [
            self.header_addr,
            self.load_addr,
            self.load_end_addr,
            self.bss_end_addr,
            self.entry_addr,
        ] {
            put32(&mut v, x);
        }
        while v.len() < self.len {
            v.push(v.len() as u8);
        }
        v.truncate(self.len);
        v
    }
}

/// One ELF test segment.
#[derive(Clone)]
struct Seg {
    p_type: u32,
    vaddr: u32,
    paddr: u32,
    data: Vec<u8>,
    memsz: u32,
}

fn seg(paddr: u32, data: Vec<u8>, memsz: u32) -> Seg {
    Seg {
        p_type: 1,
        vaddr: paddr,
        paddr,
        data,
        memsz,
    }
}

/// An ELF test image.
#[derive(Clone)]
struct Elf {
    class: u8,
    machine: u16,
    e_type: u16,
    entry: u32,
    segs: Vec<Seg>,
    mb_flags: u32,
}

impl Elf {
    fn new(entry: u32, segs: Vec<Seg>) -> Self {
        Self {
            class: 1,
            machine: 3,
            e_type: 2,
            entry,
            segs,
            mb_flags: FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO,
        }
    }

    /// ELF header at 0, program headers at 52, the Multiboot header after them, segment data
    /// from 0x200 on.
    fn build(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(b"\x7fELF");
        v.extend_from_slice(&[self.class, 1, 1]);
        v.resize(16, 0);
        put16(&mut v, self.e_type);
        put16(&mut v, self.machine);
        put32(&mut v, 1); // e_version
        put32(&mut v, self.entry);
        put32(&mut v, 52); // e_phoff
        put32(&mut v, 0); // e_shoff
        put32(&mut v, 0); // e_flags
        put16(&mut v, 52); // e_ehsize
        put16(&mut v, 32); // e_phentsize
        put16(&mut v, self.segs.len() as u16);
        put16(&mut v, 40); // e_shentsize
        put16(&mut v, 0); // e_shnum
        put16(&mut v, 0); // e_shstrndx
        assert_eq!(v.len(), 52);
        let mut offset = 0x200u32;
        for s in &self.segs {
            for x in [
                s.p_type,
                offset,
                s.vaddr,
                s.paddr,
                s.data.len() as u32,
                s.memsz,
                5,
                0x1000,
            ] {
                put32(&mut v, x);
            }
            offset += s.data.len() as u32;
        }
        mb_header(&mut v, self.mb_flags);
        assert!(v.len() <= 0x200);
        v.resize(0x200, 0);
        for s in &self.segs {
            v.extend_from_slice(&s.data);
        }
        v
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

fn two_segment_elf() -> Elf {
    Elf::new(
        0x10_0010,
        vec![
            seg(0x10_0000, pattern(0x40, 1), 0x2000),
            seg(0x20_0000, pattern(0x30, 2), 0x30),
        ],
    )
}

fn load_kludge(k: &Kludge, ram: &mut Ram) -> Result<MultibootEntry, LoadError> {
    load(&k.build(), "", &[], ram)
}

// ---------------------------------------------------------------------------------------------
// Successful loads.

#[test]
fn kludge_image_is_copied_flat_and_bss_zeroed() {
    let k = Kludge::default();
    let image = k.build();
    let mut ram = Ram::new(4 * MIB);
    let e = load(&image, "", &[], &mut ram).unwrap();
    assert_eq!(
        e,
        MultibootEntry {
            eip: 0x10_0040,
            eax: BOOTLOADER_MAGIC,
            ebx: INFO_ADDR as u32,
            video_mode_ignored: false,
        }
    );
    assert_eq!(ram.bytes(0x10_0000, image.len()), &image[..]);
    assert!(ram.bytes(0x10_0300, 0x1000).iter().all(|&b| b == 0));
    assert_eq!(ram.0[0x10_1300], POISON, "nothing past bss_end_addr");
    assert_eq!(ram.0[0xF_FFFF], POISON, "nothing before load_addr");
}

#[test]
fn kludge_load_starts_before_the_header_in_the_file() {
    // The header sits 0x10 bytes into the loaded area, which itself starts 0x20 bytes into the
    // file (a file prefix that is not loaded, like an ELF header before the first segment).
    let k = Kludge {
        offset: 0x30,
        header_addr: 0x10_0010,
        load_addr: 0x10_0000,
        load_end_addr: 0x10_0100,
        bss_end_addr: 0,
        entry_addr: 0x10_0000,
        len: 0x200,
        ..Kludge::default()
    };
    let image = k.build();
    let mut ram = Ram::new(2 * MIB);
    load(&image, "", &[], &mut ram).unwrap();
    assert_eq!(ram.bytes(0x10_0000, 0x100), &image[0x20..0x120]);
    assert_eq!(
        ram.0[0x10_0100], POISON,
        "no bss: nothing past load_end_addr"
    );
}

#[test]
fn kludge_load_end_zero_loads_the_rest_of_the_file() {
    let k = Kludge {
        load_end_addr: 0,
        bss_end_addr: 0,
        ..Kludge::default()
    };
    let image = k.build();
    let mut ram = Ram::new(2 * MIB);
    load(&image, "", &[], &mut ram).unwrap();
    assert_eq!(ram.bytes(0x10_0000, image.len()), &image[..]);
    assert_eq!(ram.0[0x10_0000 + image.len()], POISON);
}

#[test]
fn kludge_image_may_load_in_low_memory() {
    let k = Kludge {
        header_addr: 0x2_0010,
        load_addr: 0x2_0000,
        load_end_addr: 0x2_0300,
        bss_end_addr: 0x2_1000,
        entry_addr: 0x2_0100,
        ..Kludge::default()
    };
    let mut ram = Ram::new(2 * MIB);
    assert_eq!(load_kludge(&k, &mut ram).unwrap().eip, 0x2_0100);
}

#[test]
fn elf_segments_are_loaded_at_paddr_and_zero_filled() {
    let elf = two_segment_elf();
    let mut ram = Ram::new(4 * MIB);
    let e = load(&elf.build(), "", &[], &mut ram).unwrap();
    assert_eq!(e.eip, 0x10_0010);
    assert_eq!(e.eax, 0x2BAD_B002);
    assert_eq!(e.ebx, 0x9000);
    assert_eq!(ram.bytes(0x10_0000, 0x40), &pattern(0x40, 1)[..]);
    assert!(ram.bytes(0x10_0040, 0x2000 - 0x40).iter().all(|&b| b == 0));
    assert_eq!(ram.0[0x10_2000], POISON);
    assert_eq!(ram.bytes(0x20_0000, 0x30), &pattern(0x30, 2)[..]);
    assert_eq!(ram.0[0x20_0030], POISON);
}

#[test]
fn elf_ignores_non_load_and_empty_segments() {
    let mut elf = two_segment_elf();
    let mut note = seg(0x30_0000, pattern(8, 3), 8);
    note.p_type = 4; // PT_NOTE
    elf.segs.push(note);
    elf.segs.push(seg(0x7000_0000, Vec::new(), 0)); // PT_LOAD, no memory
    let mut ram = Ram::new(4 * MIB);
    load(&elf.build(), "", &[], &mut ram).unwrap();
    assert_eq!(ram.0[0x30_0000], POISON);
}

#[test]
fn elf_virtual_entry_is_translated_to_physical() {
    // A higher-half kernel: linked at 0xC0100000, loaded at 1 MiB.
    let mut s = seg(0x10_0000, pattern(0x100, 4), 0x100);
    s.vaddr = 0xC010_0000;
    let elf = Elf::new(0xC010_0020, vec![s]);
    let mut ram = Ram::new(2 * MIB);
    assert_eq!(
        load(&elf.build(), "", &[], &mut ram).unwrap().eip,
        0x10_0020
    );
}

#[test]
fn video_mode_request_is_ignored_and_reported() {
    let k = Kludge {
        flags: FLAG_VIDEO_MODE | FLAG_AOUT_KLUDGE,
        ..Kludge::default()
    };
    let mut ram = Ram::new(2 * MIB);
    assert!(load_kludge(&k, &mut ram).unwrap().video_mode_ignored);
}

#[test]
fn header_with_bad_checksum_is_skipped_for_a_later_good_one() {
    let mut image = Kludge {
        offset: 0x20,
        header_addr: 0x10_0020,
        ..Kludge::default()
    }
    .build();
    image[0..4].copy_from_slice(&HEADER_MAGIC.to_le_bytes()); // a stray magic, bad checksum
    let mut ram = Ram::new(2 * MIB);
    assert_eq!(load(&image, "", &[], &mut ram).unwrap().eip, 0x10_0040);
}

#[test]
fn boot_information_fields_read_back() {
    let ram_size = 64 * MIB;
    let mut ram = Ram::new(ram_size);
    let e = load(
        &Kludge::default().build(),
        "console=ttyS0 status=7",
        &[],
        &mut ram,
    )
    .unwrap();
    let info = u64::from(e.ebx);
    assert_eq!(info, 0x9000);
    assert_eq!(ram.u32(info), (1 << 0) | (1 << 2) | (1 << 6) | (1 << 9));
    assert_eq!(ram.u32(info + 4), 640);
    assert_eq!(ram.u32(info + 8), (64 * 1024) - 1024);
    assert_eq!(
        ram.cstr(u64::from(ram.u32(info + 16))),
        "console=ttyS0 status=7"
    );
    assert_eq!(ram.u32(info + 20), 0, "mods_count");
    assert_eq!(ram.cstr(u64::from(ram.u32(info + 64))), "Castor");
    // Every other field up to the framebuffer ones is zero.
    for off in (12..INFO_SIZE as u64).step_by(4) {
        if ![16, 44, 48, 64].contains(&off) {
            assert_eq!(ram.u32(info + off), 0, "info offset {off}");
        }
    }

    let (len, addr) = (ram.u32(info + 44), u64::from(ram.u32(info + 48)));
    let mut entries = Vec::new();
    let mut p = addr;
    while p < addr + u64::from(len) {
        let size = ram.u32(p);
        assert_eq!(size, 20);
        entries.push((ram.u64(p + 4), ram.u64(p + 12), ram.u32(p + 20)));
        p += u64::from(size) + 4;
    }
    assert_eq!(p, addr + u64::from(len));
    assert_eq!(
        entries,
        [
            (0, 0x9_FC00, 1),
            (0x9_FC00, 0x400, 2),
            (0xE_0000, 0x2_0000, 2),
            (0x10_0000, ram_size - MIB, 1),
        ]
    );
    // The information area is below the EBDA and the guest's image.
    assert!(addr + u64::from(len) < 0x9_F000);
}

#[test]
fn empty_and_longest_command_lines() {
    let mut ram = Ram::new(2 * MIB);
    load(&Kludge::default().build(), "", &[], &mut ram).unwrap();
    assert_eq!(ram.cstr(CMDLINE_ADDR), "");
    let long = "x".repeat(CMDLINE_MAX);
    load(&Kludge::default().build(), &long, &[], &mut ram).unwrap();
    assert_eq!(ram.cstr(CMDLINE_ADDR), long);
    assert_eq!(CMDLINE_ADDR + CMDLINE_MAX as u64 + 1, INFO_AREA_END);
}

#[test]
fn mem_upper_is_capped_below_4_gib() {
    // A fake that claims 8 GiB but holds only the first 4 MiB.
    struct Big(Ram);
    impl GuestPhys for Big {
        fn size(&self) -> u64 {
            8 << 30
        }
        fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
            self.0.write(gpa, data)
        }
        fn fill(&mut self, gpa: u64, len: u64, byte: u8) -> bool {
            self.0.fill(gpa, len, byte)
        }
    }
    let mut ram = Big(Ram::new(4 * MIB));
    load(&Kludge::default().build(), "", &[], &mut ram).unwrap();
    assert_eq!(ram.0.u32(INFO_ADDR + 8), (4 << 20) - 1024);
    assert_eq!(ram.0.u64(MMAP_ADDR + 3 * 24 + 12), (8 << 30) - MIB);
}

// ---------------------------------------------------------------------------------------------
// Refused images: each error, with nothing written to guest memory.

/// Loads `image` into fresh 4 MiB RAM, expecting an error, and checks RAM stayed untouched and
/// the message is non-empty.
fn refuse(image: &[u8], cmdline: &str) -> LoadError {
    let mut ram = Ram::new(4 * MIB);
    let err = load(image, cmdline, &[], &mut ram).unwrap_err();
    assert!(ram.untouched(), "{err:?} but RAM was written");
    assert!(!err.to_string().is_empty());
    err
}

fn refuse_kludge(k: Kludge) -> LoadError {
    refuse(&k.build(), "")
}

#[test]
fn no_header() {
    assert_eq!(refuse(&[], ""), LoadError::NoHeader { len: 0 });
    assert_eq!(refuse(&[0u8; 9000], ""), LoadError::NoHeader { len: 9000 });
    // Misaligned magic does not count.
    let mut image = vec![0u8; 64];
    image[2..6].copy_from_slice(&HEADER_MAGIC.to_le_bytes());
    assert_eq!(refuse(&image, ""), LoadError::NoHeader { len: 64 });
    // Nor does one whose mandatory fields end past the first 8192 bytes.
    let k = Kludge {
        offset: 8184,
        header_addr: 0x10_0000 + 8184,
        len: 9000,
        load_end_addr: 0x10_0000 + 9000,
        bss_end_addr: 0,
        entry_addr: 0x10_2000,
        ..Kludge::default()
    };
    assert_eq!(refuse_kludge(k), LoadError::NoHeader { len: 9000 });
    // The last position whose fields fit is found.
    let k = Kludge {
        offset: 8180,
        header_addr: 0x10_0000 + 8180,
        ..k
    };
    let mut ram = Ram::new(2 * MIB);
    load_kludge(&k, &mut ram).unwrap();
}

#[test]
fn bad_checksum() {
    let mut image = Kludge::default().build();
    image[0x18] ^= 1; // checksum low byte
    let err = refuse(&image, "");
    assert!(matches!(err, LoadError::BadChecksum { offset: 0x10, .. }));
    assert!(err.to_string().contains("checksum"));
}

#[test]
fn unsupported_required_flags() {
    for bit in 3..16 {
        let err = refuse_kludge(Kludge {
            flags: FLAG_AOUT_KLUDGE | (1 << bit),
            ..Kludge::default()
        });
        assert_eq!(
            err,
            LoadError::UnsupportedFlags {
                flags: FLAG_AOUT_KLUDGE | (1 << bit),
                unsupported: 1 << bit
            }
        );
    }
    // Optional bits 17-31 are fine.
    let mut ram = Ram::new(2 * MIB);
    load_kludge(
        &Kludge {
            flags: FLAG_AOUT_KLUDGE | 0xFFFE_0000,
            ..Kludge::default()
        },
        &mut ram,
    )
    .unwrap();
}

#[test]
fn kludge_header_truncated() {
    let k = Kludge {
        len: 0x10 + 28,
        ..Kludge::default()
    };
    assert_eq!(
        refuse_kludge(k),
        LoadError::KludgeHeaderTruncated {
            offset: 0x10,
            len: 0x2C
        }
    );
}

#[test]
fn kludge_address_fields_inconsistent() {
    let d = Kludge::default();
    assert!(matches!(
        refuse_kludge(Kludge {
            load_addr: 0x10_0014,
            ..d
        }),
        LoadError::LoadAddrAboveHeader { .. }
    ));
    assert!(matches!(
        refuse_kludge(Kludge {
            header_addr: 0x10_0020,
            ..d
        }),
        LoadError::LoadStartsBeforeFile { offset: 0x10, .. }
    ));
    assert!(matches!(
        refuse_kludge(Kludge {
            load_end_addr: 0xF_FFFF,
            ..d
        }),
        LoadError::LoadEndBelowLoad { .. }
    ));
    assert_eq!(
        refuse_kludge(Kludge {
            bss_end_addr: 0x10_02FF,
            ..d
        }),
        LoadError::BssEndBelowLoadEnd {
            bss_end_addr: 0x10_02FF,
            load_end: 0x10_0300
        }
    );
}

#[test]
fn kludge_image_truncated() {
    let err = refuse_kludge(Kludge {
        len: 0x2FF,
        ..Kludge::default()
    });
    assert_eq!(
        err,
        LoadError::KludgeImageTruncated {
            file_offset: 0,
            load_size: 0x300,
            len: 0x2FF
        }
    );
    assert!(err.to_string().contains("truncated"));
}

#[test]
fn beyond_ram_names_the_addresses() {
    let err = refuse_kludge(Kludge {
        bss_end_addr: 0x40_0001,
        ..Kludge::default()
    });
    assert_eq!(
        err,
        LoadError::BeyondRam {
            part: Part::KludgeImage,
            start: 0x10_0000,
            end: 0x40_0001,
            limit: 0x40_0000
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("0x100000") && msg.contains("0x400001") && msg.contains("0x400000"));

    let mut elf = two_segment_elf();
    elf.segs[1].paddr = 0xFFFF_FFF0;
    elf.segs[1].vaddr = 0xFFFF_FFF0;
    assert_eq!(
        refuse(&elf.build(), ""),
        LoadError::BeyondRam {
            part: Part::ElfSegment(1),
            start: 0xFFFF_FFF0,
            end: 0x1_0000_0020,
            limit: 0x40_0000
        }
    );
}

#[test]
fn overlapping_the_info_area_or_the_legacy_hole() {
    let low = |load: u32, end: u32| Kludge {
        header_addr: load + 0x10,
        load_addr: load,
        load_end_addr: load + 0x300,
        bss_end_addr: end,
        entry_addr: load + 0x40,
        ..Kludge::default()
    };
    assert!(matches!(
        refuse_kludge(low(0x8000, 0x9001)),
        LoadError::Overlaps {
            area_start: 0x9000,
            area_end: 0x1_0000,
            ..
        }
    ));
    assert!(matches!(
        refuse_kludge(low(0xF_FF00, 0)),
        LoadError::Overlaps {
            area_start: 0x9_FC00,
            area_end: 0x10_0000,
            ..
        }
    ));
    assert!(matches!(
        refuse_kludge(low(0x9_0000, 0x9_FC01)),
        LoadError::Overlaps {
            area_start: 0x9_FC00,
            ..
        }
    ));
    // Right up to the edges is fine.
    let mut ram = Ram::new(2 * MIB);
    load_kludge(&low(0x8000, 0x9000), &mut ram).unwrap();
    load_kludge(&low(0x1_0000, 0x9_FC00), &mut ram).unwrap();

    let elf = Elf::new(0x9800, vec![seg(0x9800, pattern(0x10, 0), 0x10)]);
    assert!(matches!(
        refuse(&elf.build(), ""),
        LoadError::Overlaps {
            part: Part::ElfSegment(0),
            ..
        }
    ));
}

#[test]
fn entry_outside_the_loaded_bytes() {
    for entry in [0x10_0300, 0xF_FFFF, 0x10_1000] {
        assert_eq!(
            refuse_kludge(Kludge {
                entry_addr: entry,
                ..Kludge::default()
            }),
            LoadError::EntryOutsideImage { entry }
        );
    }
    // ELF: in the zeroed part of a segment, or nowhere.
    for entry in [0x10_0040, 0x30_0000, 0] {
        let mut elf = two_segment_elf();
        elf.entry = entry;
        assert_eq!(
            refuse(&elf.build(), ""),
            LoadError::EntryOutsideImage { entry }
        );
    }
}

#[test]
fn elf_refusals() {
    let elf = two_segment_elf();
    let elf_err = |e: &Elf| match refuse(&e.build(), "") {
        LoadError::Elf(e) => e,
        other => panic!("expected an ELF error, got {other:?}"),
    };
    let mut e64 = elf.clone();
    e64.class = 2;
    e64.machine = 62;
    let err = elf_err(&e64);
    assert_eq!(err, ElfError::Class64 { machine: 62 });
    assert!(err.to_string().contains("a.out kludge"));
    let mut e = elf.clone();
    e.class = 3;
    assert_eq!(elf_err(&e), ElfError::BadClass(3));
    let mut e = elf.clone();
    e.machine = 40;
    assert_eq!(elf_err(&e), ElfError::NotI386 { machine: 40 });
    let mut e = elf.clone();
    e.e_type = 3;
    assert_eq!(elf_err(&e), ElfError::NotExecutable { e_type: 3 });
    let mut e = elf.clone();
    e.segs[0].memsz = 0x3F;
    assert_eq!(
        elf_err(&e),
        ElfError::FileszAboveMemsz {
            index: 0,
            filesz: 0x40,
            memsz: 0x3F
        }
    );

    let mut image = elf.build();
    image[5] = 2;
    assert!(matches!(
        refuse(&image, ""),
        LoadError::Elf(ElfError::NotLittleEndian(2))
    ));
    let mut image = elf.build();
    image[42] = 16; // e_phentsize
    assert!(matches!(
        refuse(&image, ""),
        LoadError::Elf(ElfError::BadPhentsize(16))
    ));
    let mut image = elf.build();
    image[44..46].copy_from_slice(&0xFFFFu16.to_le_bytes());
    assert!(matches!(
        refuse(&image, ""),
        LoadError::Elf(ElfError::ExtendedPhnum)
    ));
    let mut image = elf.build();
    image[44..46].copy_from_slice(&0x100u16.to_le_bytes()); // phnum past the file
    assert!(matches!(
        refuse(&image, ""),
        LoadError::Elf(ElfError::PhdrsTruncated { phoff: 52, .. })
    ));
    let mut image = elf.build();
    image.truncate(image.len() - 1); // last segment's bytes cut short
    assert!(matches!(
        refuse(&image, ""),
        LoadError::Elf(ElfError::SegmentTruncated { index: 1, .. })
    ));

    // Not ELF at all, and an ELF too short for its header (header magic found in both).
    let mut image = Vec::new();
    mb_header(&mut image, 0);
    image.resize(64, 0);
    assert_eq!(refuse(&image, ""), LoadError::Elf(ElfError::NotElf));
    let mut image = b"\x7fELF\x01\x01\x01\x00".to_vec();
    mb_header(&mut image, 0);
    assert_eq!(
        refuse(&image, ""),
        LoadError::Elf(ElfError::HeaderTruncated { len: 20 })
    );

    let mut none = elf.clone();
    for s in &mut none.segs {
        s.p_type = 6; // PT_PHDR
    }
    assert_eq!(refuse(&none.build(), ""), LoadError::NoLoadableSegments);
}

#[test]
fn ram_and_command_line_refusals() {
    let image = Kludge::default().build();
    let mut ram = Ram::new(MIB);
    assert_eq!(
        load(&image, "", &[], &mut ram),
        Err(LoadError::RamTooSmall { ram: MIB })
    );
    assert!(ram.untouched());
    assert_eq!(
        refuse(&image, &"x".repeat(CMDLINE_MAX + 1)),
        LoadError::CmdlineTooLong {
            len: CMDLINE_MAX + 1
        }
    );
    assert_eq!(refuse(&image, "a\0b"), LoadError::CmdlineContainsNul);
}

#[test]
fn guest_write_failure_is_reported() {
    /// Claims 4 MiB but refuses every write.
    struct Broken;
    impl GuestPhys for Broken {
        fn size(&self) -> u64 {
            4 * MIB
        }
        fn write(&mut self, _: u64, _: &[u8]) -> bool {
            false
        }
        fn fill(&mut self, _: u64, _: u64, _: u8) -> bool {
            false
        }
    }
    assert!(matches!(
        load(&Kludge::default().build(), "", &[], &mut Broken),
        Err(LoadError::GuestWriteFailed { gpa: 0x10_0000, .. })
    ));
}

#[test]
fn every_error_message_mentions_the_problem() {
    let cases: &[(LoadError, &str)] = &[
        (LoadError::NoHeader { len: 5 }, "no header"),
        (
            LoadError::UnsupportedFlags {
                flags: 8,
                unsupported: 8,
            },
            "0x0008",
        ),
        (LoadError::Elf(ElfError::NotI386 { machine: 40 }), "80386"),
        (
            LoadError::Overlaps {
                part: Part::ElfSegment(2),
                start: 0x9000,
                end: 0xA000,
                area_start: 0x9000,
                area_end: 0x10000,
                area: "the info",
            },
            "ELF segment 2 at [0x9000, 0xa000) overlaps the info",
        ),
    ];
    for (err, needle) in cases {
        let msg = format!("{err}");
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Robustness: random and mutated images never panic, and every success is consistent.

/// A u32 biased towards interesting values (small, near 1 MiB, near the top, the info area).
fn interesting_u32(rng: &mut Rng) -> u32 {
    const NEAR: [u32; 8] = [
        0,
        0x9000,
        0x9_FC00,
        0x10_0000,
        0x20_0000,
        0x40_0000,
        0xFFFF_F000,
        0xFFFF_FFFF,
    ];
    let base = NEAR[rng.below(NEAR.len() as u64) as usize];
    match rng.below(3) {
        0 => base,
        1 => base.wrapping_add(rng.below(0x2000) as u32),
        _ => base.wrapping_sub(rng.below(0x2000) as u32),
    }
}

fn mutate(rng: &mut Rng, image: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        if image.is_empty() {
            return;
        }
        let len = image.len() as u64;
        match rng.below(6) {
            0 => {
                let i = rng.below(len) as usize;
                image[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len) as usize;
                image[i] = rng.next() as u8;
            }
            2 => {
                // An interesting u32 at an aligned offset in the headers.
                let i = (rng.below(len.min(0x240)) & !3) as usize;
                let v = interesting_u32(rng).to_le_bytes();
                let n = v.len().min(image.len() - i);
                image[i..i + n].copy_from_slice(&v[..n]);
            }
            3 => image.truncate(rng.below(len + 1) as usize),
            4 => image.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
            _ => {
                // Repair the Multiboot checksum so the mutation reaches the later checks.
                if let Ok(h) = find_header(image).or_else(|e| match e {
                    LoadError::BadChecksum { offset, flags, .. } => Ok(Header {
                        offset,
                        flags,
                        kludge: None,
                    }),
                    e => Err(e),
                }) {
                    let sum = 0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(h.flags);
                    image[h.offset + 8..h.offset + 12].copy_from_slice(&sum.to_le_bytes());
                }
            }
        }
    }
}

#[test]
fn random_and_mutated_images_never_panic() {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let seeds = [
        Kludge::default().build(),
        Kludge {
            load_end_addr: 0,
            bss_end_addr: 0,
            ..Kludge::default()
        }
        .build(),
        two_segment_elf().build(),
        Elf::new(0x10_0000, vec![seg(0x10_0000, pattern(0x20, 9), 0x1_0000)]).build(),
    ];
    let mut ram = Ram::new(2 * MIB + 4096);
    let (mut ok, mut refused) = (0, 0);
    for round in 0..6000 {
        let image = if round % 5 == 0 {
            // Pure noise with a valid header planted, or without.
            let mut v: Vec<u8> = (0..rng.below(600)).map(|_| rng.next() as u8).collect();
            if round % 10 == 0 && v.len() >= 44 {
                let at = (rng.below(v.len() as u64 - 43) & !3) as usize;
                let flags = rng.next() as u32 & !0xFFF8;
                let mut h = Vec::new();
                mb_header(&mut h, flags);
                v[at..at + 12].copy_from_slice(&h);
            }
            v
        } else {
            let mut v = seeds[rng.below(seeds.len() as u64) as usize].clone();
            mutate(&mut rng, &mut v);
            v
        };
        let cmdline = if rng.below(2) == 0 { "" } else { "status=3" };
        match load(&image, cmdline, &[], &mut ram) {
            Ok(e) => {
                ok += 1;
                assert_eq!(e.eax, BOOTLOADER_MAGIC);
                assert_eq!(u64::from(e.ebx), INFO_ADDR);
                assert!(u64::from(e.eip) < ram.size());
                assert_eq!(ram.cstr(CMDLINE_ADDR), cmdline);
            }
            Err(err) => {
                refused += 1;
                assert!(!err.to_string().is_empty());
            }
        }
    }
    assert!(ok > 100 && refused > 1000, "ok {ok}, refused {refused}");
}
