// SPDX-License-Identifier: MIT OR Apache-2.0
//! Why a Linux kernel was refused: every check of the loader has its own [`LoadError`], with
//! the numbers involved.

use core::fmt;

use super::super::WriteFailed;
use super::header::{LOADED_HIGH, MIN_VERSION};

/// Why a Linux bzImage could not be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    /// The file ends before something the header says is there.
    Truncated {
        /// What is cut short.
        what: &'static str,
        /// Bytes the file needs.
        needed: u64,
        /// Its length.
        len: usize,
    },
    /// No "HdrS" at offset 0x202.
    NoMagic,
    /// The boot protocol is older than [`MIN_VERSION`].
    OldProtocol {
        /// The header's `version`.
        version: u16,
    },
    /// The setup header ends before the fields of protocol 2.10.
    HeaderTooShort {
        /// Where it ends (`0x202 + byte at 0x201`).
        end: usize,
    },
    /// `loadflags` has no `LOADED_HIGH`: a zImage, loaded at 0x10000, which Castor does not
    /// boot.
    NotLoadedHigh {
        /// The header's `loadflags`.
        loadflags: u8,
    },
    /// A relocatable kernel whose `kernel_alignment` is not a power of two.
    BadAlignment {
        /// The header's `kernel_alignment`.
        kernel_alignment: u32,
    },
    /// Guest RAM is too small for a kernel above 1 MiB.
    RamTooSmall {
        /// Guest RAM bytes.
        ram: u64,
    },
    /// The kernel's bytes or the memory it needs to start (`init_size`) do not lie in guest
    /// RAM between 1 MiB and the end of RAM (or 4 GiB).
    KernelOutsideRam {
        /// Which range.
        what: &'static str,
        /// Its first byte.
        start: u64,
        /// Its end (exclusive; `u64::MAX` if it overflows).
        end: u64,
        /// Where usable guest RAM ends for the kernel.
        limit: u64,
    },
    /// The command line is longer than the kernel's `cmdline_size` (or Castor's area).
    CmdlineTooLong {
        /// Its length.
        len: usize,
        /// The longest accepted.
        max: usize,
    },
    /// The command line contains a NUL byte, which would cut it short.
    CmdlineContainsNul,
    /// The initrd does not fit between the end of the kernel and the highest address it may
    /// occupy (`initrd_addr_max` or the end of RAM).
    InitrdTooBig {
        /// Its bytes.
        size: u64,
        /// The lowest address it may start at (the end of the kernel's memory).
        lowest: u64,
        /// Where it must end by.
        highest: u64,
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

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { what, needed, len } => write!(
                f,
                "Linux kernel image truncated: {what} needs {needed:#x} bytes of the file, \
                 which has {len:#x}"
            ),
            Self::NoMagic => write!(f, "not a Linux kernel: no \"HdrS\" at offset 0x202"),
            Self::OldProtocol { version } => write!(
                f,
                "Linux boot protocol {}.{:02} is too old: Castor needs {}.{:02} or later \
                 (Linux 2.6.31+), whose header gives pref_address and init_size",
                version >> 8,
                version & 0xFF,
                MIN_VERSION >> 8,
                MIN_VERSION & 0xFF
            ),
            Self::HeaderTooShort { end } => write!(
                f,
                "Linux setup header ends at {end:#x}, before the protocol 2.10 fields that \
                 end at 0x264"
            ),
            Self::NotLoadedHigh { loadflags } => write!(
                f,
                "Linux kernel is not a bzImage: loadflags {loadflags:#04x} lacks LOADED_HIGH \
                 ({LOADED_HIGH:#x}); zImages are not supported"
            ),
            Self::BadAlignment { kernel_alignment } => write!(
                f,
                "relocatable Linux kernel with kernel_alignment {kernel_alignment:#x}, not a \
                 power of two"
            ),
            Self::RamTooSmall { ram } => write!(
                f,
                "guest RAM of {ram:#x} bytes is too small for a Linux kernel (it needs memory \
                 above 1 MiB)"
            ),
            Self::KernelOutsideRam {
                what,
                start,
                end,
                limit,
            } => write!(
                f,
                "{what} needs guest RAM [{start:#x}, {end:#x}), but it must lie between 1 MiB \
                 and {limit:#x} in this guest (give the guest more RAM)"
            ),
            Self::CmdlineTooLong { len, max } => write!(
                f,
                "guest command line of {len} bytes is longer than the {max} bytes the kernel \
                 accepts (cmdline_size)"
            ),
            Self::CmdlineContainsNul => write!(f, "guest command line contains a NUL byte"),
            Self::InitrdTooBig {
                size,
                lowest,
                highest,
            } => write!(
                f,
                "initrd of {size:#x} bytes does not fit between the end of the kernel at \
                 {lowest:#x} and {highest:#x} (initrd_addr_max or the end of guest RAM)"
            ),
            Self::GuestWriteFailed { gpa, len } => write!(
                f,
                "guest memory refused a write of {len:#x} bytes at {gpa:#x} inside its RAM"
            ),
        }
    }
}
