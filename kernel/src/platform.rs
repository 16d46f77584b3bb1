// SPDX-License-Identifier: MIT OR Apache-2.0
//! The machine's CPUs and interrupt controllers, from the ACPI MADT (ACPI 6.5, 5.2.12), and its
//! PM timer, from the FADT (5.2.9), read with the `acpi` crate. Without ACPI, Castor runs on the
//! bootstrap processor alone.

use alloc::vec::Vec;
use core::ptr::NonNull;

use acpi::address::AddressSpace;
use acpi::fadt::Fadt;
use acpi::madt::{Madt, MadtEntry};
use acpi::mcfg::Mcfg;
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};

use crate::arch::x86_64::apic;
use crate::arch::x86_64::ioapic::{self, IoApic, SourceOverride};
use crate::arch::x86_64::pm_timer::PmTimer;
use crate::drivers::pci::ecam::Ecam;
use crate::mm::kmap;

/// A processor listed by the firmware.
#[derive(Debug, Clone, Copy)]
pub struct CpuEntry {
    /// Local APIC id.
    pub apic_id: u32,
    /// Usable (enabled, or online-capable).
    pub enabled: bool,
}

/// What the firmware describes.
#[derive(Debug)]
pub struct Platform {
    /// Local APIC register base.
    pub lapic_base: u64,
    /// Processors, in MADT order.
    pub cpus: Vec<CpuEntry>,
    /// I/O APICs.
    pub ioapics: Vec<IoApic>,
    /// Whether 8259 PICs are present too (MADT flag PCAT_COMPAT).
    pub legacy_pics: bool,
    /// The ECAM window of PCI segment 0, from the MCFG table, if any.
    pub ecam: Option<Ecam>,
    /// The ACPI PM timer, where the FADT names one in I/O space.
    pub pm_timer: Option<PmTimer>,
}

/// ACPI tables through the identity map: "mapping" a region is returning its address.
#[derive(Clone)]
struct IdentityAcpi;

impl AcpiHandler for IdentityAcpi {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        // Regions never straddle page 0's end: the only one inside it is the 2-byte EBDA pointer.
        let virt = kmap::phys_to_virt(phys as u64) as *mut T;
        let virt = NonNull::new(virt).unwrap_or(NonNull::dangling());
        // SAFETY: all physical memory below the end of RAM and 4 GiB is mapped by the kernel
        // tables (identity, page 0 through its read-only alias); ACPI tables live in RAM the
        // allocator never hands out (reserved or ACPI areas); the `acpi` crate only reads.
        unsafe { PhysicalMapping::new(phys, virt, size, size, self.clone()) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// Reads the MADT. `rsdp` is the loader-supplied RSDP; without it the BIOS areas are searched.
pub fn discover(rsdp: Option<u64>) -> Result<Platform, acpi::AcpiError> {
    // SAFETY: the RSDP address comes from the boot loader (or the BIOS search reads the EBDA and
    // 0xE0000..0xFFFFF), all identity mapped; see `IdentityAcpi`.
    let tables = unsafe {
        match rsdp {
            Some(addr) => AcpiTables::from_rsdp(IdentityAcpi, addr as usize),
            None => AcpiTables::search_for_rsdp_bios(IdentityAcpi),
        }
    }?;
    let mapping = tables.find_table::<Madt>()?;
    let madt = mapping.get();
    let mut platform = Platform {
        lapic_base: u64::from(madt.local_apic_address),
        cpus: Vec::new(),
        ioapics: Vec::new(),
        legacy_pics: madt.supports_8259(),
        ecam: None,
        pm_timer: pm_timer(&tables),
    };
    platform.ecam = tables.find_table::<Mcfg>().ok().and_then(|mcfg| {
        mcfg.entries()
            .iter()
            .find(|e| e.pci_segment_group == 0)
            .map(|e| Ecam {
                base: e.base_address,
                start_bus: e.bus_number_start,
                end_bus: e.bus_number_end,
            })
    });
    let mut overrides = Vec::new();
    for entry in madt.entries() {
        match entry {
            MadtEntry::InterruptSourceOverride(e) if e.bus == 0 => {
                overrides.push(SourceOverride {
                    irq: e.irq,
                    gsi: e.global_system_interrupt,
                    flags: e.flags,
                });
            }
            MadtEntry::LocalApic(e) => platform.cpus.push(CpuEntry {
                apic_id: u32::from(e.apic_id),
                enabled: { e.flags } & 0b11 != 0,
            }),
            MadtEntry::LocalX2Apic(e) => platform.cpus.push(CpuEntry {
                apic_id: e.x2apic_id,
                enabled: { e.flags } & 0b11 != 0,
            }),
            MadtEntry::IoApic(e) => platform.ioapics.push(IoApic {
                base: u64::from(e.io_apic_address),
                gsi_base: e.global_system_interrupt_base,
            }),
            MadtEntry::LocalApicAddressOverride(e) => platform.lapic_base = e.local_apic_address,
            _ => {}
        }
    }
    ioapic::register(&platform.ioapics, overrides);
    Ok(platform)
}

/// The single-CPU platform assumed when there is no ACPI.
pub fn fallback() -> Platform {
    Platform {
        lapic_base: apic::base_from_msr(),
        cpus: alloc::vec![CpuEntry {
            apic_id: apic::id(),
            enabled: true
        }],
        ioapics: Vec::new(),
        legacy_pics: true,
        ecam: None,
        pm_timer: None,
    }
}

/// The FADT's PM timer block (the extended address where set, else `PM_TMR_BLK`), if it is in
/// I/O space; HW-reduced platforms have none.
fn pm_timer(tables: &AcpiTables<IdentityAcpi>) -> Option<PmTimer> {
    let fadt = tables.find_table::<Fadt>().ok()?;
    let block = fadt.pm_timer_block().ok()??;
    if block.address_space != AddressSpace::SystemIo || block.address == 0 {
        return None;
    }
    Some(PmTimer {
        port: u16::try_from(block.address).ok()?,
        wide: { fadt.flags }.pm_timer_is_32_bit(),
    })
}
