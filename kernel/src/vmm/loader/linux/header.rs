// SPDX-License-Identifier: MIT OR Apache-2.0
//! The real-mode kernel header ("setup header") of a bzImage: found, read and checked.
//!
//! Offsets and meanings from THE LINUX/x86 BOOT PROTOCOL (Documentation/arch/x86/boot.rst),
//! "THE REAL-MODE KERNEL HEADER" and "DETAILS OF HEADER FIELDS". The header starts at file
//! offset 0x1F1 and ends at `0x202 + byte at 0x201` ("The end of setup header can be
//! calculated as follows: 0x0202 + byte value at offset 0x0201"); the protected-mode kernel
//! follows the `(setup_sects + 1) * 512` bytes of the real-mode code, `setup_sects` 0 meaning 4.

use super::LoadError;

/// File offset of the setup header (and its offset in `struct boot_params`).
pub const HEADER_START: usize = 0x1F1;
/// File offset of the `header` magic.
pub const MAGIC_OFFSET: usize = 0x202;
/// The `header` magic, "HdrS".
pub const MAGIC: [u8; 4] = *b"HdrS";
/// The oldest boot protocol accepted: 2.10 (Linux 2.6.31) is the first with `pref_address` and
/// `init_size`, which say where the kernel runs and how much memory it needs before it reads
/// its memory map, so a kernel too large for the guest is refused here rather than failing in
/// the guest.
pub const MIN_VERSION: u16 = 0x020A;
/// Where the fields Castor reads end: `init_size` (0x260, 4 bytes, protocol 2.10).
const FIELDS_END: usize = 0x264;
/// `loadflags` bit 0: the protected-mode code is loaded at 0x100000 (a bzImage).
pub const LOADED_HIGH: u8 = 1 << 0;
/// `loadflags` bit 7: the loader set `heap_end_ptr`.
pub const CAN_USE_HEAP: u8 = 1 << 7;
/// Bytes of one setup sector.
const SECTOR: usize = 512;
/// `setup_sects` of 0 means 4 ("for backwards compatibility").
const DEFAULT_SETUP_SECTS: usize = 4;

/// The header fields the loader uses, from a checked bzImage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupHeader {
    /// `version` (0x206): boot protocol, major in the high byte (0x020F is 2.15).
    pub version: u16,
    /// Where the setup header ends in the file (exclusive).
    pub end: usize,
    /// Bytes of real-mode code before the protected-mode kernel: `(setup_sects + 1) * 512`.
    pub setup_len: usize,
    /// `loadflags` (0x211).
    pub loadflags: u8,
    /// `initrd_addr_max` (0x22C): the highest address the initrd may occupy.
    pub initrd_addr_max: u32,
    /// `kernel_alignment` (0x230): alignment a relocatable kernel runs at.
    pub kernel_alignment: u32,
    /// `relocatable_kernel` (0x234) is nonzero.
    pub relocatable: bool,
    /// `cmdline_size` (0x238): the longest command line, without its NUL.
    pub cmdline_size: u32,
    /// `pref_address` (0x258): where a relocatable kernel prefers to be loaded, and where a
    /// non-relocatable one runs.
    pub pref_address: u64,
    /// `init_size` (0x260): linear memory the kernel needs from where it runs, before it has
    /// read its memory map.
    pub init_size: u32,
}

fn u16_at(image: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([image[off], image[off + 1]])
}

fn u32_at(image: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([image[off], image[off + 1], image[off + 2], image[off + 3]])
}

/// True if `image` has the "HdrS" magic at 0x202, so it claims to follow the Linux boot
/// protocol (2.00 or later) — how `qemu -kernel` tells a Linux kernel from others.
pub fn has_magic(image: &[u8]) -> bool {
    image.get(MAGIC_OFFSET..MAGIC_OFFSET + MAGIC.len()) == Some(&MAGIC[..])
}

impl SetupHeader {
    /// Reads and checks the setup header of `image`: magic, protocol version, header and file
    /// long enough, a bzImage (`LOADED_HIGH`), the protected-mode kernel as long as `syssize`
    /// says, a power-of-two `kernel_alignment` for a relocatable kernel.
    pub fn parse(image: &[u8]) -> Result<Self, LoadError> {
        let truncated = |what, needed: u64| LoadError::Truncated {
            what,
            needed,
            len: image.len(),
        };
        if image.len() < MAGIC_OFFSET + MAGIC.len() + 2 {
            return Err(truncated(
                "the setup header",
                (MAGIC_OFFSET + MAGIC.len() + 2) as u64,
            ));
        }
        if !has_magic(image) {
            return Err(LoadError::NoMagic);
        }
        let version = u16_at(image, 0x206);
        if version < MIN_VERSION {
            return Err(LoadError::OldProtocol { version });
        }
        let end = MAGIC_OFFSET + usize::from(image[0x201]);
        if end < FIELDS_END {
            return Err(LoadError::HeaderTooShort { end });
        }
        if image.len() < end {
            return Err(truncated("the setup header", end as u64));
        }
        let loadflags = image[0x211];
        if loadflags & LOADED_HIGH == 0 {
            return Err(LoadError::NotLoadedHigh { loadflags });
        }
        let setup_sects = match usize::from(image[0x1F1]) {
            0 => DEFAULT_SETUP_SECTS,
            n => n,
        };
        let setup_len = (setup_sects + 1) * SECTOR;
        // syssize (protocol 2.04+): the protected-mode code in 16-byte paragraphs.
        let pm_len = u64::from(u32_at(image, 0x1F4)) * 16;
        let needed = setup_len as u64 + pm_len.max(1);
        if (image.len() as u64) < needed {
            return Err(truncated("the protected-mode kernel", needed));
        }
        let kernel_alignment = u32_at(image, 0x230);
        let relocatable = image[0x234] != 0;
        if relocatable && !kernel_alignment.is_power_of_two() {
            return Err(LoadError::BadAlignment { kernel_alignment });
        }
        Ok(Self {
            version,
            end,
            setup_len,
            loadflags,
            initrd_addr_max: u32_at(image, 0x22C),
            kernel_alignment,
            relocatable,
            cmdline_size: u32_at(image, 0x238),
            pref_address: u64::from_le_bytes(image[0x258..0x260].try_into().unwrap_or([0; 8])),
            init_size: u32_at(image, 0x260),
        })
    }

    /// The protected-mode kernel: everything after the real-mode code.
    pub fn protected_mode<'a>(&self, image: &'a [u8]) -> &'a [u8] {
        image.get(self.setup_len..).unwrap_or(&[])
    }
}
