// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests of [`crate::vmm::loader::load`]: the loader is chosen by the image's format.

use alloc::string::ToString;

use super::super::linux::tests::BzImage;
use super::super::linux::{self, CMDLINE_ADDR, ZERO_PAGE_ADDR};
use super::super::{self as loader, Entry, Format, GuestModule};
use super::*;
use crate::vmm::vcpu::GuestStart;

#[test]
fn a_bzimage_boots_by_the_linux_protocol_with_the_modules_as_its_initrd() {
    let image = BzImage::default().build();
    let (a, b) = (pattern(6, 1), pattern(8, 2));
    let modules = [
        GuestModule {
            data: &a,
            args: "ignored",
        },
        GuestModule { data: &b, args: "" },
    ];
    let mut ram = Ram::new(16 * MIB);
    let e = loader::load(&image, "console=ttyS0", &modules, &mut ram).unwrap();
    assert_eq!(
        e,
        Entry {
            start: GuestStart::Protected32 { eip: 0x20_0000 },
            eax: 0,
            ebx: 0,
            esi: ZERO_PAGE_ADDR as u32,
            format: Format::Linux { version: 0x020F },
            video_mode_ignored: false,
        }
    );
    assert_eq!(e.format.to_string(), "Linux boot protocol 2.15");
    assert_eq!(ram.cstr(CMDLINE_ADDR), "console=ttyS0");
    let zp = ZERO_PAGE_ADDR;
    let (start, size) = (u64::from(ram.u32(zp + 0x218)), ram.u32(zp + 0x21C));
    assert_eq!((start, size), (16 * MIB - 4096, 16));
    assert_eq!(ram.bytes(start, 6), &a[..]);
    assert_eq!(ram.bytes(start + 6, 2), &[0, 0]);
    assert_eq!(ram.bytes(start + 8, 8), &b[..]);
}

#[test]
fn a_multiboot_kernel_boots_by_multiboot_with_its_modules() {
    let data = pattern(10, 5);
    let modules = [GuestModule {
        data: &data,
        args: "m=1",
    }];
    let mut ram = Ram::new(4 * MIB);
    let e = loader::load(&Kludge::default().build(), "x", &modules, &mut ram).unwrap();
    assert_eq!(
        e,
        Entry {
            start: GuestStart::Protected32 { eip: 0x10_0040 },
            eax: BOOTLOADER_MAGIC,
            ebx: INFO_ADDR as u32,
            esi: 0,
            format: Format::Multiboot,
            video_mode_ignored: false,
        }
    );
    assert_eq!(ram.u32(INFO_ADDR + 20), 1, "mods_count");
}

#[test]
fn anything_else_is_refused_with_the_reason() {
    let mut ram = Ram::new(4 * MIB);
    let noise = pattern(9000, 7);
    let err = loader::load(&noise, "", &[], &mut ram).unwrap_err();
    assert_eq!(err, loader::LoadError::Unrecognised { len: 9000 });
    let text = err.to_string();
    for words in ["9000-byte", "Linux bzImage", "HdrS", "Multiboot", "8192"] {
        assert!(text.contains(words), "{text:?} lacks {words:?}");
    }
    // Each loader's own refusal comes through as it is.
    let old = BzImage {
        version: 0x0204,
        ..BzImage::default()
    };
    assert_eq!(
        loader::load(&old.build(), "", &[], &mut ram),
        Err(loader::LoadError::Linux(linux::LoadError::OldProtocol {
            version: 0x0204
        }))
    );
    let bad = Kludge {
        flags: 1 << 3,
        ..Kludge::default()
    };
    assert!(matches!(
        loader::load(&bad.build(), "", &[], &mut ram),
        Err(loader::LoadError::Multiboot(
            LoadError::UnsupportedFlags { .. }
        ))
    ));
    assert!(ram.untouched());
}
