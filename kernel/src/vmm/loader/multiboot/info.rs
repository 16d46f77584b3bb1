// SPDX-License-Identifier: MIT OR Apache-2.0
//! The Multiboot information structure (Multiboot Specification 0.6.96, section 3.3) Castor
//! gives a guest: flags 0 (`mem_lower`/`mem_upper`), 2 (command line), 6 (memory map) and 9
//! (boot loader name), and 3 (modules) when there are any, in the information area below 64 KiB.

use super::super::GuestPhys;
use super::{
    BIOS_START, BOOT_LOADER_NAME, BOOT_LOADER_NAME_ADDR, CMDLINE_ADDR, HIGH_MEMORY, INFO_ADDR,
    INFO_AREA_END, INFO_AREA_START, INFO_BOOT_LOADER_NAME, INFO_CMDLINE, INFO_MEMORY, INFO_MMAP,
    INFO_MODS, INFO_SIZE, LIMIT_4G, LoadError, MMAP_ADDR, MMAP_AVAILABLE, MMAP_RESERVED,
    RESERVED_LOW_START, fill, write,
};

/// Bytes of one memory map entry including its `size` field.
const MMAP_ENTRY_SIZE: usize = 24;
/// The memory map: `(base, length, type)`; the last entry's length depends on guest RAM.
fn memory_map(ram: u64) -> [(u64, u64, u32); 4] {
    [
        (0, RESERVED_LOW_START, MMAP_AVAILABLE),
        (
            RESERVED_LOW_START,
            0xA_0000 - RESERVED_LOW_START,
            MMAP_RESERVED,
        ),
        (BIOS_START, HIGH_MEMORY - BIOS_START, MMAP_RESERVED),
        (HIGH_MEMORY, ram - HIGH_MEMORY, MMAP_AVAILABLE),
    ]
}

const _: () = assert!(INFO_ADDR + INFO_SIZE as u64 <= MMAP_ADDR);
const _: () = assert!(MMAP_ADDR + (4 * MMAP_ENTRY_SIZE) as u64 <= BOOT_LOADER_NAME_ADDR);
const _: () = assert!(BOOT_LOADER_NAME_ADDR + (BOOT_LOADER_NAME.len() as u64) < CMDLINE_ADDR);

/// Writes the boot information, memory map and strings into the (zeroed) information area.
/// `ram` > 1 MiB and `cmdline` fits [`CMDLINE_MAX`](super::CMDLINE_MAX) without NULs (checked by
/// [`load`](super::load)). `mods` is `(mods_count, mods_addr)` of the module table, if any.
pub(super) fn write_info(
    mem: &mut impl GuestPhys,
    cmdline: &str,
    mods: Option<(u32, u32)>,
    ram: u64,
) -> Result<(), LoadError> {
    fill(mem, INFO_AREA_START, INFO_AREA_END - INFO_AREA_START)?;

    let map = memory_map(ram);
    let mut mmap = [0u8; 4 * MMAP_ENTRY_SIZE];
    for (entry, (base, len, kind)) in mmap.chunks_exact_mut(MMAP_ENTRY_SIZE).zip(map) {
        entry[0..4].copy_from_slice(&20u32.to_le_bytes());
        entry[4..12].copy_from_slice(&base.to_le_bytes());
        entry[12..20].copy_from_slice(&len.to_le_bytes());
        entry[20..24].copy_from_slice(&kind.to_le_bytes());
    }

    // mem_upper: KiB from 1 MiB up to the end of RAM a 32-bit guest can reach.
    let mem_upper = (ram.min(LIMIT_4G) - HIGH_MEMORY) / 1024;
    let mut info = [0u8; INFO_SIZE];
    let mut put = |off: usize, v: u32| info[off..off + 4].copy_from_slice(&v.to_le_bytes());
    put(
        0,
        INFO_MEMORY | INFO_CMDLINE | INFO_MMAP | INFO_BOOT_LOADER_NAME,
    );
    if let Some((count, addr)) = mods {
        put(
            0,
            INFO_MODS | INFO_MEMORY | INFO_CMDLINE | INFO_MMAP | INFO_BOOT_LOADER_NAME,
        );
        put(20, count);
        put(24, addr);
    }
    put(4, 640); // mem_lower, KiB
    put(8, mem_upper as u32); // < 4 Gi / 1024
    put(16, CMDLINE_ADDR as u32);
    put(44, mmap.len() as u32); // mmap_length
    put(48, MMAP_ADDR as u32);
    put(64, BOOT_LOADER_NAME_ADDR as u32);

    write(mem, INFO_ADDR, &info)?;
    write(mem, MMAP_ADDR, &mmap)?;
    // Both strings are followed by zeros: the area was zeroed and each fits with its NUL.
    write(mem, BOOT_LOADER_NAME_ADDR, BOOT_LOADER_NAME.as_bytes())?;
    write(mem, CMDLINE_ADDR, cmdline.as_bytes())
}
