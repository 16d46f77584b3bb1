// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests of the Linux loader with synthetic bzImages built field by field.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::zero_page::{E820_RAM, E820_RESERVED, HEAP_END_PTR, LOADER_UNDEFINED};
use super::*;
use crate::testutil::Rng;
use crate::vmm::loader::test_ram::Ram;

const MIB: u64 = 1 << 20;

/// The header fields of a synthetic bzImage.
#[derive(Clone, Copy)]
pub(crate) struct BzImage {
    pub(crate) version: u16,
    /// Byte at 0x201: the setup header ends at 0x202 + this.
    pub(crate) jump: u8,
    pub(crate) setup_sects: u8,
    pub(crate) loadflags: u8,
    /// Protected-mode bytes in the file.
    pub(crate) pm_len: usize,
    /// `syssize` in paragraphs; `None`: `pm_len / 16` rounded up.
    pub(crate) syssize: Option<u32>,
    pub(crate) initrd_addr_max: u32,
    pub(crate) kernel_alignment: u32,
    pub(crate) relocatable: bool,
    pub(crate) cmdline_size: u32,
    pub(crate) pref_address: u64,
    pub(crate) init_size: u32,
}

impl Default for BzImage {
    /// A protocol 2.15 relocatable kernel preferring 2 MiB, 2 MiB aligned, with 0x3000 bytes
    /// of protected-mode code and 1 MiB of init_size.
    fn default() -> Self {
        Self {
            version: 0x020F,
            jump: 0x6A, // header ends at 0x26C, as in Linux 6.x
            setup_sects: 3,
            loadflags: 0x01,
            pm_len: 0x3000,
            syssize: None,
            initrd_addr_max: 0x7FFF_FFFF,
            kernel_alignment: 0x20_0000,
            relocatable: true,
            cmdline_size: 2047,
            pref_address: 0x20_0000,
            init_size: 0x10_0000,
        }
    }
}

impl BzImage {
    fn setup_len(&self) -> usize {
        (usize::from(self.setup_sects.max(1)) + 1) * 512
    }

    /// The image: setup sectors holding the header (other bytes `i as u8`), then the
    /// protected-mode code, byte `i` being `i * 3 + 1`.
    pub(crate) fn build(&self) -> Vec<u8> {
        let mut v: Vec<u8> = (0..self.setup_len()).map(|i| i as u8).collect();
        let mut put = |off: usize, bytes: &[u8]| v[off..off + bytes.len()].copy_from_slice(bytes);
        put(0x1F1, &[self.setup_sects]);
        let syssize = self.syssize.unwrap_or(self.pm_len.div_ceil(16) as u32);
        put(0x1F4, &syssize.to_le_bytes());
        put(0x1FE, &0xAA55u16.to_le_bytes());
        put(0x200, &[0xEB, self.jump]);
        put(0x202, b"HdrS");
        put(0x206, &self.version.to_le_bytes());
        put(0x210, &[0]);
        put(0x211, &[self.loadflags]);
        put(0x214, &0x10_0000u32.to_le_bytes());
        put(0x218, &[0; 8]); // ramdisk_image, ramdisk_size
        put(0x224, &[0; 2]); // heap_end_ptr
        put(0x228, &[0; 4]); // cmd_line_ptr
        put(0x22C, &self.initrd_addr_max.to_le_bytes());
        put(0x230, &self.kernel_alignment.to_le_bytes());
        put(0x234, &[u8::from(self.relocatable)]);
        put(0x238, &self.cmdline_size.to_le_bytes());
        put(0x258, &self.pref_address.to_le_bytes());
        put(0x260, &self.init_size.to_le_bytes());
        v.extend((0..self.pm_len).map(|i| (i as u8).wrapping_mul(3).wrapping_add(1)));
        v
    }

    fn protected_mode(&self) -> Vec<u8> {
        self.build()[self.setup_len()..].to_vec()
    }
}

fn load_in(ram: &mut Ram, k: &BzImage, cmdline: &str, initrd: &[&[u8]]) -> LinuxEntry {
    load(&k.build(), cmdline, initrd, ram).unwrap()
}

/// The e820 map in the zero page at `zp`.
fn e820(ram: &Ram, zp: u64) -> Vec<(u64, u64, u32)> {
    let n = u64::from(ram.bytes(zp + 0x1E8, 1)[0]);
    (0..n)
        .map(|i| {
            let at = zp + 0x2D0 + 20 * i;
            (ram.u64(at), ram.u64(at + 8), ram.u32(at + 16))
        })
        .collect()
}

#[test]
fn a_relocatable_kernel_is_loaded_where_it_runs_with_its_zero_page() {
    let k = BzImage::default();
    let image = k.build();
    let mut ram = Ram::new(16 * MIB);
    let e = load_in(&mut ram, &k, "console=ttyS0 earlyprintk=serial", &[]);
    assert_eq!(
        e,
        LinuxEntry {
            eip: 0x20_0000,
            esi: 0x7000,
            version: 0x020F,
            kernel_end: 0x30_0000,
            initrd: (0, 0),
        }
    );
    assert_eq!(ram.bytes(0x20_0000, k.pm_len), &k.protected_mode()[..]);

    let zp = u64::from(e.esi);
    // The setup header is copied from the image, then the loader's fields written.
    assert_eq!(ram.bytes(zp + 0x1F1, 0x1F), &image[0x1F1..0x210]);
    assert_eq!(ram.bytes(zp + 0x212, 2), &image[0x212..0x214]);
    assert_eq!(ram.bytes(zp + 0x22C, 0x26C - 0x22C), &image[0x22C..0x26C]);
    assert_eq!(ram.bytes(zp + 0x210, 1)[0], LOADER_UNDEFINED);
    assert_eq!(
        ram.bytes(zp + 0x211, 1)[0],
        0x81,
        "LOADED_HIGH | CAN_USE_HEAP"
    );
    assert_eq!(ram.u32(zp + 0x214), 0x20_0000, "code32_start");
    assert_eq!(
        (ram.u32(zp + 0x218), ram.u32(zp + 0x21C)),
        (0, 0),
        "no ramdisk"
    );
    assert_eq!(ram.u16(zp + 0x224), HEAP_END_PTR);
    let cmdline = u64::from(ram.u32(zp + 0x228));
    assert_eq!(cmdline, CMDLINE_ADDR);
    assert_eq!(ram.cstr(cmdline), "console=ttyS0 earlyprintk=serial");
    // Nothing the BIOS would fill in (screen_info ... sentinel), nothing past the header but
    // the e820 map.
    assert!(ram.bytes(zp, 0x1E8).iter().all(|&b| b == 0));
    assert!(ram.bytes(zp + 0x1E9, 0x1F1 - 0x1E9).iter().all(|&b| b == 0));
    assert!(ram.bytes(zp + 0x26C, 0x2D0 - 0x26C).iter().all(|&b| b == 0));
    assert!(
        ram.bytes(zp + 0x2D0 + 60, 4096 - 0x2D0 - 60)
            .iter()
            .all(|&b| b == 0)
    );
    assert_eq!(
        e820(&ram, zp),
        [
            (0, 0x9_FC00, E820_RAM),
            (0x9_FC00, 0x6_0400, E820_RESERVED),
            (MIB, 15 * MIB, E820_RAM),
        ]
    );
}

#[test]
fn placement_follows_pref_address_alignment_and_relocatability() {
    let cases = [
        // (pref_address, kernel_alignment, relocatable) -> load address, kernel end
        ((0x100_0000, 0x20_0000, true), (0x100_0000, 0x110_0000)),
        ((0x30_0001, 0x20_0000, true), (0x40_0000, 0x50_0000)),
        ((0, 0x1000, true), (0x10_0000, 0x20_0000)),
        // Not relocatable: loaded at 1 MiB, runs at pref_address.
        ((0x100_0000, 0x20_0000, false), (0x10_0000, 0x110_0000)),
        ((0x10_0000, 3, false), (0x10_0000, 0x20_0000)),
    ];
    for ((pref_address, kernel_alignment, relocatable), (at, end)) in cases {
        let k = BzImage {
            pref_address,
            kernel_alignment,
            relocatable,
            ..BzImage::default()
        };
        let mut ram = Ram::new(32 * MIB);
        let e = load_in(&mut ram, &k, "", &[]);
        assert_eq!(
            (u64::from(e.eip), e.kernel_end),
            (at, end),
            "{pref_address:#x}"
        );
        assert_eq!(ram.bytes(at, k.pm_len), &k.protected_mode()[..]);
        assert_eq!(ram.cstr(CMDLINE_ADDR), "");
    }
}

#[test]
fn setup_sects_zero_means_four() {
    let k = BzImage {
        setup_sects: 0,
        ..BzImage::default()
    };
    let mut image = BzImage {
        setup_sects: 4,
        ..k
    }
    .build();
    image[0x1F1] = 0;
    let mut ram = Ram::new(16 * MIB);
    load(&image, "", &[], &mut ram).unwrap();
    assert_eq!(ram.bytes(0x20_0000, 0x3000), &image[5 * 512..]);
}

#[test]
fn the_initrd_is_page_aligned_as_high_as_fits_and_concatenated() {
    let k = BzImage::default();
    let a: Vec<u8> = (0..5000u32).map(|i| i as u8 | 1).collect();
    let b: Vec<u8> = vec![0x5A; 3];
    let c: Vec<u8> = vec![0xC3; 7];
    let mut ram = Ram::new(16 * MIB);
    let e = load_in(&mut ram, &k, "", &[&a, &b, &c]);
    // 5000 -> 5000, 3 -> 4, then 7 unpadded.
    let size = 5000 + 4 + 7;
    let start = (16 * MIB - size) & !0xFFF;
    assert_eq!(e.initrd, (start, size));
    let zp = u64::from(e.esi);
    assert_eq!(
        (
            u64::from(ram.u32(zp + 0x218)),
            u64::from(ram.u32(zp + 0x21C))
        ),
        (start, size)
    );
    assert_eq!(ram.bytes(start, 5000), &a[..]);
    assert_eq!(ram.bytes(start + 5000, 4), &[0x5A, 0x5A, 0x5A, 0]);
    assert_eq!(ram.bytes(start + 5004, 7), &c[..]);

    // Below initrd_addr_max (the highest byte it may occupy) when RAM goes higher.
    let low = BzImage {
        initrd_addr_max: 0x7F_FFFF,
        ..k
    };
    let e = load_in(&mut ram, &low, "", &[&a]);
    assert_eq!(e.initrd, ((8 * MIB - 5000) & !0xFFF, 5000));
    // An initrd of exactly the room left between the kernel and the top of RAM.
    let room = vec![7u8; (16 * MIB - e.kernel_end) as usize];
    let e = load_in(&mut ram, &k, "", &[&room]);
    assert_eq!(e.initrd, (0x30_0000, 13 * MIB));
    // Empty files make no initrd.
    assert_eq!(load_in(&mut ram, &k, "", &[&[]]).initrd, (0, 0));
}

#[test]
fn the_longest_command_line_is_the_kernels_cmdline_size() {
    let k = BzImage {
        cmdline_size: 255,
        ..BzImage::default()
    };
    let mut ram = Ram::new(16 * MIB);
    let long = "x".repeat(255);
    load_in(&mut ram, &k, &long, &[]);
    assert_eq!(ram.cstr(CMDLINE_ADDR), long);
    // A kernel claiming more than Castor's area gets the area.
    let huge = BzImage {
        cmdline_size: u32::MAX,
        ..k
    };
    let longest = "y".repeat(CMDLINE_AREA_MAX);
    load_in(&mut ram, &huge, &longest, &[]);
    assert_eq!(ram.cstr(CMDLINE_ADDR), longest);
    assert_eq!(
        refuse(&huge, &"y".repeat(CMDLINE_AREA_MAX + 1), &[], 16 * MIB),
        LoadError::CmdlineTooLong {
            len: CMDLINE_AREA_MAX + 1,
            max: CMDLINE_AREA_MAX
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Refused images: each error, with nothing written to guest memory.

fn refuse_image(image: &[u8], cmdline: &str, initrd: &[&[u8]], ram: u64) -> LoadError {
    let mut ram = Ram::new(ram);
    let err = load(image, cmdline, initrd, &mut ram).unwrap_err();
    assert!(ram.untouched(), "{err:?} but RAM was written");
    assert!(!err.to_string().is_empty());
    err
}

fn refuse(k: &BzImage, cmdline: &str, initrd: &[&[u8]], ram: u64) -> LoadError {
    refuse_image(&k.build(), cmdline, initrd, ram)
}

#[test]
fn truncated_images() {
    let k = BzImage::default();
    let image = k.build();
    let setup = k.setup_len() as u64;
    for (len, what, needed) in [
        (0, "the setup header", 0x208),
        (0x100, "the setup header", 0x208),
        (0x207, "the setup header", 0x208),
        (0x26B, "the setup header", 0x26C),
        (0x300, "the protected-mode kernel", setup + 0x3000),
        (setup as usize, "the protected-mode kernel", setup + 0x3000),
        (image.len() - 1, "the protected-mode kernel", setup + 0x3000),
    ] {
        assert_eq!(
            refuse_image(&image[..len], "", &[], 16 * MIB),
            LoadError::Truncated { what, needed, len },
            "{len:#x}"
        );
    }
    // syssize larger than the file; an empty protected-mode part.
    let k = BzImage {
        syssize: Some(0x1000),
        ..BzImage::default()
    };
    assert!(matches!(
        refuse(&k, "", &[], 16 * MIB),
        LoadError::Truncated { needed, .. } if needed == setup + 0x1_0000
    ));
    let k = BzImage {
        pm_len: 0,
        ..BzImage::default()
    };
    assert!(matches!(
        refuse(&k, "", &[], 16 * MIB),
        LoadError::Truncated { .. }
    ));
}

#[test]
fn header_refusals() {
    let mut image = BzImage::default().build();
    image[0x202] = b'h';
    assert_eq!(refuse_image(&image, "", &[], 16 * MIB), LoadError::NoMagic);
    let old = BzImage {
        version: 0x0209,
        ..BzImage::default()
    };
    let err = refuse(&old, "", &[], 16 * MIB);
    assert_eq!(err, LoadError::OldProtocol { version: 0x0209 });
    assert!(err.to_string().contains("2.09 is too old"), "{err}");
    let short = BzImage {
        jump: 0x61,
        ..BzImage::default()
    };
    assert_eq!(
        refuse(&short, "", &[], 16 * MIB),
        LoadError::HeaderTooShort { end: 0x263 }
    );
    let zimage = BzImage {
        loadflags: 0x80,
        ..BzImage::default()
    };
    assert_eq!(
        refuse(&zimage, "", &[], 16 * MIB),
        LoadError::NotLoadedHigh { loadflags: 0x80 }
    );
    let odd = BzImage {
        kernel_alignment: 0x30_0000,
        ..BzImage::default()
    };
    assert_eq!(
        refuse(&odd, "", &[], 16 * MIB),
        LoadError::BadAlignment {
            kernel_alignment: 0x30_0000
        }
    );
}

#[test]
fn kernels_too_large_or_misplaced_for_the_guest() {
    let k = BzImage::default();
    assert_eq!(
        refuse(&k, "", &[], MIB),
        LoadError::RamTooSmall { ram: MIB }
    );
    let big = BzImage {
        init_size: 15 * MIB as u32,
        ..k
    };
    assert_eq!(
        refuse(&big, "", &[], 16 * MIB),
        LoadError::KernelOutsideRam {
            what: "the kernel's init_size",
            start: 0x20_0000,
            end: 0x20_0000 + 15 * MIB,
            limit: 16 * MIB
        }
    );
    let far = BzImage {
        pref_address: u64::MAX - 10,
        ..k
    };
    assert!(matches!(
        refuse(&far, "", &[], 16 * MIB),
        LoadError::KernelOutsideRam { end: u64::MAX, .. }
    ));
    let low = BzImage {
        pref_address: 0x1_0000,
        relocatable: false,
        ..k
    };
    assert!(matches!(
        refuse(&low, "", &[], 16 * MIB),
        LoadError::KernelOutsideRam {
            start: 0x1_0000,
            ..
        }
    ));
    // The loaded bytes alone beyond RAM (init_size smaller than the file).
    let long = BzImage {
        pm_len: 3 * MIB as usize,
        init_size: 0,
        ..k
    };
    assert!(matches!(
        refuse(&long, "", &[], 4 * MIB),
        LoadError::KernelOutsideRam {
            what: "the protected-mode kernel",
            ..
        }
    ));
    // Above 4 GiB with more RAM than that: the 32-bit entry cannot reach it.
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
    let high = BzImage {
        pref_address: 5 << 30,
        ..k
    };
    let err = load(&high.build(), "", &[], &mut Big(Ram::new(MIB))).unwrap_err();
    assert!(matches!(
        err,
        LoadError::KernelOutsideRam {
            limit: 0x1_0000_0000,
            ..
        }
    ));
}

#[test]
fn command_line_refusals() {
    let k = BzImage {
        cmdline_size: 10,
        ..BzImage::default()
    };
    assert_eq!(
        refuse(&k, "console=ttyS0", &[], 16 * MIB),
        LoadError::CmdlineTooLong { len: 13, max: 10 }
    );
    assert_eq!(
        refuse(&k, "a\0b", &[], 16 * MIB),
        LoadError::CmdlineContainsNul
    );
}

#[test]
fn initrd_refusals() {
    let k = BzImage::default();
    // One byte more than the room between the kernel (ends at 3 MiB) and the end of RAM.
    let big = vec![1u8; 13 * MIB as usize + 1];
    assert_eq!(
        refuse(&k, "", &[&big], 16 * MIB),
        LoadError::InitrdTooBig {
            size: 13 * MIB + 1,
            lowest: 0x30_0000,
            highest: 16 * MIB
        }
    );
    // initrd_addr_max below the kernel's end.
    let capped = BzImage {
        initrd_addr_max: 0x2F_FFFF,
        ..k
    };
    assert_eq!(
        refuse(&capped, "", &[&[1u8; 16]], 16 * MIB),
        LoadError::InitrdTooBig {
            size: 16,
            lowest: 0x30_0000,
            highest: 0x30_0000
        }
    );
    // Two files of 13 MiB in all, whose padding tips them over.
    let a = vec![1u8; 13 * MIB as usize - 3];
    assert!(matches!(
        refuse(&k, "", &[&a, &[2u8; 3]], 16 * MIB),
        LoadError::InitrdTooBig { size, .. } if size == 13 * MIB + 3
    ));
}

#[test]
fn every_error_message_gives_the_numbers() {
    let cases = [
        (
            LoadError::Truncated {
                what: "the setup header",
                needed: 0x26c,
                len: 0x100,
            },
            &["setup header", "0x26c", "0x100"][..],
        ),
        (LoadError::HeaderTooShort { end: 0x250 }, &["0x250"]),
        (
            LoadError::NotLoadedHigh { loadflags: 0x80 },
            &["0x80", "LOADED_HIGH"],
        ),
        (
            LoadError::InitrdTooBig {
                size: 0x5000,
                lowest: 0x300000,
                highest: 0x400000,
            },
            &["0x5000", "0x300000", "0x400000"],
        ),
        (
            LoadError::KernelOutsideRam {
                what: "the kernel's init_size",
                start: 0x1000000,
                end: 0x5000000,
                limit: 0x4000000,
            },
            &["init_size", "0x1000000", "0x5000000", "0x4000000"],
        ),
    ];
    for (err, words) in cases {
        let text = err.to_string();
        for w in words {
            assert!(text.contains(w), "{text:?} lacks {w:?}");
        }
    }
}

#[test]
fn random_and_mutated_images_never_panic() {
    let mut rng = Rng::new(0x5EED_1234_ABCD_0001);
    let seed = BzImage::default().build();
    let (mut ok, mut refused) = (0, 0);
    let mut ram = Ram::new(8 * MIB);
    for round in 0..3000 {
        let mut image = seed.clone();
        if round % 7 == 0 {
            image.truncate(rng.below(image.len() as u64) as usize);
        }
        for _ in 0..1 + rng.below(4) {
            if image.is_empty() {
                break;
            }
            // Mostly the header, sometimes anywhere.
            let span = match rng.below(4) {
                0 => image.len() as u64,
                _ => image.len().min(0x270) as u64,
            };
            let at = (0x1F0 + rng.below(span.saturating_sub(0x1F0).max(1))) as usize;
            if at < image.len() {
                image[at] = rng.next() as u8;
            }
        }
        let initrd = vec![9u8; rng.below(3 * MIB) as usize];
        match load(&image, "console=ttyS0", &[&initrd], &mut ram) {
            Ok(e) => {
                ok += 1;
                assert_eq!(u64::from(e.esi), ZERO_PAGE_ADDR);
                assert!(e.kernel_end <= ram.size() && u64::from(e.eip) >= MIB);
                assert!(e.initrd.0 >= e.kernel_end || e.initrd == (0, 0));
                assert!(e.initrd.0 + e.initrd.1 <= ram.size());
            }
            Err(err) => {
                refused += 1;
                assert!(!err.to_string().is_empty());
            }
        }
    }
    assert!(ok > 300 && refused > 300, "ok {ok}, refused {refused}");
}
