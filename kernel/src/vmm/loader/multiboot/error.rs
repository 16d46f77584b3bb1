// SPDX-License-Identifier: MIT OR Apache-2.0
//! Why a Multiboot image was refused: every check of the loader has its own [`LoadError`],
//! naming the part of the image ([`Part`]) and the numbers involved.

use core::fmt;

use super::super::WriteFailed;
use super::super::elf32::ElfError;
use super::{CMDLINE_MAX, HEADER_MAGIC, SEARCH_LIMIT};

/// Which part of an image a [`LoadError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The flat image of an a.out-kludge kernel (file bytes and bss).
    KludgeImage,
    /// An ELF program header, by index.
    ElfSegment(usize),
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KludgeImage => write!(f, "the a.out-kludge image"),
            Self::ElfSegment(i) => write!(f, "ELF segment {i}"),
        }
    }
}

/// Why a Multiboot kernel could not be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    /// No `0x1BADB002` at a 4-byte aligned offset within the first 8192 bytes.
    NoHeader {
        /// Image length.
        len: usize,
    },
    /// A header magic was found, but no candidate had a valid checksum.
    BadChecksum {
        /// File offset of the first magic found.
        offset: usize,
        /// Its flags.
        flags: u32,
        /// Its checksum.
        checksum: u32,
    },
    /// The header requires features (flag bits 0-15) this loader does not provide.
    UnsupportedFlags {
        /// All header flags.
        flags: u32,
        /// The required bits not supported.
        unsupported: u32,
    },
    /// The a.out kludge address fields do not fit in the file.
    KludgeHeaderTruncated {
        /// File offset of the header.
        offset: usize,
        /// Image length.
        len: usize,
    },
    /// `header_addr < load_addr`.
    LoadAddrAboveHeader {
        /// `header_addr`.
        header_addr: u32,
        /// `load_addr`.
        load_addr: u32,
    },
    /// `header_addr - load_addr` is larger than the header's file offset: the load would start
    /// before the file does.
    LoadStartsBeforeFile {
        /// `header_addr`.
        header_addr: u32,
        /// `load_addr`.
        load_addr: u32,
        /// File offset of the header.
        offset: usize,
    },
    /// `load_end_addr` is nonzero and below `load_addr`.
    LoadEndBelowLoad {
        /// `load_addr`.
        load_addr: u32,
        /// `load_end_addr`.
        load_end_addr: u32,
    },
    /// The bytes `[load_addr, load_end_addr)` need more of the file than there is.
    KludgeImageTruncated {
        /// File offset the load starts at.
        file_offset: u64,
        /// Bytes to load.
        load_size: u64,
        /// Image length.
        len: usize,
    },
    /// `bss_end_addr` is nonzero and below the end of the loaded bytes.
    BssEndBelowLoadEnd {
        /// `bss_end_addr`.
        bss_end_addr: u32,
        /// End of the loaded file bytes.
        load_end: u64,
    },
    /// Without the a.out kludge the image must be an ELF32 executable; it is not.
    Elf(ElfError),
    /// The ELF has no `PT_LOAD` segment with memory.
    NoLoadableSegments,
    /// Part of the image lies beyond guest RAM (or beyond 4 GiB).
    BeyondRam {
        /// Which part.
        part: Part,
        /// First guest-physical byte.
        start: u64,
        /// End (exclusive).
        end: u64,
        /// Where usable guest RAM ends.
        limit: u64,
    },
    /// Part of the image overlaps an area Castor needs or reports as reserved.
    Overlaps {
        /// Which part.
        part: Part,
        /// First guest-physical byte.
        start: u64,
        /// End (exclusive).
        end: u64,
        /// The area's start.
        area_start: u64,
        /// The area's end (exclusive).
        area_end: u64,
        /// What the area is.
        area: &'static str,
    },
    /// The entry point is not in bytes loaded from the file.
    EntryOutsideImage {
        /// The entry point as the header or ELF gives it.
        entry: u32,
    },
    /// Guest RAM is too small to hold the low-memory layout and memory above 1 MiB.
    RamTooSmall {
        /// Guest RAM bytes.
        ram: u64,
    },
    /// The command line does not fit its area.
    CmdlineTooLong {
        /// Its length.
        len: usize,
    },
    /// The command line contains a NUL byte, which would cut it short.
    CmdlineContainsNul,
    /// The boot modules, their table and strings do not fit between the image and the end of
    /// guest RAM (or 4 GiB).
    ModulesBeyondRam {
        /// How many modules.
        count: usize,
        /// Where they would end.
        end: u64,
        /// Where usable guest RAM ends.
        limit: u64,
    },
    /// A module's string contains a NUL byte, which would cut it short.
    ModuleArgsContainNul {
        /// Which module (0: the first after the kernel).
        index: usize,
    },
    /// The guest memory refused a write inside the range it reported as RAM (a bug in the
    /// [`GuestPhys`](crate::vmm::loader::GuestPhys) implementation, not in the image).
    GuestWriteFailed {
        /// Guest-physical address.
        gpa: u64,
        /// Bytes.
        len: u64,
    },
}

impl From<WriteFailed> for LoadError {
    fn from(WriteFailed { gpa, len }: WriteFailed) -> Self {
        Self::GuestWriteFailed { gpa, len }
    }
}

impl From<ElfError> for LoadError {
    fn from(e: ElfError) -> Self {
        Self::Elf(e)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoHeader { len } => write!(
                f,
                "not a Multiboot 1 kernel: no header magic {HEADER_MAGIC:#010x} at a 4-byte \
                 aligned offset in the first {} bytes of the {len}-byte image",
                SEARCH_LIMIT.min(len)
            ),
            Self::BadChecksum {
                offset,
                flags,
                checksum,
            } => write!(
                f,
                "Multiboot header at file offset {offset:#x} has a bad checksum {checksum:#010x} \
                 (flags {flags:#010x}; magic + flags + checksum must be 0 mod 2^32, so the \
                 checksum should be {:#010x})",
                0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags)
            ),
            Self::UnsupportedFlags { flags, unsupported } => write!(
                f,
                "Multiboot header flags {flags:#010x} require features Castor does not \
                 provide (bits {unsupported:#06x}; supported requirements are bits 0, 1 and 2)"
            ),
            Self::KludgeHeaderTruncated { offset, len } => write!(
                f,
                "Multiboot header at file offset {offset:#x} sets flag 16 (a.out kludge) but \
                 the {len}-byte file ends before its address fields"
            ),
            Self::LoadAddrAboveHeader {
                header_addr,
                load_addr,
            } => write!(
                f,
                "Multiboot a.out kludge: load_addr {load_addr:#x} is above header_addr \
                 {header_addr:#x}"
            ),
            Self::LoadStartsBeforeFile {
                header_addr,
                load_addr,
                offset,
            } => write!(
                f,
                "Multiboot a.out kludge: header_addr {header_addr:#x} - load_addr \
                 {load_addr:#x} is more than the header's file offset {offset:#x}, so the load \
                 would start before the file"
            ),
            Self::LoadEndBelowLoad {
                load_addr,
                load_end_addr,
            } => write!(
                f,
                "Multiboot a.out kludge: load_end_addr {load_end_addr:#x} is below load_addr \
                 {load_addr:#x}"
            ),
            Self::KludgeImageTruncated {
                file_offset,
                load_size,
                len,
            } => write!(
                f,
                "Multiboot a.out kludge: loading {load_size:#x} bytes from file offset \
                 {file_offset:#x} needs more than the {len}-byte file (truncated image or wrong \
                 load_end_addr)"
            ),
            Self::BssEndBelowLoadEnd {
                bss_end_addr,
                load_end,
            } => write!(
                f,
                "Multiboot a.out kludge: bss_end_addr {bss_end_addr:#x} is below the end of \
                 the loaded bytes {load_end:#x}"
            ),
            Self::Elf(e) => write!(f, "Multiboot kernel without a.out kludge: {e}"),
            Self::NoLoadableSegments => {
                write!(f, "ELF kernel has no loadable (PT_LOAD) segment")
            }
            Self::BeyondRam {
                part,
                start,
                end,
                limit,
            } => write!(
                f,
                "{part} at [{start:#x}, {end:#x}) extends beyond guest RAM, which ends at \
                 {limit:#x} for this guest"
            ),
            Self::Overlaps {
                part,
                start,
                end,
                area_start,
                area_end,
                area,
            } => write!(
                f,
                "{part} at [{start:#x}, {end:#x}) overlaps {area} at [{area_start:#x}, \
                 {area_end:#x})"
            ),
            Self::EntryOutsideImage { entry } => write!(
                f,
                "entry point {entry:#x} is not inside the bytes loaded from the image"
            ),
            Self::RamTooSmall { ram } => write!(
                f,
                "guest RAM of {ram:#x} bytes is too small for a Multiboot kernel (it needs \
                 memory above 1 MiB)"
            ),
            Self::CmdlineTooLong { len } => write!(
                f,
                "guest command line of {len} bytes is longer than the {CMDLINE_MAX} bytes \
                 Castor passes"
            ),
            Self::CmdlineContainsNul => {
                write!(f, "guest command line contains a NUL byte")
            }
            Self::ModulesBeyondRam { count, end, limit } => write!(
                f,
                "{count} boot module(s) with their table and strings would end at {end:#x}, \
                 beyond guest RAM, which ends at {limit:#x} for this guest (give the guest \
                 more RAM)"
            ),
            Self::ModuleArgsContainNul { index } => {
                write!(f, "boot module {index}'s string contains a NUL byte")
            }
            Self::GuestWriteFailed { gpa, len } => write!(
                f,
                "guest memory refused a write of {len:#x} bytes at {gpa:#x} inside its RAM"
            ),
        }
    }
}
