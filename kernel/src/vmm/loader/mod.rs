// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest kernel loaders: place an unmodified guest kernel image in guest-physical memory and
//! say how to enter it.
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

pub use multiboot::{LoadError, MultibootEntry, load};

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
