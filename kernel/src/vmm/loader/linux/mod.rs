// SPDX-License-Identifier: MIT OR Apache-2.0
//! Linux guest kernels (bzImage), loaded and entered by the 32-bit boot protocol.
//!
//! Rules from THE LINUX/x86 BOOT PROTOCOL (Documentation/arch/x86/boot.rst: "LOADING THE
//! REST OF THE KERNEL", "32-bit BOOT PROTOCOL", "DETAILS OF HEADER FIELDS") and
//! Documentation/arch/x86/zero-page.rst; the result matches what `qemu -kernel bzImage -initrd
//! FILE -append ARGS` hands a kernel, without the real-mode setup code (which needs a BIOS):
//!
//! - The image is recognised by "HdrS" at 0x202 ([`header::has_magic`]) and must follow boot
//!   protocol 2.10 or later ([`header::MIN_VERSION`]) and be a bzImage (`LOADED_HIGH`).
//! - The protected-mode kernel (the file after its `(setup_sects + 1) * 512` bytes of real-mode
//!   code) is loaded where the kernel will run: for a relocatable kernel at `pref_address`
//!   rounded up to `kernel_alignment` (at least 1 MiB), otherwise at 1 MiB (it then runs at
//!   `pref_address`). The `init_size` bytes it needs from where it runs, and the loaded bytes,
//!   must be guest RAM between 1 MiB and 4 GiB (the 32-bit entry has no paging): a kernel too
//!   large for the guest is refused.
//! - The zero page ([`zero_page`]) goes to [`ZERO_PAGE_ADDR`], the command line (at most
//!   `cmdline_size` bytes, NUL-terminated) to [`CMDLINE_ADDR`], both in low memory below the
//!   EBDA; the initrd is page aligned, as high as fits below `initrd_addr_max` and the end of
//!   RAM, and above the kernel. Several initrd files are concatenated, each but the last padded
//!   with zeros to 4 bytes, as GRUB's `initrd a b` does (Linux unpacks concatenated cpio
//!   archives and skips the zeros between them).
//! - Entry (32-bit protocol): protected mode, paging off, flat 4 GiB `__BOOT_CS` (0x10) and
//!   `__BOOT_DS` (0x18) segments, interrupts off, EIP = the protected-mode kernel, ESI = the
//!   zero page, EBX = EBP = EDI = 0 ([`LinuxEntry`]).
//!
//! Every check happens before anything is written.

mod error;
pub mod header;
#[cfg(test)]
pub(crate) mod tests;
pub mod zero_page;

pub use error::LoadError;
use header::SetupHeader;
use zero_page::Placed;

use super::GuestPhys;
use super::multiboot::{HIGH_MEMORY, RESERVED_LOW_START};

/// Guest-physical address of the zero page (passed in ESI).
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// Guest-physical address of the command line.
pub const CMDLINE_ADDR: u64 = 0x2_0000;
/// The command line area ends below the EBDA.
pub const CMDLINE_AREA_END: u64 = RESERVED_LOW_START;
/// The longest command line Castor can place, without its NUL (the kernel's `cmdline_size`
/// is usually smaller: 2047 bytes).
pub const CMDLINE_AREA_MAX: usize = (CMDLINE_AREA_END - CMDLINE_ADDR - 1) as usize;
/// A 32-bit guest entered without paging reaches only the first 4 GiB.
const LIMIT_4G: u64 = 1 << 32;
/// The initrd starts on a page boundary.
const PAGE: u64 = 4096;
/// Each initrd file but the last is padded to this alignment (cpio's).
const INITRD_PART_ALIGN: u64 = 4;

const _: () = assert!(ZERO_PAGE_ADDR + zero_page::SIZE as u64 <= CMDLINE_ADDR);

/// How to enter a loaded Linux kernel by the 32-bit boot protocol.
///
/// Machine state the caller must set up (boot.rst, "32-bit BOOT PROTOCOL"): protected mode
/// with paging off; CS = `__BOOT_CS` (0x10), a flat 4 GiB execute/read segment; DS, ES, SS =
/// `__BOOT_DS` (0x18), flat 4 GiB read/write; interrupts disabled; EIP = `eip`, ESI = `esi`,
/// EBP = EDI = EBX = 0. `GuestStart::Protected32` is exactly that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxEntry {
    /// Entry point: the protected-mode kernel's load address (`code32_start`).
    pub eip: u32,
    /// The zero page ([`ZERO_PAGE_ADDR`]).
    pub esi: u32,
    /// The kernel's boot protocol version (0x020F is 2.15).
    pub version: u16,
    /// Where the kernel's memory (loaded bytes and `init_size`) ends.
    pub kernel_end: u64,
    /// Where the initrd was placed and its bytes (0, 0 without one).
    pub initrd: (u64, u64),
}

/// Where everything goes: worked out and checked before anything is written.
struct Layout {
    /// Where the protected-mode kernel is loaded.
    load: u64,
    /// End of the kernel's memory: loaded bytes and `init_size` from where it runs.
    kernel_end: u64,
    /// Start of the initrd (0 without one).
    initrd: u64,
    /// Its bytes.
    initrd_size: u64,
}

/// Bytes of the concatenated initrd files, each but the last padded to 4 bytes.
fn initrd_size(parts: &[&[u8]]) -> u64 {
    let padded: u64 = parts
        .iter()
        .map(|p| (p.len() as u64).next_multiple_of(INITRD_PART_ALIGN))
        .sum();
    let last_pad = parts.last().map_or(0, |p| {
        (p.len() as u64).next_multiple_of(INITRD_PART_ALIGN) - p.len() as u64
    });
    padded - last_pad
}

fn layout(hdr: &SetupHeader, pm_len: u64, ram: u64, initrd_size: u64) -> Result<Layout, LoadError> {
    let limit = ram.min(LIMIT_4G);
    let outside = |start: u64, end: Option<u64>, what| LoadError::KernelOutsideRam {
        what,
        start,
        end: end.unwrap_or(u64::MAX),
        limit,
    };
    // boot.rst, "init_size": a relocatable kernel runs at its load address rounded up to
    // kernel_alignment (loaded at pref_address or above), any other at pref_address.
    let (load, runtime) = if hdr.relocatable {
        let at = hdr
            .pref_address
            .max(HIGH_MEMORY)
            .checked_next_multiple_of(u64::from(hdr.kernel_alignment));
        let at = at.ok_or(outside(hdr.pref_address, None, "the kernel"))?;
        (at, at)
    } else {
        (HIGH_MEMORY, hdr.pref_address)
    };
    let loaded_end = load.checked_add(pm_len);
    let runtime_end = runtime.checked_add(u64::from(hdr.init_size));
    for (start, end, what) in [
        (load, loaded_end, "the protected-mode kernel"),
        (runtime, runtime_end, "the kernel's init_size"),
    ] {
        if start < HIGH_MEMORY || end.is_none_or(|end| end > limit) {
            return Err(outside(start, end, what));
        }
    }
    // Both ends are checked above, so they exist.
    let kernel_end = loaded_end
        .unwrap_or(limit)
        .max(runtime_end.unwrap_or(limit));
    let initrd = match initrd_size {
        0 => 0,
        size => {
            // initrd_addr_max is the highest address the initrd may occupy (inclusive).
            let highest = limit.min(u64::from(hdr.initrd_addr_max) + 1);
            match highest.checked_sub(size).map(|s| s & !(PAGE - 1)) {
                Some(start) if start >= kernel_end => start,
                _ => {
                    return Err(LoadError::InitrdTooBig {
                        size,
                        lowest: kernel_end,
                        highest,
                    });
                }
            }
        }
    };
    Ok(Layout {
        load,
        kernel_end,
        initrd,
        initrd_size,
    })
}

/// Loads the bzImage `image` into `mem` with command line `cmdline` and the initrd made of
/// `initrd` (the files concatenated; none: no initrd), builds its zero page, and returns how
/// to enter it.
///
/// Nothing is written to `mem` unless the image, command line and initrd pass every check.
pub fn load(
    image: &[u8],
    cmdline: &str,
    initrd: &[&[u8]],
    mem: &mut impl GuestPhys,
) -> Result<LinuxEntry, LoadError> {
    let ram = mem.size();
    if ram <= HIGH_MEMORY {
        return Err(LoadError::RamTooSmall { ram });
    }
    let hdr = SetupHeader::parse(image)?;
    if cmdline.as_bytes().contains(&0) {
        return Err(LoadError::CmdlineContainsNul);
    }
    let max = (hdr.cmdline_size as usize).min(CMDLINE_AREA_MAX);
    if cmdline.len() > max {
        return Err(LoadError::CmdlineTooLong {
            len: cmdline.len(),
            max,
        });
    }
    let kernel = hdr.protected_mode(image);
    let at = layout(&hdr, kernel.len() as u64, ram, initrd_size(initrd))?;
    // Every address is below 4 GiB: layout() checked them against the 32-bit limit.
    let placed = Placed {
        kernel: at.load as u32,
        cmdline: CMDLINE_ADDR as u32,
        initrd: at.initrd as u32,
        initrd_size: at.initrd_size as u32,
    };
    super::write(
        mem,
        ZERO_PAGE_ADDR,
        &zero_page::build(image, &hdr, &placed, ram),
    )?;
    super::write(mem, CMDLINE_ADDR, cmdline.as_bytes())?;
    super::zero(mem, CMDLINE_ADDR + cmdline.len() as u64, 1)?;
    super::write(mem, at.load, kernel)?;
    let mut gpa = at.initrd;
    for (i, part) in initrd.iter().enumerate() {
        super::write(mem, gpa, part)?;
        let end = gpa + part.len() as u64;
        let next = match i + 1 < initrd.len() {
            true => end.next_multiple_of(INITRD_PART_ALIGN),
            false => end,
        };
        super::zero(mem, end, next - end)?;
        gpa = next;
    }
    Ok(LinuxEntry {
        eip: placed.kernel,
        esi: ZERO_PAGE_ADDR as u32,
        version: hdr.version,
        kernel_end: at.kernel_end,
        initrd: (at.initrd, at.initrd_size),
    })
}
