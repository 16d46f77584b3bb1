// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the boot loader told us, normalised from Multiboot 1 (`qemu -kernel`) or Multiboot 2
//! (GRUB) into one [`BootInfo`] and copied out of the loader's structures, so nothing later
//! depends on memory the frame allocator may hand out.

mod mb1;
mod mb2;

use crate::mm::region::Region;

/// Magic in EAX from a Multiboot 1 loader (Multiboot Specification 0.6.96, 3.2).
pub const MULTIBOOT1_MAGIC: u32 = 0x2BAD_B002;
/// Magic in EAX from a Multiboot 2 loader (Multiboot2 Specification 1.0, 3.3).
pub const MULTIBOOT2_MAGIC: u32 = 0x36D7_6289;

/// Most memory-map entries kept.
pub const MAX_AREAS: usize = 128;
/// Most boot modules kept.
pub const MAX_MODULES: usize = 16;
/// Longest command line kept (bytes).
pub const MAX_CMDLINE: usize = 1024;
/// Longest boot module string kept (bytes): room for a Linux guest's command line.
pub const MAX_MODULE_CMDLINE: usize = 512;

/// Kind of a memory-map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemKind {
    /// Free RAM.
    Available,
    /// RAM holding ACPI tables (reclaimable once parsed; Castor keeps it).
    AcpiReclaimable,
    /// ACPI non-volatile storage.
    AcpiNvs,
    /// Defective RAM.
    Bad,
    /// Anything else.
    Reserved,
}

impl MemKind {
    /// From the Multiboot memory-map type number (same numbering in both versions).
    pub fn from_multiboot(kind: u32) -> Self {
        match kind {
            1 => MemKind::Available,
            3 => MemKind::AcpiReclaimable,
            4 => MemKind::AcpiNvs,
            5 => MemKind::Bad,
            _ => MemKind::Reserved,
        }
    }

    /// Whether the range is RAM (cacheable), whatever its use.
    pub fn is_ram(self) -> bool {
        matches!(
            self,
            MemKind::Available | MemKind::AcpiReclaimable | MemKind::AcpiNvs
        )
    }
}

/// One memory-map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemArea {
    /// Address range.
    pub region: Region,
    /// What it is.
    pub kind: MemKind,
}

/// A boot module (e.g. a guest image).
#[derive(Debug, Clone, Copy)]
pub struct Module {
    /// Where the loader put it.
    pub region: Region,
    cmdline: [u8; MAX_MODULE_CMDLINE],
    cmdline_len: usize,
}

impl Module {
    /// The module's command line (truncated to `MAX_MODULE_CMDLINE` bytes).
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }
}

/// Which boot protocol brought us up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Multiboot 1 (QEMU `-kernel`, or GRUB `multiboot`).
    Multiboot1,
    /// Multiboot 2 (GRUB `multiboot2`).
    Multiboot2,
}

/// Why the boot information could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootInfoError {
    /// EAX held neither Multiboot magic.
    UnknownMagic(u32),
    /// The structure was malformed (what was wrong).
    Malformed(&'static str),
    /// No memory map was supplied.
    NoMemoryMap,
}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootInfoError::UnknownMagic(m) => {
                write!(f, "not started by a Multiboot loader (EAX={m:#x})")
            }
            BootInfoError::Malformed(what) => write!(f, "malformed boot information: {what}"),
            BootInfoError::NoMemoryMap => write!(f, "the boot loader supplied no memory map"),
        }
    }
}

/// Normalised boot information.
#[derive(Debug, Clone)]
pub struct BootInfo {
    /// Boot protocol.
    pub protocol: Protocol,
    areas: [MemArea; MAX_AREAS],
    area_count: usize,
    modules: [Module; MAX_MODULES],
    module_count: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    /// Physical address of the ACPI RSDP, if the loader passed one.
    pub rsdp: Option<u64>,
    /// Entries dropped because a table was full (reported at boot).
    pub dropped: usize,
}

impl BootInfo {
    fn empty(protocol: Protocol) -> Self {
        const NO_AREA: MemArea = MemArea {
            region: Region::new(0, 0),
            kind: MemKind::Reserved,
        };
        const NO_MODULE: Module = Module {
            region: Region::new(0, 0),
            cmdline: [0; MAX_MODULE_CMDLINE],
            cmdline_len: 0,
        };
        Self {
            protocol,
            areas: [NO_AREA; MAX_AREAS],
            area_count: 0,
            modules: [NO_MODULE; MAX_MODULES],
            module_count: 0,
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
            rsdp: None,
            dropped: 0,
        }
    }

    fn push_area(&mut self, start: u64, len: u64, kind: MemKind) {
        if len == 0 {
            return;
        }
        match self.areas.get_mut(self.area_count) {
            Some(slot) => {
                *slot = MemArea {
                    region: Region::new(start, start.saturating_add(len)),
                    kind,
                };
                self.area_count += 1;
            }
            None => self.dropped += 1,
        }
    }

    fn push_module(&mut self, start: u64, end: u64, cmdline: &[u8]) {
        match self.modules.get_mut(self.module_count) {
            Some(slot) => {
                let n = cmdline.len().min(MAX_MODULE_CMDLINE);
                slot.region = Region::new(start, end);
                slot.cmdline[..n].copy_from_slice(&cmdline[..n]);
                slot.cmdline_len = n;
                self.module_count += 1;
            }
            None => self.dropped += 1,
        }
    }

    fn set_cmdline(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(MAX_CMDLINE);
        self.cmdline[..n].copy_from_slice(&bytes[..n]);
        self.cmdline_len = n;
    }

    /// The memory map.
    pub fn areas(&self) -> &[MemArea] {
        &self.areas[..self.area_count]
    }

    /// Boot modules.
    pub fn modules(&self) -> &[Module] {
        &self.modules[..self.module_count]
    }

    /// A module's arguments: its command line without the file name a Multiboot 1 loader
    /// (QEMU's `-initrd "FILE ARGS"`) puts first; GRUB's `module2` passes only the arguments.
    pub fn module_args<'a>(&self, module: &'a Module) -> &'a str {
        match self.protocol {
            Protocol::Multiboot1 => module
                .cmdline()
                .split_once(' ')
                .map_or("", |(_, args)| args.trim_start()),
            Protocol::Multiboot2 => module.cmdline(),
        }
    }

    /// The kernel command line (invalid UTF-8 yields an empty line and is reported by the
    /// config parser as such).
    pub fn cmdline(&self) -> Result<&str, core::str::Utf8Error> {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len])
    }

    /// Parses what the loader passed: `magic` from EAX, `info` the physical address from EBX.
    ///
    /// # Safety
    /// `info` must be the loader's boot-information address, identity mapped, and the memory it
    /// references must not have been reused yet.
    pub unsafe fn parse(magic: u32, info: u64) -> Result<Self, BootInfoError> {
        let parsed = match magic {
            MULTIBOOT1_MAGIC => {
                // SAFETY: forwarded from the caller: boot memory is identity mapped and intact.
                let mem = unsafe { mb1::IdentityMemory::new() };
                mb1::parse(&mem, info)
            }
            // SAFETY: forwarded from the caller.
            MULTIBOOT2_MAGIC => unsafe { mb2::parse(info) },
            other => Err(BootInfoError::UnknownMagic(other)),
        }?;
        if parsed.area_count == 0 {
            return Err(BootInfoError::NoMemoryMap);
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_arguments_drop_the_file_name_only_for_multiboot1() {
        let mut info = BootInfo::empty(Protocol::Multiboot1);
        info.push_module(0x1000, 0x2000, b"/boot/guest status=7 x=1");
        info.push_module(0x2000, 0x3000, b"/tmp/guest");
        assert_eq!(info.module_args(&info.modules()[0]), "status=7 x=1");
        assert_eq!(info.module_args(&info.modules()[1]), "");
        info.protocol = Protocol::Multiboot2;
        info.push_module(0x3000, 0x4000, b"status=7");
        assert_eq!(info.module_args(&info.modules()[2]), "status=7");
    }
}
