// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests of the Multiboot loader's boot modules (section 3.3, flag 3).

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::super::GuestModule;
use super::super::multiboot::modules::ENTRY_SIZE;
use super::*;

/// The module table's entries: (mod_start, mod_end, string, reserved).
fn table(ram: &Ram) -> Vec<(u32, u32, &str, u32)> {
    let info = INFO_ADDR;
    assert_ne!(ram.u32(info) & INFO_MODS, 0, "flag 3");
    let (count, addr) = (ram.u32(info + 20), u64::from(ram.u32(info + 24)));
    (0..u64::from(count))
        .map(|i| {
            let e = addr + i * ENTRY_SIZE;
            let string = ram.cstr(u64::from(ram.u32(e + 8)));
            (ram.u32(e), ram.u32(e + 4), string, ram.u32(e + 12))
        })
        .collect()
}

#[test]
fn modules_are_page_aligned_above_the_image_then_their_table_and_strings() {
    let a = pattern(0x1234, 3);
    let b = pattern(5, 4);
    let modules = [
        GuestModule {
            data: &a,
            args: "initrd a=1",
        },
        GuestModule { data: &b, args: "" },
    ];
    let mut ram = Ram::new(4 * MIB);
    // The default kludge image ends (bss included) at 0x101300.
    load(&Kludge::default().build(), "status=1", &modules, &mut ram).unwrap();
    assert_eq!(
        ram.u32(INFO_ADDR),
        INFO_MEMORY | INFO_CMDLINE | INFO_MODS | INFO_MMAP | INFO_BOOT_LOADER_NAME
    );
    assert_eq!(
        table(&ram),
        [
            (0x10_2000, 0x10_3234, "initrd a=1", 0),
            (0x10_4000, 0x10_4005, "", 0),
        ]
    );
    assert_eq!(
        u64::from(ram.u32(INFO_ADDR + 24)),
        0x10_5000,
        "table after them"
    );
    assert_eq!(ram.bytes(0x10_2000, a.len()), &a[..]);
    assert_eq!(ram.bytes(0x10_4000, b.len()), &b[..]);
    assert_eq!(ram.cstr(CMDLINE_ADDR), "status=1");

    // Above the highest ELF segment; above 1 MiB for an image in low memory.
    let mut ram = Ram::new(4 * MIB);
    load(&two_segment_elf().build(), "", &modules[1..], &mut ram).unwrap();
    assert_eq!(table(&ram)[0].0, 0x20_1000);
    let low = Kludge {
        header_addr: 0x2_0010,
        load_addr: 0x2_0000,
        load_end_addr: 0x2_0300,
        bss_end_addr: 0x2_1000,
        entry_addr: 0x2_0100,
        ..Kludge::default()
    };
    load(&low.build(), "", &modules[1..], &mut ram).unwrap();
    assert_eq!(table(&ram)[0].0, 0x10_0000);
}

#[test]
fn modules_that_do_not_fit_or_hold_a_nul_are_refused() {
    let image = Kludge::default().build();
    // 4 MiB of RAM: the image ends at 0x101300, modules start at 0x102000; the table and
    // strings take the last page.
    let room = (4 * MIB - 0x10_2000 - 4096) as usize;
    let fits = vec![1u8; room];
    let over = vec![1u8; room + 1];
    let mut ram = Ram::new(4 * MIB);
    let m = |data, args| GuestModule { data, args };
    load(&image, "", &[m(&fits, "x")], &mut ram).unwrap();
    assert_eq!(table(&ram), [(0x10_2000, (4 * MIB - 4096) as u32, "x", 0)]);
    assert_eq!(u64::from(ram.u32(INFO_ADDR + 24)), 4 * MIB - 4096);

    for (modules, err) in [
        (
            vec![m(&over, "x")],
            LoadError::ModulesBeyondRam {
                count: 1,
                end: 4 * MIB + ENTRY_SIZE + 2,
                limit: 4 * MIB,
            },
        ),
        (
            vec![m(&[1], ""), m(&fits, "")],
            LoadError::ModulesBeyondRam {
                count: 2,
                end: 4 * MIB + 2 * ENTRY_SIZE + 2,
                limit: 4 * MIB,
            },
        ),
        (
            vec![m(&[], "ok"), m(&[], "a\0b")],
            LoadError::ModuleArgsContainNul { index: 1 },
        ),
    ] {
        let mut ram = Ram::new(4 * MIB);
        assert_eq!(load(&image, "", &modules, &mut ram), Err(err));
        assert!(ram.untouched(), "{err:?} but RAM was written");
        assert!(err.to_string().contains("module"), "{err}");
    }
}
