// SPDX-License-Identifier: MIT OR Apache-2.0
//! A minimal, bounds-checked reader for 32-bit little-endian x86 ELF executables: just what a
//! Multiboot loader needs (the entry point and the `PT_LOAD` program headers).
//!
//! Reference: System V ABI, "ELF header" and "Program header" (the 32-bit structures), and the
//! Intel386 processor supplement (`EM_386`). Every field read is bounds checked against the file;
//! nothing here panics on any input.

use core::fmt;

/// ELF header size (`Elf32_Ehdr`).
pub const EHDR_SIZE: usize = 52;
/// Program header size (`Elf32_Phdr`).
pub const PHDR_SIZE: usize = 32;
/// `e_ident[EI_CLASS]` of a 32-bit file.
const ELFCLASS32: u8 = 1;
/// `e_ident[EI_CLASS]` of a 64-bit file.
const ELFCLASS64: u8 = 2;
/// `e_ident[EI_DATA]` of a little-endian file.
const ELFDATA2LSB: u8 = 1;
/// `e_type` of an executable.
const ET_EXEC: u16 = 2;
/// `e_machine` of Intel 80386.
const EM_386: u16 = 3;
/// `e_machine` of x86-64.
const EM_X86_64: u16 = 62;
/// `p_type` of a loadable segment.
pub const PT_LOAD: u32 = 1;
/// `e_phnum` escape meaning "the real count is in section header 0" (not supported).
const PN_XNUM: u16 = 0xFFFF;

/// Why an image is not an ELF file this loader can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfError {
    /// The file does not start with `\x7fELF`.
    NotElf,
    /// The file is shorter than an ELF header.
    HeaderTruncated {
        /// File length.
        len: usize,
    },
    /// A 64-bit ELF file (`ELFCLASS64`).
    Class64 {
        /// `e_machine`.
        machine: u16,
    },
    /// `e_ident[EI_CLASS]` is neither 32- nor 64-bit.
    BadClass(u8),
    /// Not little-endian (`e_ident[EI_DATA]`).
    NotLittleEndian(u8),
    /// `e_machine` is not `EM_386`.
    NotI386 {
        /// `e_machine`.
        machine: u16,
    },
    /// `e_type` is not `ET_EXEC` (relocatable, shared object, core, ...).
    NotExecutable {
        /// `e_type`.
        e_type: u16,
    },
    /// `e_phentsize` is smaller than a 32-bit program header.
    BadPhentsize(u16),
    /// `e_phnum` is `PN_XNUM` (extended numbering), which this loader does not read.
    ExtendedPhnum,
    /// The program header table lies (partly) outside the file.
    PhdrsTruncated {
        /// `e_phoff`.
        phoff: u32,
        /// Bytes the table needs (`e_phnum * e_phentsize`).
        size: u64,
        /// File length.
        len: usize,
    },
    /// A `PT_LOAD` segment's file bytes lie (partly) outside the file.
    SegmentTruncated {
        /// Program header index.
        index: usize,
        /// `p_offset`.
        offset: u32,
        /// `p_filesz`.
        filesz: u32,
        /// File length.
        len: usize,
    },
    /// A `PT_LOAD` segment has `p_filesz > p_memsz`.
    FileszAboveMemsz {
        /// Program header index.
        index: usize,
        /// `p_filesz`.
        filesz: u32,
        /// `p_memsz`.
        memsz: u32,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotElf => write!(f, "not an ELF file (no \\x7fELF signature)"),
            Self::HeaderTruncated { len } => write!(
                f,
                "ELF file truncated: {len} bytes, shorter than the {EHDR_SIZE}-byte ELF header"
            ),
            Self::Class64 { machine } => write!(
                f,
                "64-bit ELF ({}) without the Multiboot a.out kludge: Multiboot 1 loads only \
                 32-bit ELF; give a 32-bit ELF or set header flag bit 16 with load addresses",
                if machine == EM_X86_64 {
                    "x86-64"
                } else {
                    "ELFCLASS64"
                }
            ),
            Self::BadClass(c) => write!(f, "ELF class {c} is neither 32-bit (1) nor 64-bit (2)"),
            Self::NotLittleEndian(d) => {
                write!(f, "ELF data encoding {d} is not little-endian (1)")
            }
            Self::NotI386 { machine } => {
                write!(f, "ELF machine {machine} is not Intel 80386 (EM_386 = 3)")
            }
            Self::NotExecutable { e_type } => write!(
                f,
                "ELF type {e_type} is not an executable (ET_EXEC = 2); relocatable and \
                 position-independent images cannot be loaded"
            ),
            Self::BadPhentsize(s) => write!(
                f,
                "ELF program header entry size {s} is smaller than {PHDR_SIZE} bytes"
            ),
            Self::ExtendedPhnum => {
                write!(f, "ELF uses extended program header numbering (PN_XNUM)")
            }
            Self::PhdrsTruncated { phoff, size, len } => write!(
                f,
                "ELF program headers [{phoff:#x}, +{size:#x}) lie outside the {len}-byte file"
            ),
            Self::SegmentTruncated {
                index,
                offset,
                filesz,
                len,
            } => write!(
                f,
                "ELF segment {index}: file bytes [{offset:#x}, +{filesz:#x}) lie outside the \
                 {len}-byte file"
            ),
            Self::FileszAboveMemsz {
                index,
                filesz,
                memsz,
            } => write!(
                f,
                "ELF segment {index}: file size {filesz:#x} exceeds memory size {memsz:#x}"
            ),
        }
    }
}

/// One program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index in the program header table.
    pub index: usize,
    /// `p_type`.
    pub p_type: u32,
    /// `p_offset`: where the segment's bytes start in the file.
    pub offset: u32,
    /// `p_vaddr`.
    pub vaddr: u32,
    /// `p_paddr`: where a loader without paging places the segment.
    pub paddr: u32,
    /// `p_filesz`: bytes taken from the file.
    pub filesz: u32,
    /// `p_memsz`: bytes in memory; those past `filesz` are zero.
    pub memsz: u32,
}

/// A parsed ELF32 `EM_386` `ET_EXEC` header with a program header table inside the file.
#[derive(Debug, Clone, Copy)]
pub struct Elf32<'a> {
    data: &'a [u8],
    /// `e_entry` (a virtual address).
    pub entry: u32,
    phoff: usize,
    phentsize: usize,
    phnum: usize,
}

fn u16_at(data: &[u8], off: usize) -> Option<u16> {
    let b = data.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    let b = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// True if `data` starts with the ELF signature.
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

impl<'a> Elf32<'a> {
    /// Checks the ELF header and that the program header table lies inside `data`.
    pub fn parse(data: &'a [u8]) -> Result<Self, ElfError> {
        if !is_elf(data) {
            return Err(ElfError::NotElf);
        }
        let truncated = ElfError::HeaderTruncated { len: data.len() };
        let class = *data.get(4).ok_or(truncated)?;
        let machine = u16_at(data, 18);
        match class {
            ELFCLASS32 => {}
            ELFCLASS64 => {
                return Err(ElfError::Class64 {
                    machine: machine.unwrap_or(0),
                });
            }
            c => return Err(ElfError::BadClass(c)),
        }
        if data.len() < EHDR_SIZE {
            return Err(truncated);
        }
        let field16 = |off| u16_at(data, off).ok_or(truncated);
        let field32 = |off| u32_at(data, off).ok_or(truncated);
        if data[5] != ELFDATA2LSB {
            return Err(ElfError::NotLittleEndian(data[5]));
        }
        let machine = field16(18)?;
        if machine != EM_386 {
            return Err(ElfError::NotI386 { machine });
        }
        let e_type = field16(16)?;
        if e_type != ET_EXEC {
            return Err(ElfError::NotExecutable { e_type });
        }
        let entry = field32(24)?;
        let phoff = field32(28)?;
        let phentsize = field16(42)?;
        let phnum = field16(44)?;
        if phnum == PN_XNUM {
            return Err(ElfError::ExtendedPhnum);
        }
        if phnum != 0 && usize::from(phentsize) < PHDR_SIZE {
            return Err(ElfError::BadPhentsize(phentsize));
        }
        let size = u64::from(phentsize) * u64::from(phnum);
        let end = u64::from(phoff) + size;
        if end > data.len() as u64 {
            return Err(ElfError::PhdrsTruncated {
                phoff,
                size,
                len: data.len(),
            });
        }
        Ok(Self {
            data,
            entry,
            phoff: phoff as usize,
            phentsize: usize::from(phentsize),
            phnum: usize::from(phnum),
        })
    }

    /// Every program header, in table order.
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        (0..self.phnum).filter_map(move |index| {
            // In bounds: parse() checked phoff + phnum * phentsize <= len, phentsize >= 32.
            let base = self.phoff.checked_add(index.checked_mul(self.phentsize)?)?;
            let at = |off: usize| u32_at(self.data, base.checked_add(off)?);
            Some(Segment {
                index,
                p_type: at(0)?,
                offset: at(4)?,
                vaddr: at(8)?,
                paddr: at(12)?,
                filesz: at(16)?,
                memsz: at(20)?,
            })
        })
    }

    /// The `PT_LOAD` segments that occupy memory (`p_memsz > 0`), each checked to have its file
    /// bytes inside the file and `p_filesz <= p_memsz` (a bad one is yielded as its error).
    pub fn load_segments(&self) -> impl Iterator<Item = Result<Segment, ElfError>> + '_ {
        let len = self.data.len();
        self.segments()
            .filter(|s| s.p_type == PT_LOAD && s.memsz != 0)
            .map(move |s| {
                if s.filesz > s.memsz {
                    return Err(ElfError::FileszAboveMemsz {
                        index: s.index,
                        filesz: s.filesz,
                        memsz: s.memsz,
                    });
                }
                if u64::from(s.offset) + u64::from(s.filesz) > len as u64 {
                    return Err(ElfError::SegmentTruncated {
                        index: s.index,
                        offset: s.offset,
                        filesz: s.filesz,
                        len,
                    });
                }
                Ok(s)
            })
    }

    /// The file bytes of a segment returned by [`Self::load_segments`] (empty if out of bounds,
    /// which `load_segments` has already ruled out).
    pub fn file_bytes(&self, s: &Segment) -> &'a [u8] {
        let start = s.offset as usize;
        start
            .checked_add(s.filesz as usize)
            .and_then(|end| self.data.get(start..end))
            .unwrap_or(&[])
    }
}
