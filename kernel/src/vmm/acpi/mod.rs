// SPDX-License-Identifier: MIT OR Apache-2.0
//! The ACPI tables a guest finds in its memory (ACPI 6.5, chapter 5 "ACPI Software
//! Programming Model"): an RSDP that points to an XSDT listing a FADT, a MADT and (through
//! the FADT) a FACS and a DSDT, describing a PC with legacy devices (not hardware-reduced):
//!
//! - FADT (5.2.9): the SCI on ISA IRQ 9, no SMI command port (always in ACPI mode), the PM1a
//!   event and control blocks, the 32-bit PM timer and the reset register of `devices::pm`
//!   at ports 0x600-0x60C, IA-PC boot flags (legacy devices and CMOS RTC present, no VGA,
//!   no 8042 unless the platform has one);
//! - MADT (5.2.12): the local APICs, the I/O APIC, the ISA interrupt source overrides (IRQ 0 on
//!   GSI 2, the SCI level and active low) and LINT1 as NMI, with the dual 8259s (PCAT_COMPAT);
//! - DSDT (5.2.11.1): `\_S5` and the legacy devices (see `dsdt`), built with [`aml`].
//!
//! [`build`] lays the tables out contiguously from a guest-physical address: the RSDP first
//! (an OS on a BIOS platform finds it on a 16-byte boundary in 0xE0000-0xFFFFF, 5.2.5.1), so
//! [`DEFAULT_BASE`] puts the whole set there; a few KiB, in the range an OS treats as reserved.

pub mod aml;
mod dsdt;
mod tables;

use alloc::vec::Vec;
use core::fmt;

pub use tables::checksum;

/// Where the tables go unless the monitor has a reason to put them elsewhere: the start of
/// the BIOS read-only area, where an OS scans for the RSDP.
pub const DEFAULT_BASE: u64 = 0xE_0000;
/// The BIOS area an OS scans for the RSDP (ACPI 6.5, 5.2.5.1).
pub const BIOS_AREA: core::ops::RangeInclusive<u64> = 0xE_0000..=0xF_FFFF;

/// An ISA interrupt source override (MADT, ACPI 6.5 5.2.12.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsaOverride {
    /// ISA IRQ.
    pub irq: u8,
    /// The global system interrupt it is wired to.
    pub gsi: u32,
    /// MPS INTI flags: polarity in bits 0-1, trigger mode in bits 2-3 (Table 5.26).
    pub flags: u16,
}

/// MPS INTI flags of a level-triggered, active-low interrupt (as the SCI is).
pub const LEVEL_ACTIVE_LOW: u16 = 0b1111;

/// The I/O APIC as the MADT describes it (ACPI 6.5, 5.2.12.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoApic {
    /// I/O APIC ID.
    pub id: u8,
    /// Physical address of its registers.
    pub base: u32,
    /// The GSI of its pin 0.
    pub gsi_base: u32,
}

/// What the tables describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Guest RAM in bytes: the tables must lie inside it.
    pub ram: u64,
    /// Processors, with local APIC IDs (and ACPI processor UIDs) 0 to `cpus - 1`.
    pub cpus: u8,
    /// Physical address of the local APICs.
    pub lapic_base: u32,
    /// The I/O APIC.
    pub ioapic: IoApic,
    /// ISA IRQs that do not reach the I/O APIC pin of the same number, or not edge-triggered
    /// and active-high.
    pub overrides: Vec<IsaOverride>,
    /// An 8042 keyboard controller is present.
    pub i8042: bool,
    /// Message-signalled interrupts work (else the FADT tells the OS not to enable them).
    pub msi: bool,
    /// CMOS index of the RTC's century byte (0: none).
    pub rtc_century: u8,
    /// More AML terms for the `\_SB` scope, e.g. devices built with [`aml::device`].
    pub devices: Vec<Vec<u8>>,
}

impl Platform {
    /// A one-processor PC with `ram` bytes of RAM: the local APIC at 0xFEE00000 (ID 0), an
    /// I/O APIC with ID 0 at 0xFEC00000 whose 24 pins are GSIs 0-23, IRQ 0 (the PIT) on GSI 2
    /// as on every PC, the SCI on IRQ 9 level-triggered and active low, no 8042, no MSI, the
    /// century at CMOS 0x32, no extra devices.
    pub fn pc(ram: u64) -> Self {
        Self {
            ram,
            cpus: 1,
            lapic_base: 0xFEE0_0000,
            ioapic: IoApic {
                id: 0,
                base: 0xFEC0_0000,
                gsi_base: 0,
            },
            overrides: alloc::vec![
                IsaOverride {
                    irq: 0,
                    gsi: 2,
                    flags: 0,
                },
                IsaOverride {
                    irq: crate::vmm::devices::pm::SCI_IRQ,
                    gsi: u32::from(crate::vmm::devices::pm::SCI_IRQ),
                    flags: LEVEL_ACTIVE_LOW,
                },
            ],
            i8042: false,
            msi: false,
            rtc_century: 0x32,
            devices: Vec::new(),
        }
    }
}

/// Why tables could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// The base address is not 64-byte aligned (the FACS needs it, 5.2.10).
    Misaligned(u64),
    /// The tables would end at `end`, beyond guest RAM or 4 GiB (32-bit table pointers).
    OutOfRange {
        /// First byte after the tables.
        end: u64,
        /// Guest RAM in bytes.
        ram: u64,
    },
    /// No processor.
    NoCpu,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Misaligned(base) => write!(f, "ACPI tables at {base:#x}: not 64-byte aligned"),
            Self::OutOfRange { end, ram } => write!(
                f,
                "ACPI tables would end at {end:#x}, beyond guest RAM ({ram:#x}) or 4 GiB"
            ),
            Self::NoCpu => write!(f, "ACPI tables for a platform without a processor"),
        }
    }
}

/// The tables, as bytes to copy to guest memory at `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// Guest-physical address of `bytes[0]`.
    pub base: u64,
    /// The tables.
    pub bytes: Vec<u8>,
    /// Guest-physical address of the RSDP (for a boot protocol that passes it, such as Linux's
    /// `boot_params.acpi_rsdp_addr`).
    pub rsdp: u64,
}

impl Tables {
    /// The guest-physical range the tables occupy, for the memory map (an ACPI or reserved
    /// range).
    pub fn range(&self) -> core::ops::Range<u64> {
        self.base..self.base + self.bytes.len() as u64
    }
}

/// Builds the tables for `platform` to lie at guest-physical `base` (64-byte aligned): RSDP,
/// FACS, XSDT, FADT, MADT, DSDT, in that order.
///
/// # Errors
/// [`BuildError`] if `base` is misaligned, the tables would not lie inside guest RAM below
/// 4 GiB, or the platform has no processor.
pub fn build(platform: &Platform, base: u64) -> Result<Tables, BuildError> {
    if !base.is_multiple_of(64) {
        return Err(BuildError::Misaligned(base));
    }
    if platform.cpus == 0 {
        return Err(BuildError::NoCpu);
    }
    let madt = tables::madt(platform);
    let dsdt = tables::dsdt(&dsdt::aml(platform));
    // Offsets, then addresses: RSDP at 0, FACS at 64, XSDT at 128, the rest 16-byte aligned.
    let (facs_at, xsdt_at) = (64usize, 128usize);
    let xsdt_len = tables::HEADER_LEN + 2 * 8;
    let fadt_at = (xsdt_at + xsdt_len).next_multiple_of(16);
    let madt_at = (fadt_at + tables::FADT_LEN).next_multiple_of(16);
    let dsdt_at = (madt_at + madt.len()).next_multiple_of(16);
    let len = dsdt_at + dsdt.len();
    let end = base.saturating_add(len as u64);
    if end > platform.ram.min(1 << 32) {
        return Err(BuildError::OutOfRange {
            end,
            ram: platform.ram,
        });
    }
    // Below 4 GiB: every address fits 32 bits.
    let at = |offset: usize| (base + offset as u64) as u32;
    let mut out = tables::rsdp(u64::from(at(xsdt_at)));
    for (offset, table) in [
        (facs_at, tables::facs()),
        (
            xsdt_at,
            tables::xsdt(&[u64::from(at(fadt_at)), u64::from(at(madt_at))]),
        ),
        (fadt_at, tables::fadt(platform, at(facs_at), at(dsdt_at))),
        (madt_at, madt),
        (dsdt_at, dsdt),
    ] {
        debug_assert!(out.len() <= offset);
        out.resize(offset, 0);
        out.extend(table);
    }
    Ok(Tables {
        base,
        bytes: out,
        rsdp: base,
    })
}

#[cfg(test)]
mod tests;
