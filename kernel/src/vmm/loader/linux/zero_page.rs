// SPDX-License-Identifier: MIT OR Apache-2.0
//! `struct boot_params`, the "zero page" a Linux kernel is entered with, and its e820 memory
//! map.
//!
//! Layout from Documentation/arch/x86/zero-page.rst; what a 32-bit boot loader fills in from
//! THE LINUX/x86 BOOT PROTOCOL (Documentation/arch/x86/boot.rst), "32-bit BOOT PROTOCOL": the
//! page is zeroed, the setup header is copied from offset 0x1F1 of the kernel image, and the
//! loader then writes the fields marked "write" or "modify" in the header, the e820 map and
//! nothing else (everything BIOS services would have filled stays zero).

use alloc::vec;
use alloc::vec::Vec;

use super::header::{CAN_USE_HEAP, HEADER_START, SetupHeader};
use crate::vmm::loader::multiboot::{HIGH_MEMORY, RESERVED_LOW_START};

/// Bytes of `struct boot_params`.
pub const SIZE: usize = 4096;
/// `e820_entries` (u8).
const E820_ENTRIES: usize = 0x1E8;
/// `e820_table`: up to [`E820_MAX`] entries of (addr u64, size u64, type u32).
const E820_TABLE: usize = 0x2D0;
/// Bytes of one e820 entry.
const E820_ENTRY_SIZE: usize = 20;
/// Entries `e820_table` holds (E820_MAX_ENTRIES_ZEROPAGE).
pub const E820_MAX: usize = 128;
/// Where `hdr` ends in `boot_params` (`edd_mbr_sig_buffer` follows at 0x290).
const HEADER_LIMIT: usize = 0x290;
/// `type_of_loader` for a boot loader without an assigned ID ("0xFF: undefined").
pub const LOADER_UNDEFINED: u8 = 0xFF;
/// `heap_end_ptr`: the end of the real-mode setup heap, as an offset from the start of the
/// real-mode code minus 0x200 — what QEMU passes (the setup code does not run under the 32-bit
/// protocol, but the protocol asks a loader to set it with `CAN_USE_HEAP`).
pub const HEAP_END_PTR: u16 = 0xFE00;

/// e820 type: usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type: reserved.
pub const E820_RESERVED: u32 = 2;

/// One e820 memory map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub addr: u64,
    /// Bytes.
    pub size: u64,
    /// [`E820_RAM`] or [`E820_RESERVED`].
    pub kind: u32,
}

/// The guest's memory map for `ram` bytes of RAM (> 1 MiB): RAM below the EBDA, the EBDA,
/// VGA and BIOS area reserved up to 1 MiB (where the ACPI tables go), RAM from 1 MiB to the
/// end of guest RAM.
pub fn e820_map(ram: u64) -> [E820Entry; 3] {
    let entry = |addr, end: u64, kind| E820Entry {
        addr,
        size: end - addr,
        kind,
    };
    [
        entry(0, RESERVED_LOW_START, E820_RAM),
        entry(RESERVED_LOW_START, HIGH_MEMORY, E820_RESERVED),
        entry(HIGH_MEMORY, ram, E820_RAM),
    ]
}

/// Where the loader put things, for the fields that point at them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// `code32_start`: where the protected-mode kernel was loaded (the 32-bit entry point).
    pub kernel: u32,
    /// `cmd_line_ptr`: the NUL-terminated command line.
    pub cmdline: u32,
    /// `ramdisk_image`: the initrd (0 when there is none).
    pub initrd: u32,
    /// `ramdisk_size`: its bytes (0 when there is none).
    pub initrd_size: u32,
}

/// The zero page for the bzImage `image` (with its checked header `hdr`) placed as `placed`
/// in `ram` bytes of guest RAM.
pub fn build(image: &[u8], hdr: &SetupHeader, placed: &Placed, ram: u64) -> Vec<u8> {
    let mut page = vec![0u8; SIZE];
    let end = hdr.end.min(HEADER_LIMIT);
    page[HEADER_START..end].copy_from_slice(&image[HEADER_START..end]);
    let mut put = |off: usize, bytes: &[u8]| page[off..off + bytes.len()].copy_from_slice(bytes);
    put(0x210, &[LOADER_UNDEFINED]);
    put(0x211, &[hdr.loadflags | CAN_USE_HEAP]);
    put(0x214, &placed.kernel.to_le_bytes());
    put(0x218, &placed.initrd.to_le_bytes());
    put(0x21C, &placed.initrd_size.to_le_bytes());
    put(0x224, &HEAP_END_PTR.to_le_bytes());
    put(0x228, &placed.cmdline.to_le_bytes());
    let map = e820_map(ram);
    put(E820_ENTRIES, &[map.len() as u8]);
    for (i, e) in map.iter().enumerate() {
        let at = E820_TABLE + i * E820_ENTRY_SIZE;
        put(at, &e.addr.to_le_bytes());
        put(at + 8, &e.size.to_le_bytes());
        put(at + 16, &e.kind.to_le_bytes());
    }
    page
}

const _: () = assert!(E820_TABLE + E820_MAX * E820_ENTRY_SIZE <= 0xD00);
