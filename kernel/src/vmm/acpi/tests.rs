// SPDX-License-Identifier: MIT OR Apache-2.0
//! The tables read back with the `acpi` crate, as an OS would find them in guest memory.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;

use acpi::address::{AccessSize, AddressSpace, GenericAddress};
use acpi::fadt::Fadt;
use acpi::madt::{Madt, MadtEntry};
use acpi::sdt::Signature;
use acpi::{AcpiError, AcpiHandler, AcpiTable, AcpiTables, PhysicalMapping};

use super::*;
use crate::vmm::devices::pm;

/// Guest memory below 1 MiB and a little beyond, where the BIOS search reads.
const IMAGE_LEN: usize = 0x10_1000;

/// Guest physical memory as a byte image, with the tables copied in.
struct Image(Vec<u8>);

impl Image {
    fn with(tables: &Tables) -> Self {
        let mut mem = vec![0u8; IMAGE_LEN];
        let at = tables.base as usize;
        mem[at..at + tables.bytes.len()].copy_from_slice(&tables.bytes);
        Self(mem)
    }

    fn handler(&self) -> Mem {
        Mem {
            start: self.0.as_ptr() as usize,
            len: self.0.len(),
        }
    }

    fn tables(&self) -> AcpiTables<Mem> {
        // SAFETY: the image is BIOS-era memory (BDA, EBDA range, 0xE0000-0xFFFFF) and outlives
        // the tables read from it in each test.
        unsafe { AcpiTables::search_for_rsdp_bios(self.handler()) }.expect("RSDP found")
    }
}

/// Maps guest-physical addresses into an [`Image`] (read only: the crate only reads).
#[derive(Clone)]
struct Mem {
    start: usize,
    len: usize,
}

impl AcpiHandler for Mem {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        assert!(
            phys.checked_add(size).is_some_and(|end| end <= self.len),
            "the crate reads {size} bytes at {phys:#x}, outside guest memory"
        );
        let virt = NonNull::new((self.start + phys) as *mut T).expect("image is not at 0");
        // SAFETY: `phys..phys + size` lies inside the image (checked above), which lives as long
        // as the mapping (see `Image::tables`).
        unsafe { PhysicalMapping::new(phys, virt, size, size, self.clone()) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

fn built(p: &Platform) -> Tables {
    build(p, DEFAULT_BASE).expect("tables build")
}

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |s: u8, &b| s.wrapping_add(b))
}

#[test]
fn the_rsdp_is_found_in_the_bios_area_and_every_table_checks_out() {
    let t = built(&Platform::pc(64 << 20));
    assert_eq!(t.rsdp, DEFAULT_BASE);
    assert!(BIOS_AREA.contains(&t.range().start) && BIOS_AREA.contains(&(t.range().end - 1)));
    assert!(t.bytes.len() < 4096, "{} bytes", t.bytes.len());
    let image = Image::with(&t);
    let tables = image.tables();
    assert_eq!(tables.revision(), 2);
    // SAFETY: as in `Image::tables`.
    let direct = unsafe { AcpiTables::from_rsdp(image.handler(), t.rsdp as usize) };
    assert_eq!(direct.expect("RSDP at the address given").revision(), 2);
    // Both RSDP checksums (the crate checks them too; here each on its own range).
    assert_eq!(sum(&t.bytes[..20]), 0);
    assert_eq!(sum(&t.bytes[..36]), 0);
    let signatures: Vec<Signature> = tables.headers().map(|h| h.signature).collect();
    assert_eq!(signatures, [Signature::FADT, Signature::MADT]);
    // Every table the XSDT lists sums to 0 over its length.
    let u32_at = |o: usize| u32::from_le_bytes(image.0[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(image.0[o..o + 8].try_into().unwrap()) as usize;
    let xsdt = u64_at(t.rsdp as usize + 24);
    assert_eq!(&image.0[xsdt..xsdt + 4], b"XSDT");
    assert_eq!(
        sum(&image.0[xsdt..xsdt + u32_at(xsdt + 4)]),
        0,
        "XSDT checksum"
    );
    for entry in (xsdt + tables::HEADER_LEN..xsdt + u32_at(xsdt + 4)).step_by(8) {
        let table = u64_at(entry);
        assert_eq!(
            sum(&image.0[table..table + u32_at(table + 4)]),
            0,
            "table at {table:#x}"
        );
    }
    let fadt = tables.find_table::<Fadt>().expect("FADT");
    fadt.validate().expect("FADT checksum");
    let dsdt = tables.dsdt().expect("DSDT");
    let at = dsdt.address - tables::HEADER_LEN;
    let len = dsdt.length as usize + tables::HEADER_LEN;
    assert_eq!(&image.0[at..at + 4], b"DSDT");
    assert_eq!(sum(&image.0[at..at + len]), 0, "DSDT checksum");
    let facs = fadt.facs_address().expect("FACS");
    assert_eq!(facs % 64, 0, "FACS 64-byte aligned");
    assert_eq!(&image.0[facs..facs + 8], b"FACS\x40\0\0\0");
    assert_eq!(image.0[facs + 32], 2, "FACS version");
}

#[test]
fn the_madt_lists_the_processor_the_ioapic_the_overrides_and_the_nmi() {
    let image = Image::with(&built(&Platform::pc(64 << 20)));
    let tables = image.tables();
    let madt = tables.find_table::<Madt>().expect("MADT");
    let madt = madt.get();
    assert_eq!({ madt.local_apic_address }, 0xFEE0_0000);
    assert!(madt.supports_8259(), "PCAT_COMPAT");
    let mut seen = Vec::new();
    for entry in madt.entries() {
        match entry {
            MadtEntry::LocalApic(e) => {
                seen.push((
                    "lapic",
                    u32::from(e.processor_id),
                    u32::from(e.apic_id),
                    e.flags,
                ));
            }
            MadtEntry::IoApic(e) => {
                assert_eq!({ e.io_apic_address }, 0xFEC0_0000);
                seen.push((
                    "ioapic",
                    u32::from(e.io_apic_id),
                    e.global_system_interrupt_base,
                    0,
                ));
            }
            MadtEntry::InterruptSourceOverride(e) => {
                assert_eq!(e.bus, 0, "ISA");
                seen.push((
                    "iso",
                    u32::from(e.irq),
                    e.global_system_interrupt,
                    u32::from(e.flags),
                ));
            }
            MadtEntry::LocalApicNmi(e) => {
                seen.push((
                    "nmi",
                    u32::from(e.processor_id),
                    u32::from(e.nmi_line),
                    u32::from(e.flags),
                ));
            }
            other => panic!("unexpected MADT entry {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("lapic", 0, 0, 1),
            ("ioapic", 0, 0, 0),
            ("iso", 0, 2, 0),
            ("iso", 9, 9, 0b1111),
            ("nmi", 0xFF, 1, 0),
        ]
    );
}

#[test]
fn the_fadt_describes_the_pm_blocks_the_reset_register_and_a_legacy_pc() {
    let image = Image::with(&built(&Platform::pc(64 << 20)));
    let tables = image.tables();
    let fadt = tables.find_table::<Fadt>().expect("FADT");
    assert_eq!(fadt.header().revision, 6);
    assert_eq!(fadt.header().length as usize, tables::FADT_LEN);
    assert_eq!({ fadt.sci_interrupt }, 9);
    assert_eq!({ fadt.smi_cmd_port }, 0, "always in ACPI mode");
    let io = |address: u16, bits: u8, access| GenericAddress {
        address_space: AddressSpace::SystemIo,
        bit_width: bits,
        bit_offset: 0,
        access_size: access,
        address: u64::from(address),
    };
    assert_eq!(
        fadt.pm1a_event_block().unwrap(),
        io(pm::PM1A_EVT, 32, AccessSize::WordAccess)
    );
    assert_eq!(
        fadt.pm1a_control_block().unwrap(),
        io(pm::PM1A_CNT, 16, AccessSize::WordAccess)
    );
    assert_eq!(
        fadt.pm_timer_block().unwrap().unwrap(),
        io(pm::PM_TMR, 32, AccessSize::DWordAccess)
    );
    assert_eq!(
        fadt.reset_register().unwrap(),
        io(pm::RESET, 8, AccessSize::ByteAccess)
    );
    assert_eq!(fadt.reset_value, pm::RESET_VALUE);
    assert!(fadt.pm1b_event_block().unwrap().is_none());
    assert!(fadt.pm1b_control_block().unwrap().is_none());
    assert!(fadt.gpe0_block().unwrap().is_none());
    for reg in [fadt.sleep_control_register(), fadt.sleep_status_register()] {
        let address = reg.unwrap().map_or(0, |g| g.address);
        assert_eq!(address, 0, "no sleep registers: not HW-reduced");
    }
    let flags = fadt.flags;
    assert!(flags.pm_timer_is_32_bit());
    assert!(flags.supports_system_reset_via_fadt());
    assert!(!flags.system_is_hw_reduced_acpi());
    assert!(
        !flags.power_button_is_control_method(),
        "a fixed power button"
    );
    assert!(
        flags.sleep_button_is_control_method(),
        "no fixed sleep button"
    );
    let boot = fadt.iapc_boot_arch;
    assert!(boot.legacy_devices_are_accessible());
    assert!(!boot.motherboard_implements_8042());
    assert!(boot.dont_probe_vga());
    assert!(boot.dont_enable_msi());
    assert_eq!(fadt.century, 0x32);
    // 32- and 64-bit pointers agree.
    let raw = &image.0[fadt.physical_start()..];
    let u32_at = |o: usize| u64::from(u32::from_le_bytes(raw[o..o + 4].try_into().unwrap()));
    let u64_at = |o: usize| u64::from_le_bytes(raw[o..o + 8].try_into().unwrap());
    assert_eq!((u32_at(36), u32_at(40)), (u64_at(132), u64_at(140)));
    assert_eq!(u64_at(140), fadt.dsdt_address().unwrap() as u64);
}

/// Reads a PkgLength at `at`: (package length, bytes of the encoding).
fn read_pkg_length(b: &[u8], at: usize) -> (usize, usize) {
    let extra = usize::from(b[at] >> 6);
    if extra == 0 {
        return (usize::from(b[at] & 0x3F), 1);
    }
    let len = (0..extra).fold(usize::from(b[at] & 0xF), |acc, i| {
        acc | usize::from(b[at + 1 + i]) << (4 + 8 * i)
    });
    (len, extra + 1)
}

/// The DSDT's AML: `\_S5` with the PM device's sleep type, then `\_SB` whose body is exactly
/// a sequence of well-formed devices with the expected hardware ids.
#[test]
fn the_dsdt_holds_s5_and_the_legacy_devices() {
    let mut p = Platform::pc(64 << 20);
    p.devices.push(aml::device(
        "VIO0",
        &[aml::name("_HID", &aml::string("LNRO0005"))],
    ));
    let t = built(&p);
    let image = Image::with(&t);
    let dsdt = image.tables().dsdt().expect("DSDT");
    let b = &image.0[dsdt.address..dsdt.address + dsdt.length as usize];
    let s5 = pm::S5_SLP_TYP;
    let s5_term = [
        0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0A, s5, 0x0A, s5, 0x00, 0x00,
    ];
    assert_eq!(b[..s5_term.len()], s5_term);
    let sb = &b[s5_term.len()..];
    assert_eq!(sb[0], 0x10, "ScopeOp");
    let (len, n) = read_pkg_length(sb, 1);
    assert_eq!(1 + len, sb.len(), "the scope ends the table");
    assert_eq!(sb[1 + n..1 + n + 5], *b"\\_SB_");
    let mut at = 1 + n + 5;
    let mut hids = Vec::new();
    while at < sb.len() {
        assert_eq!(sb[at..at + 2], [0x5B, 0x82], "DeviceOp at {at}");
        let (len, n) = read_pkg_length(sb, at + 2);
        let body = &sb[at + 2 + n..at + 2 + len];
        assert_eq!(body[4..9], *b"\x08_HID", "device {:?}", &body[..4]);
        hids.push((body[..4].to_vec(), body[9..14].to_vec()));
        at += 2 + len;
    }
    assert_eq!(at, sb.len());
    let eisa = |id| aml::eisa_id(id);
    assert_eq!(
        hids,
        [
            (b"COM1".to_vec(), eisa("PNP0501")),
            (b"RTC_".to_vec(), eisa("PNP0B00")),
            (b"TMR_".to_vec(), eisa("PNP0100")),
            (b"PIC_".to_vec(), eisa("PNP0000")),
            (b"VIO0".to_vec(), aml::string("LNRO0005")[..5].to_vec()),
        ]
    );
    // COM1's resources: ports 0x3F8-0x3FF and IRQ 4.
    let crs = [
        0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00,
    ];
    assert!(b.windows(crs.len()).any(|w| w == crs));
}

#[test]
fn several_processors_each_get_a_local_apic() {
    let mut p = Platform::pc(64 << 20);
    p.cpus = 4;
    let image = Image::with(&built(&p));
    let madt = image.tables().find_table::<Madt>().expect("MADT");
    let ids: Vec<(u8, u8)> = madt
        .get()
        .entries()
        .filter_map(|e| match e {
            MadtEntry::LocalApic(e) => Some((e.processor_id, e.apic_id)),
            _ => None,
        })
        .collect();
    assert_eq!(ids, [(0, 0), (1, 1), (2, 2), (3, 3)]);
}

#[test]
fn a_corrupted_table_is_refused_by_the_reader() {
    let t = built(&Platform::pc(64 << 20));
    let mut image = Image::with(&t);
    let madt_at = {
        let tables = image.tables();
        tables.find_table::<Madt>().expect("MADT").physical_start()
    };
    image.0[madt_at + 46] ^= 1; // the local APIC's processor UID
    assert!(
        matches!(
            image.tables().find_table::<Madt>().err(),
            Some(AcpiError::TableMissing(Signature::MADT))
        ),
        "a bad checksum hides the table"
    );
    let mut image = Image::with(&t);
    image.0[DEFAULT_BASE as usize + 24] ^= 1; // the XSDT address: the extended checksum breaks
    // SAFETY: as in `Image::tables`.
    let r = unsafe { AcpiTables::from_rsdp(image.handler(), t.rsdp as usize) };
    assert!(matches!(r.err(), Some(AcpiError::RsdpInvalidChecksum)));
}

#[test]
fn placements_that_cannot_work_are_refused() {
    let p = Platform::pc(64 << 20);
    assert_eq!(
        build(&p, DEFAULT_BASE + 16),
        Err(BuildError::Misaligned(DEFAULT_BASE + 16))
    );
    let len = built(&p).bytes.len() as u64;
    let small = Platform::pc(DEFAULT_BASE + len);
    assert!(build(&small, DEFAULT_BASE).is_ok(), "fits exactly");
    assert_eq!(
        build(&Platform::pc(DEFAULT_BASE + len - 1), DEFAULT_BASE),
        Err(BuildError::OutOfRange {
            end: DEFAULT_BASE + len,
            ram: DEFAULT_BASE + len - 1
        })
    );
    let big = Platform::pc(8 << 30);
    assert!(matches!(
        build(&big, (1 << 32) - 64),
        Err(BuildError::OutOfRange { .. })
    ));
    assert!(matches!(
        build(&big, u64::MAX - 63),
        Err(BuildError::OutOfRange { end: u64::MAX, .. })
    ));
    let t = build(&big, 0x7FF0_0000).expect("anywhere in RAM below 4 GiB");
    assert_eq!(t.rsdp, 0x7FF0_0000);
    let mut none = p.clone();
    none.cpus = 0;
    assert_eq!(build(&none, DEFAULT_BASE), Err(BuildError::NoCpu));
    assert_eq!(
        BuildError::Misaligned(0x10).to_string(),
        "ACPI tables at 0x10: not 64-byte aligned"
    );
}

#[test]
fn the_same_platform_gives_the_same_bytes_and_the_base_only_moves_pointers() {
    let p = Platform::pc(1 << 30);
    assert_eq!(built(&p), built(&p));
    let a = build(&p, 0x1000_0000).unwrap();
    let b = build(&p, 0x2000_0000).unwrap();
    assert_eq!(a.bytes.len(), b.bytes.len());
    let diff = a.bytes.iter().zip(&b.bytes).filter(|(x, y)| x != y).count();
    assert!((1..=16).contains(&diff), "{diff} bytes differ");
}
