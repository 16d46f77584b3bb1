// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest kernel loaders: place an unmodified guest kernel image in guest-physical memory and
//! say how to enter it.
//!
//! [`load`] picks the loader by the image's format, as `qemu -kernel` does: "HdrS" at offset
//! 0x202 makes it a Linux kernel, otherwise it must carry a Multiboot 1 header; anything else is
//! refused with the reason.
//!
//! Everything here is pure (no hardware): it works on any [`GuestPhys`], so it is unit tested on
//! the host against a `Vec`-backed memory. In the kernel, [`GuestPhys`] is implemented for
//! [`GuestMemory`](crate::vmm::guest_mem::GuestMemory).
//!
//! - [`multiboot`]: Multiboot 1 kernels, as `qemu -kernel` and GRUB's `multiboot` command boot
//!   them (a.out-kludge flat images and 32-bit ELF executables).
//! - [`elf32`]: the small ELF32 reader the Multiboot loader uses.
//! - [`linux`]: Linux bzImages, by the 32-bit Linux/x86 boot protocol (as `qemu -kernel` boots
//!   them), with an initrd.

pub mod elf32;
pub mod linux;
pub mod multiboot;
#[cfg(test)]
mod test_ram;
#[cfg(test)]
mod tests;

use core::fmt;

use alloc::vec::Vec;

use crate::vmm::vcpu::GuestStart;

#[cfg(target_os = "none")]
use crate::vmm::guest_mem::GuestMemory;

/// A file handed to the guest besides its kernel: a Multiboot boot module, or a part of a
/// Linux initrd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestModule<'a> {
    /// Its bytes.
    pub data: &'a [u8],
    /// Its string (a Multiboot module's command line; unused for an initrd).
    pub args: &'a str,
}

/// Guest-physical memory as a loader sees it: a flat run of RAM from guest-physical 0.
pub trait GuestPhys {
    /// Bytes of guest RAM, starting at guest-physical 0.
    fn size(&self) -> u64;
    /// Copies `data` to `[gpa, gpa + data.len())`; false (and nothing written) if that range is
    /// not all guest RAM.
    fn write(&mut self, gpa: u64, data: &[u8]) -> bool;
    /// Sets `[gpa, gpa + len)` to `byte`; false (and nothing written) if that range is not all
    /// guest RAM.
    fn fill(&mut self, gpa: u64, len: u64, byte: u8) -> bool;
}

/// The kind of guest kernel an image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Multiboot 1 kernel.
    Multiboot,
    /// A Linux bzImage, with its boot protocol version (0x020F is 2.15).
    Linux {
        /// The header's `version`.
        version: u16,
    },
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Multiboot => write!(f, "Multiboot"),
            Self::Linux { version } => {
                write!(
                    f,
                    "Linux boot protocol {}.{:02}",
                    version >> 8,
                    version & 0xFF
                )
            }
        }
    }
}

/// How to enter a loaded guest kernel: its start state and the registers its boot protocol
/// passes (all other general registers zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Mode and entry point.
    pub start: GuestStart,
    /// EAX (the Multiboot boot loader magic).
    pub eax: u32,
    /// EBX (the Multiboot information).
    pub ebx: u32,
    /// ESI (Linux's zero page).
    pub esi: u32,
    /// What kind of kernel it is.
    pub format: Format,
    /// A Multiboot kernel asked for a video mode, which Castor does not provide.
    pub video_mode_ignored: bool,
}

/// Why a guest kernel could not be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    /// Neither a Linux bzImage nor a Multiboot kernel.
    Unrecognised {
        /// Image length.
        len: usize,
    },
    /// A Multiboot kernel the Multiboot loader refused.
    Multiboot(multiboot::LoadError),
    /// A Linux kernel the Linux loader refused.
    Linux(linux::LoadError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unrecognised { len } => write!(
                f,
                "not a kernel Castor can boot: the {len}-byte image is neither a Linux bzImage \
                 (no \"HdrS\" at offset 0x202) nor a Multiboot 1 kernel (no header magic \
                 {:#010x} at a 4-byte aligned offset in its first {} bytes)",
                multiboot::HEADER_MAGIC,
                multiboot::SEARCH_LIMIT.min(*len)
            ),
            Self::Multiboot(e) => e.fmt(f),
            Self::Linux(e) => e.fmt(f),
        }
    }
}

/// Loads the guest kernel `image` into `mem` by its format, with command line `cmdline` and
/// `modules`: a Linux kernel gets them concatenated as its initrd (their strings unused), a
/// Multiboot kernel as its boot modules. Nothing is written to `mem` if it is refused.
pub fn load(
    image: &[u8],
    cmdline: &str,
    modules: &[GuestModule<'_>],
    mem: &mut impl GuestPhys,
) -> Result<Entry, LoadError> {
    if linux::header::has_magic(image) {
        let initrd: Vec<&[u8]> = modules.iter().map(|m| m.data).collect();
        let e = linux::load(image, cmdline, &initrd, mem).map_err(LoadError::Linux)?;
        return Ok(Entry {
            start: GuestStart::Protected32 { eip: e.eip },
            eax: 0,
            ebx: 0,
            esi: e.esi,
            format: Format::Linux { version: e.version },
            video_mode_ignored: false,
        });
    }
    match multiboot::load(image, cmdline, modules, mem) {
        Ok(e) => Ok(Entry {
            start: GuestStart::Protected32 { eip: e.eip },
            eax: e.eax,
            ebx: e.ebx,
            esi: 0,
            format: Format::Multiboot,
            video_mode_ignored: e.video_mode_ignored,
        }),
        Err(multiboot::LoadError::NoHeader { len }) => Err(LoadError::Unrecognised { len }),
        Err(e) => Err(LoadError::Multiboot(e)),
    }
}

/// A write that guest memory refused although the range is inside its RAM (a bug in the
/// [`GuestPhys`] implementation, not in the image; every loader checks its ranges first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteFailed {
    /// Guest-physical address.
    pub gpa: u64,
    /// Bytes.
    pub len: u64,
}

/// Copies `data` to `gpa` (nothing to do for no data).
pub fn write(mem: &mut impl GuestPhys, gpa: u64, data: &[u8]) -> Result<(), WriteFailed> {
    match data.is_empty() || mem.write(gpa, data) {
        true => Ok(()),
        false => Err(WriteFailed {
            gpa,
            len: data.len() as u64,
        }),
    }
}

/// Zeroes `len` bytes at `gpa` (nothing to do for none).
pub fn zero(mem: &mut impl GuestPhys, gpa: u64, len: u64) -> Result<(), WriteFailed> {
    match len == 0 || mem.fill(gpa, len, 0) {
        true => Ok(()),
        false => Err(WriteFailed { gpa, len }),
    }
}

#[cfg(target_os = "none")]
impl<F: crate::mm::pagetable::Format> GuestPhys for GuestMemory<F> {
    fn size(&self) -> u64 {
        GuestMemory::size(self)
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
        GuestMemory::write(self, gpa, data)
    }

    fn fill(&mut self, gpa: u64, len: u64, byte: u8) -> bool {
        let Ok(len) = usize::try_from(len) else {
            return false;
        };
        match self.slice_mut(gpa, len) {
            Some(s) => {
                s.fill(byte);
                true
            }
            None => false,
        }
    }
}
