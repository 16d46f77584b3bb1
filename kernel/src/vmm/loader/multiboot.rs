// SPDX-License-Identifier: MIT OR Apache-2.0
//! Multiboot 1 guest kernels: find and check the header, load the image, build the boot
//! information, and report the entry state.
//!
//! Rules from the Multiboot Specification 0.6.96, sections 3.1 (header), 3.2 (machine state) and
//! 3.3 (boot information); behaviour modelled on QEMU's `-kernel` loader
//! (hw/i386/multiboot.c), which is stricter than GRUB in a few places and looser in others:
//!
//! - The header is the first 4-byte aligned `0x1BADB002` within the image's first 8192 bytes
//!   whose checksum makes magic + flags + checksum == 0 (mod 2^32).
//! - Flag bits 0-15 are requirements: bits 0 (page-align modules; there are none), 1 (memory
//!   information; always given) and 2 (video mode; ignored like QEMU does, reported in
//!   [`MultibootEntry::video_mode_ignored`]) are accepted, any other one is refused.
//! - Flag bit 16 set: the a.out kludge. The file is loaded flat: from file offset
//!   `header offset - (header_addr - load_addr)`, `load_end_addr - load_addr` bytes (the rest of
//!   the file when `load_end_addr` is 0) go to `load_addr`, and `[load_end_addr, bss_end_addr)`
//!   is zeroed (none when `bss_end_addr` is 0). The entry is `entry_addr`.
//! - Flag bit 16 clear: the image must be an ELF32 `EM_386` `ET_EXEC`; every `PT_LOAD` segment is
//!   placed at `p_paddr` (`p_filesz` file bytes, zeroed up to `p_memsz`). The entry is `e_entry`,
//!   translated from virtual to physical when it falls inside a segment's virtual range (as GRUB
//!   does, so higher-half kernels with `p_vaddr != p_paddr` boot; QEMU enters at `e_entry` as
//!   is, which is the same for identity-linked kernels).
//!
//! Castor is stricter than both about the result: everything the image occupies must be guest
//! RAM below 4 GiB, outside the boot information area ([`INFO_AREA_START`]..[`INFO_AREA_END`])
//! and outside the reserved legacy area ([`RESERVED_LOW_START`]..[`HIGH_MEMORY`]), and the entry
//! point must lie in bytes loaded from the file. All checks happen before anything is written.
//!
//! The boot information (section 3.3) is placed at [`INFO_ADDR`] with flags 0 (`mem_lower` = 640,
//! `mem_upper` = KiB above 1 MiB), 2 (command line), 6 (memory map) and 9 (boot loader name),
//! and 3 (modules) when there are boot modules ([`modules`]: each one page aligned above the
//! image, then the module table and the modules' strings, all below the end of RAM and 4 GiB,
//! as QEMU's `-initrd "a args,b"` places them). Unlike QEMU, the command line and the module
//! strings are passed exactly as given (QEMU prepends the file names).

use super::elf32::{self, Elf32};
use super::{GuestModule, GuestPhys};

mod error;
mod info;
pub mod modules;

pub use error::{LoadError, Part};
use info::write_info;

/// Magic value of a Multiboot 1 header.
pub const HEADER_MAGIC: u32 = 0x1BAD_B002;
/// EAX on entry to a Multiboot 1 kernel.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// The header must lie within this many bytes at the start of the image.
pub const SEARCH_LIMIT: usize = 8192;

/// Header flag: align modules on 4 KiB boundaries.
pub const FLAG_PAGE_ALIGN: u32 = 1 << 0;
/// Header flag: the kernel needs `mem_*` (and the memory map).
pub const FLAG_MEMORY_INFO: u32 = 1 << 1;
/// Header flag: the kernel asks for a video mode (ignored).
pub const FLAG_VIDEO_MODE: u32 = 1 << 2;
/// Header flag: the a.out kludge address fields are valid.
pub const FLAG_AOUT_KLUDGE: u32 = 1 << 16;
/// Flag bits 0-15 are requirements a loader must meet or refuse the image.
const REQUIRED_MASK: u32 = 0xFFFF;
/// The requirements this loader meets.
const SUPPORTED_REQUIRED: u32 = FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE;

/// Boot information flag: `mem_lower` and `mem_upper` are valid.
pub const INFO_MEMORY: u32 = 1 << 0;
/// Boot information flag: `mods_count` and `mods_addr` are valid.
pub const INFO_MODS: u32 = 1 << 3;
/// Boot information flag: `cmdline` is valid.
pub const INFO_CMDLINE: u32 = 1 << 2;
/// Boot information flag: `mmap_length` and `mmap_addr` are valid.
pub const INFO_MMAP: u32 = 1 << 6;
/// Boot information flag: `boot_loader_name` is valid.
pub const INFO_BOOT_LOADER_NAME: u32 = 1 << 9;

/// First byte of the guest-physical area that holds the boot information and its strings.
pub const INFO_AREA_START: u64 = 0x9000;
/// End (exclusive) of the boot information area.
pub const INFO_AREA_END: u64 = 0x1_0000;
/// Guest-physical address of the boot information structure (passed in EBX).
pub const INFO_ADDR: u64 = INFO_AREA_START;
/// Bytes of the boot information structure (through the framebuffer fields), all zeroed
/// except the fields Castor fills in.
pub const INFO_SIZE: usize = 116;
/// Guest-physical address of the memory map.
pub const MMAP_ADDR: u64 = 0x9080;
/// Guest-physical address of the boot loader name.
pub const BOOT_LOADER_NAME_ADDR: u64 = 0x9100;
/// Guest-physical address of the command line.
pub const CMDLINE_ADDR: u64 = 0x9200;
/// Longest command line in bytes (without its NUL terminator).
pub const CMDLINE_MAX: usize = (INFO_AREA_END - CMDLINE_ADDR - 1) as usize;
/// The boot loader name given to guests.
pub const BOOT_LOADER_NAME: &str = "Castor";

/// End of conventional memory reported as available (the EBDA follows).
pub const RESERVED_LOW_START: u64 = 0x9_FC00;
/// Start of the BIOS area reported as reserved: from 0xE0000, where Castor writes the ACPI
/// tables (`vmm::acpi::DEFAULT_BASE`; ACPI 6.5, 5.2.5.1), to 1 MiB.
pub const BIOS_START: u64 = 0xE_0000;
const _: () = assert!(BIOS_START <= crate::vmm::acpi::DEFAULT_BASE);
/// Start of memory above 1 MiB.
pub const HIGH_MEMORY: u64 = 0x10_0000;
/// Highest address (exclusive) a 32-bit guest entered without paging can reach.
pub const LIMIT_4G: u64 = 1 << 32;

/// Memory map entry type: available RAM.
pub const MMAP_AVAILABLE: u32 = 1;
/// Memory map entry type: reserved.
pub const MMAP_RESERVED: u32 = 2;

/// How to enter a loaded Multiboot kernel.
///
/// Machine state the caller must set up (Multiboot 0.6.96 section 3.2): 32-bit protected mode
/// with paging off (CR0.PE = 1, CR0.PG = 0); CS a flat 32-bit read/execute code segment (base 0,
/// limit 0xFFFFFFFF); DS, ES, FS, GS, SS flat 32-bit read/write data segments; A20 enabled;
/// EFLAGS.VM = 0 and EFLAGS.IF = 0; EIP = `eip`, EAX = `eax`, EBX = `ebx`. ESP, GDTR and IDTR
/// are undefined for the guest (it must set up its own), other registers are best zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultibootEntry {
    /// Entry point (guest-physical).
    pub eip: u32,
    /// [`BOOTLOADER_MAGIC`].
    pub eax: u32,
    /// Guest-physical address of the Multiboot information structure ([`INFO_ADDR`]).
    pub ebx: u32,
    /// The kernel asked for a video mode (header flag 2), which Castor does not provide; the
    /// caller may want to log this. Guests must cope: the info flags do not claim video.
    pub video_mode_ignored: bool,
}

/// The a.out kludge address fields (header offsets 12..32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AoutKludge {
    /// Physical address of the header's magic.
    pub header_addr: u32,
    /// Physical address of the start of the text segment.
    pub load_addr: u32,
    /// End of the data segment (0: the whole rest of the file).
    pub load_end_addr: u32,
    /// End of the bss (0: none).
    pub bss_end_addr: u32,
    /// Entry point.
    pub entry_addr: u32,
}

/// A checked Multiboot 1 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// File offset of the magic.
    pub offset: usize,
    /// Header flags.
    pub flags: u32,
    /// The a.out kludge fields when flag 16 is set.
    pub kludge: Option<AoutKludge>,
}

fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    let b = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Finds and checks the Multiboot 1 header of `image` (magic, checksum, required flags, a.out
/// kludge fields present in the file).
pub fn find_header(image: &[u8]) -> Result<Header, LoadError> {
    let mut first_bad = None;
    let mut offset = 0;
    // The three mandatory fields must lie within the search window.
    while offset + 12 <= SEARCH_LIMIT.min(image.len()) {
        if u32_at(image, offset) == Some(HEADER_MAGIC) {
            let flags = u32_at(image, offset + 4).unwrap_or(0);
            let checksum = u32_at(image, offset + 8).unwrap_or(0);
            if HEADER_MAGIC.wrapping_add(flags).wrapping_add(checksum) == 0 {
                return check_header(image, offset, flags);
            }
            first_bad.get_or_insert(LoadError::BadChecksum {
                offset,
                flags,
                checksum,
            });
        }
        offset += 4;
    }
    Err(first_bad.unwrap_or(LoadError::NoHeader { len: image.len() }))
}

fn check_header(image: &[u8], offset: usize, flags: u32) -> Result<Header, LoadError> {
    let unsupported = flags & REQUIRED_MASK & !SUPPORTED_REQUIRED;
    if unsupported != 0 {
        return Err(LoadError::UnsupportedFlags { flags, unsupported });
    }
    let kludge = if flags & FLAG_AOUT_KLUDGE != 0 {
        let field = |i: usize| {
            u32_at(image, offset + 12 + 4 * i).ok_or(LoadError::KludgeHeaderTruncated {
                offset,
                len: image.len(),
            })
        };
        Some(AoutKludge {
            header_addr: field(0)?,
            load_addr: field(1)?,
            load_end_addr: field(2)?,
            bss_end_addr: field(3)?,
            entry_addr: field(4)?,
        })
    } else {
        None
    };
    Ok(Header {
        offset,
        flags,
        kludge,
    })
}

/// Where a part of the image goes: `file` bytes copied to `start`, then zeros up to `end`.
struct Placement<'a> {
    part: Part,
    start: u64,
    file: &'a [u8],
    end: u64,
}

/// The guest-physical areas an image must not touch.
const FORBIDDEN: [(u64, u64, &str); 2] = [
    (
        INFO_AREA_START,
        INFO_AREA_END,
        "the Multiboot information area Castor builds",
    ),
    (
        RESERVED_LOW_START,
        HIGH_MEMORY,
        "the reserved EBDA, VGA and BIOS area",
    ),
];

impl Placement<'_> {
    fn check(&self, ram: u64) -> Result<(), LoadError> {
        let limit = ram.min(LIMIT_4G);
        if self.end > limit {
            return Err(LoadError::BeyondRam {
                part: self.part,
                start: self.start,
                end: self.end,
                limit,
            });
        }
        for (area_start, area_end, area) in FORBIDDEN {
            if self.start < area_end && area_start < self.end {
                return Err(LoadError::Overlaps {
                    part: self.part,
                    start: self.start,
                    end: self.end,
                    area_start,
                    area_end,
                    area,
                });
            }
        }
        Ok(())
    }

    fn write(&self, mem: &mut impl GuestPhys) -> Result<(), LoadError> {
        write(mem, self.start, self.file)?;
        let zero_start = self.start + self.file.len() as u64;
        fill(mem, zero_start, self.end - zero_start)
    }

    /// True if `addr` lies in the bytes copied from the file.
    fn holds_file_byte(&self, addr: u64) -> bool {
        addr >= self.start && addr - self.start < self.file.len() as u64
    }
}

fn write(mem: &mut impl GuestPhys, gpa: u64, data: &[u8]) -> Result<(), LoadError> {
    Ok(super::write(mem, gpa, data)?)
}

fn fill(mem: &mut impl GuestPhys, gpa: u64, len: u64) -> Result<(), LoadError> {
    Ok(super::zero(mem, gpa, len)?)
}

/// Works out where an a.out-kludge image goes (QEMU's rules, plus bounds on the file).
fn kludge_placement<'a>(
    image: &'a [u8],
    offset: usize,
    k: &AoutKludge,
) -> Result<Placement<'a>, LoadError> {
    let before = k
        .header_addr
        .checked_sub(k.load_addr)
        .ok_or(LoadError::LoadAddrAboveHeader {
            header_addr: k.header_addr,
            load_addr: k.load_addr,
        })?;
    let file_offset =
        (offset as u64)
            .checked_sub(u64::from(before))
            .ok_or(LoadError::LoadStartsBeforeFile {
                header_addr: k.header_addr,
                load_addr: k.load_addr,
                offset,
            })?;
    let available = image.len() as u64 - file_offset; // file_offset <= offset < len
    let load_size =
        if k.load_end_addr == 0 {
            available
        } else {
            u64::from(k.load_end_addr.checked_sub(k.load_addr).ok_or(
                LoadError::LoadEndBelowLoad {
                    load_addr: k.load_addr,
                    load_end_addr: k.load_end_addr,
                },
            )?)
        };
    if load_size > available {
        return Err(LoadError::KludgeImageTruncated {
            file_offset,
            load_size,
            len: image.len(),
        });
    }
    let start = u64::from(k.load_addr);
    let load_end = start + load_size;
    let end = if k.bss_end_addr == 0 {
        load_end
    } else if u64::from(k.bss_end_addr) < load_end {
        return Err(LoadError::BssEndBelowLoadEnd {
            bss_end_addr: k.bss_end_addr,
            load_end,
        });
    } else {
        u64::from(k.bss_end_addr)
    };
    // In bounds: file_offset + load_size <= len, both checked above.
    let file = &image[file_offset as usize..(file_offset + load_size) as usize];
    Ok(Placement {
        part: Part::KludgeImage,
        start,
        file,
        end,
    })
}

fn elf_placement<'a>(elf: &Elf32<'a>, s: &elf32::Segment) -> Placement<'a> {
    let start = u64::from(s.paddr);
    Placement {
        part: Part::ElfSegment(s.index),
        start,
        file: elf.file_bytes(s),
        end: start + u64::from(s.memsz),
    }
}

/// What is loaded from the image, checked.
enum Image<'a> {
    /// An a.out-kludge image: one flat placement.
    Kludge(Placement<'a>),
    /// An ELF executable: its `PT_LOAD` segments.
    Elf(Elf32<'a>),
}

/// Loads the Multiboot 1 kernel `image` into `mem` with its boot `modules`, builds its boot
/// information with command line `cmdline`, and returns how to enter it.
///
/// Nothing is written to `mem` unless the image, command line and modules pass every check.
pub fn load(
    image: &[u8],
    cmdline: &str,
    modules: &[GuestModule<'_>],
    mem: &mut impl GuestPhys,
) -> Result<MultibootEntry, LoadError> {
    let ram = mem.size();
    if ram <= HIGH_MEMORY {
        return Err(LoadError::RamTooSmall { ram });
    }
    if cmdline.as_bytes().contains(&0) {
        return Err(LoadError::CmdlineContainsNul);
    }
    if cmdline.len() > CMDLINE_MAX {
        return Err(LoadError::CmdlineTooLong { len: cmdline.len() });
    }
    let header = find_header(image)?;
    let (loaded, eip, image_end) = match &header.kludge {
        Some(k) => {
            let p = kludge_placement(image, header.offset, k)?;
            p.check(ram)?;
            if !p.holds_file_byte(u64::from(k.entry_addr)) {
                return Err(LoadError::EntryOutsideImage {
                    entry: k.entry_addr,
                });
            }
            let end = p.end;
            (Image::Kludge(p), k.entry_addr, end)
        }
        None => {
            let elf = Elf32::parse(image)?;
            let (entry, end) = elf_entry(&elf, ram)?;
            (Image::Elf(elf), entry, end)
        }
    };
    let mods = modules::Layout::new(modules, image_end, ram)?;
    match loaded {
        Image::Kludge(p) => p.write(mem)?,
        Image::Elf(elf) => {
            for s in elf.load_segments() {
                elf_placement(&elf, &s?).write(mem)?;
            }
        }
    }
    let table = mods.write(mem, modules)?;
    write_info(mem, cmdline, table, ram)?;
    Ok(MultibootEntry {
        eip,
        eax: BOOTLOADER_MAGIC,
        ebx: INFO_ADDR as u32,
        video_mode_ignored: header.flags & FLAG_VIDEO_MODE != 0,
    })
}

/// Checks every loadable segment of `elf` and returns the physical entry point and the end of
/// the highest segment.
fn elf_entry(elf: &Elf32<'_>, ram: u64) -> Result<(u32, u64), LoadError> {
    let mut any = false;
    let mut entry = None;
    let mut end = 0;
    for s in elf.load_segments() {
        let s = s?;
        let p = elf_placement(elf, &s);
        p.check(ram)?;
        any = true;
        end = end.max(p.end);
        // The entry is virtual: translate it through the segment whose virtual range holds it.
        let offset = elf.entry.wrapping_sub(s.vaddr);
        if entry.is_none() && elf.entry >= s.vaddr && offset < s.memsz {
            let phys = u64::from(s.paddr) + u64::from(offset);
            if p.holds_file_byte(phys) {
                entry = Some(phys as u32); // < paddr + filesz <= 4 GiB, checked above
            }
        }
    }
    if !any {
        return Err(LoadError::NoLoadableSegments);
    }
    let entry = entry.ok_or(LoadError::EntryOutsideImage { entry: elf.entry })?;
    Ok((entry, end))
}
