// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the demo takes from its Multiboot 1 loader (Multiboot Specification 0.6.96, section
//! 3.3): the end of RAM and the command line.

use core::fmt;

/// EAX on entry from a Multiboot 1 loader.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// Boot information flag: `mem_lower` and `mem_upper` are valid.
const INFO_MEMORY: u32 = 1 << 0;
/// Boot information flag: `cmdline` is valid.
const INFO_CMDLINE: u32 = 1 << 2;
/// Longest command line the demo reads.
const CMDLINE_MAX: usize = 4096;
/// Where upper memory (`mem_upper`) starts.
const UPPER_MEMORY: u64 = 0x10_0000;

/// The boot information the demo uses, borrowing the loader's memory for `'a`.
pub struct BootInfo<'a> {
    /// The first byte after the RAM that starts at 1 MiB.
    pub ram_end: u64,
    /// The command line (empty if the loader gave none).
    pub cmdline: &'a str,
}

/// Why the boot information cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootError {
    /// EAX did not hold [`BOOTLOADER_MAGIC`].
    BadMagic(u32),
    /// Flag 0 clear: no `mem_upper`.
    NoMemoryInformation,
    /// No NUL within [`CMDLINE_MAX`] bytes.
    CmdlineTooLong,
    /// The command line is not UTF-8.
    CmdlineNotUtf8,
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::BadMagic(eax) => write!(
                f,
                "not started by a Multiboot loader (EAX={eax:#x}, expected {BOOTLOADER_MAGIC:#x})"
            ),
            BootError::NoMemoryInformation => f.write_str("the loader gave no memory information"),
            BootError::CmdlineTooLong => {
                write!(f, "the command line is longer than {CMDLINE_MAX} bytes")
            }
            BootError::CmdlineNotUtf8 => f.write_str("the command line is not UTF-8"),
        }
    }
}

/// Reads the boot information at `info` after a Multiboot entry with EAX = `magic`.
///
/// # Safety
/// With the right magic, `info` must be the loader's boot information structure, identity
/// mapped, with any command line it names NUL-terminated and mapped; and the memory they occupy
/// must not change during `'a`.
pub unsafe fn read<'a>(magic: u32, info: u32) -> Result<BootInfo<'a>, BootError> {
    if magic != BOOTLOADER_MAGIC {
        return Err(BootError::BadMagic(magic));
    }
    let word = |offset: u64| {
        // SAFETY: the caller vouches for the structure; these offsets lie in its first 20 bytes.
        unsafe { ((u64::from(info) + offset) as *const u32).read_unaligned() }
    };
    let flags = word(0);
    if flags & INFO_MEMORY == 0 {
        return Err(BootError::NoMemoryInformation);
    }
    let ram_end = UPPER_MEMORY + u64::from(word(8)) * 1024;
    let address = match flags & INFO_CMDLINE {
        0 => 0,
        _ => word(16),
    };
    let cmdline = match address {
        0 => "",
        address => {
            // SAFETY: the caller vouches for the NUL-terminated string; the scan stops at it or
            // after CMDLINE_MAX bytes.
            let bytes = unsafe { bounded_c_string(address as usize) }?;
            core::str::from_utf8(bytes).map_err(|_| BootError::CmdlineNotUtf8)?
        }
    };
    Ok(BootInfo { ram_end, cmdline })
}

/// The bytes before the NUL at `address`, if there is one within [`CMDLINE_MAX`] bytes.
///
/// # Safety
/// `address..` must be mapped up to the NUL or [`CMDLINE_MAX`] bytes, whichever comes first,
/// and stay unchanged during `'a`.
unsafe fn bounded_c_string<'a>(address: usize) -> Result<&'a [u8], BootError> {
    let ptr = address as *const u8;
    for len in 0..CMDLINE_MAX {
        // SAFETY: within the bytes the caller vouches for (the NUL has not come yet).
        if unsafe { ptr.add(len).read() } == 0 {
            // SAFETY: the `len` bytes just read, which the caller keeps unchanged.
            return Ok(unsafe { core::slice::from_raw_parts(ptr, len) });
        }
    }
    Err(BootError::CmdlineTooLong)
}
