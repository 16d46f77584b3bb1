// SPDX-License-Identifier: MIT OR Apache-2.0
//! Encoders of the fixed-format ACPI tables (ACPI 6.5, chapter 5.2): RSDP, XSDT, FADT, FACS,
//! MADT, and the header around a definition block (DSDT).

use alloc::vec::Vec;

use super::{IsaOverride, Platform};
use crate::vmm::devices::pm;

/// OEMID of every table (5.2.6).
const OEM_ID: &[u8; 6] = b"CASTOR";
/// OEM table ID of every table.
const OEM_TABLE_ID: &[u8; 8] = b"CASTORVM";
/// Creator ID: the tool that built the tables.
const CREATOR_ID: &[u8; 4] = b"CSTR";
/// Length of the system description table header (5.2.6, Table 5.4).
pub const HEADER_LEN: usize = 36;
/// Length of an ACPI 2.0+ RSDP (5.2.5.3, Table 5.3).
pub const RSDP_LEN: usize = 36;
/// Length of the FACS (5.2.10, Table 5.14).
pub const FACS_LEN: usize = 64;
/// Length of a revision 6 FADT (5.2.9, Table 5.9).
pub const FADT_LEN: usize = 276;

/// The byte that makes `bytes` sum to 0 (mod 256) when stored in its checksum field (which
/// must hold 0 while this is computed).
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, &b| sum.wrapping_add(b))
        .wrapping_neg()
}

/// A system description table under construction: the header (5.2.6), then the body.
struct Sdt(Vec<u8>);

impl Sdt {
    fn new(signature: &[u8; 4], revision: u8) -> Self {
        let mut b = Vec::with_capacity(256);
        b.extend_from_slice(signature);
        b.extend_from_slice(&[0; 4]); // length, set by finish
        b.push(revision);
        b.push(0); // checksum, set by finish
        b.extend_from_slice(OEM_ID);
        b.extend_from_slice(OEM_TABLE_ID);
        b.extend_from_slice(&1u32.to_le_bytes()); // OEM revision
        b.extend_from_slice(CREATOR_ID);
        b.extend_from_slice(&1u32.to_le_bytes()); // creator revision
        Self(b)
    }

    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }

    /// Sets the length and the checksum.
    fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        self.0[4..8].copy_from_slice(&len.to_le_bytes());
        self.0[9] = checksum(&self.0);
        self.0
    }
}

/// The RSDP (5.2.5.3), revision 2: the XSDT's address, no RSDT, both checksums.
pub fn rsdp(xsdt: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(RSDP_LEN);
    b.extend_from_slice(b"RSD PTR ");
    b.push(0); // checksum of the first 20 bytes
    b.extend_from_slice(OEM_ID);
    b.push(2); // revision: ACPI 2.0 and later
    b.extend_from_slice(&0u32.to_le_bytes()); // RsdtAddress: none, the XSDT serves
    b.extend_from_slice(&(RSDP_LEN as u32).to_le_bytes());
    b.extend_from_slice(&xsdt.to_le_bytes());
    b.extend_from_slice(&[0; 4]); // extended checksum, reserved
    b[8] = checksum(&b[..20]);
    b[32] = checksum(&b);
    b
}

/// The XSDT (5.2.8): the 64-bit addresses of the other tables.
pub fn xsdt(tables: &[u64]) -> Vec<u8> {
    let mut t = Sdt::new(b"XSDT", 1);
    tables.iter().for_each(|&a| _ = t.u64(a));
    t.finish()
}

/// The FACS (5.2.10), version 2: no waking vector, no S4BIOS, no 64-bit wake; its global lock
/// starts free, and no firmware ever takes it.
pub fn facs() -> Vec<u8> {
    let mut b = Vec::with_capacity(FACS_LEN);
    b.extend_from_slice(b"FACS");
    b.extend_from_slice(&(FACS_LEN as u32).to_le_bytes());
    b.resize(32, 0); // hardware signature, waking vector, global lock, flags, X waking vector
    b.push(2); // version
    b.resize(FACS_LEN, 0); // reserved, OSPM flags, reserved
    b
}

/// FADT Flags (5.2.9, Table 5.10).
mod flags {
    /// WBINVD works.
    pub const WBINVD: u32 = 1 << 0;
    /// C1 is supported on all processors.
    pub const PROC_C1: u32 = 1 << 2;
    /// No fixed-feature sleep button.
    pub const SLP_BUTTON: u32 = 1 << 5;
    /// RTC wake status is not in the fixed register space.
    pub const FIX_RTC: u32 = 1 << 6;
    /// The PM timer is 32 bits wide.
    pub const TMR_VAL_EXT: u32 = 1 << 8;
    /// RESET_REG is supported.
    pub const RESET_REG_SUP: u32 = 1 << 10;
}

/// IA-PC boot architecture flags (5.2.9.3, Table 5.11).
mod boot {
    /// ISA/LPC legacy devices (serial, RTC, PIT, PIC) are present.
    pub const LEGACY_DEVICES: u16 = 1 << 0;
    /// An 8042 keyboard controller is present.
    pub const I8042: u16 = 1 << 1;
    /// VGA is not present: do not probe it.
    pub const VGA_NOT_PRESENT: u16 = 1 << 2;
    /// MSI must not be enabled.
    pub const MSI_NOT_SUPPORTED: u16 = 1 << 3;
    /// OSPM must not enable PCIe ASPM.
    pub const PCIE_ASPM_CONTROLS: u16 = 1 << 4;
}

/// A Generic Address Structure (5.2.3.2) in system I/O space: `len` bytes at `port`,
/// accessed `access` bytes at a time.
fn io_gas(port: u16, len: u8, access: u8) -> [u8; 12] {
    let mut g = [0; 12];
    g[0] = 1; // system I/O
    g[1] = len * 8; // register bit width
    g[3] = match access {
        1 => 1,
        2 => 2,
        _ => 3,
    };
    g[4..6].copy_from_slice(&port.to_le_bytes());
    g
}

/// The FADT (5.2.9), revision 6.5, of a PC with legacy devices (not hardware-reduced): the SCI
/// on ISA IRQ 9, no SMI command port (always in ACPI mode), the PM1a event and control blocks,
/// the 32-bit PM timer and the reset register of `devices::pm`, both FACS and DSDT addresses
/// in their 32- and 64-bit fields.
pub fn fadt(p: &Platform, facs: u32, dsdt: u32) -> Vec<u8> {
    let mut t = Sdt::new(b"FACP", 6);
    let port = |a: u16| u32::from(a);
    let mut boot_flags = boot::LEGACY_DEVICES | boot::VGA_NOT_PRESENT | boot::PCIE_ASPM_CONTROLS;
    if p.i8042 {
        boot_flags |= boot::I8042;
    }
    if !p.msi {
        boot_flags |= boot::MSI_NOT_SUPPORTED;
    }
    t.u32(facs).u32(dsdt);
    t.u8(0).u8(0); // reserved, preferred PM profile: unspecified
    t.u16(u16::from(pm::SCI_IRQ));
    t.u32(0); // SMI_CMD: none
    t.bytes(&[0; 4]); // ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
    t.u32(port(pm::PM1A_EVT)).u32(0); // PM1a, PM1b event blocks
    t.u32(port(pm::PM1A_CNT)).u32(0); // PM1a, PM1b control blocks
    t.u32(0); // PM2 control block
    t.u32(port(pm::PM_TMR));
    t.u32(0).u32(0); // GPE0, GPE1 blocks
    t.u8(pm::PM1_EVT_LEN)
        .u8(pm::PM1_CNT_LEN)
        .u8(0)
        .u8(pm::PM_TMR_LEN);
    t.u8(0).u8(0).u8(0).u8(0); // GPE0, GPE1 lengths, GPE1 base, CST_CNT
    t.u16(101).u16(1001); // P_LVL2_LAT, P_LVL3_LAT: C2 and C3 not supported
    t.u16(0).u16(0); // FLUSH_SIZE, FLUSH_STRIDE
    t.u8(0).u8(0); // DUTY_OFFSET, DUTY_WIDTH
    t.u8(0).u8(0).u8(p.rtc_century); // DAY_ALRM, MON_ALRM, CENTURY
    t.u16(boot_flags).u8(0);
    t.u32(
        flags::WBINVD
            | flags::PROC_C1
            | flags::SLP_BUTTON
            | flags::FIX_RTC
            | flags::TMR_VAL_EXT
            | flags::RESET_REG_SUP,
    );
    t.bytes(&io_gas(pm::RESET, 1, 1)).u8(pm::RESET_VALUE);
    t.u16(0).u8(5); // ARM boot flags, FADT minor version 5
    t.u64(u64::from(facs)).u64(u64::from(dsdt));
    t.bytes(&io_gas(pm::PM1A_EVT, pm::PM1_EVT_LEN, 2));
    t.bytes(&[0; 12]); // X_PM1b_EVT_BLK
    t.bytes(&io_gas(pm::PM1A_CNT, pm::PM1_CNT_LEN, 2));
    t.bytes(&[0; 12 * 2]); // X_PM1b_CNT_BLK, X_PM2_CNT_BLK
    t.bytes(&io_gas(pm::PM_TMR, pm::PM_TMR_LEN, 4));
    t.bytes(&[0; 12 * 4]); // X_GPE0, X_GPE1, sleep control and status registers (not HW-reduced)
    t.bytes(b"CASTOR\0\0"); // hypervisor vendor identity
    let fadt = t.finish();
    debug_assert_eq!(fadt.len(), FADT_LEN);
    fadt
}

/// MADT flag: the platform also has dual 8259s (5.2.12, Table 5.20).
const PCAT_COMPAT: u32 = 1;

/// The MADT (5.2.12), revision 6: one enabled local APIC per CPU (processor UID = APIC ID),
/// the I/O APIC, the ISA interrupt source overrides, and LINT1 of every processor as NMI.
pub fn madt(p: &Platform) -> Vec<u8> {
    let mut t = Sdt::new(b"APIC", 6);
    t.u32(p.lapic_base).u32(PCAT_COMPAT);
    for id in 0..p.cpus {
        t.u8(0).u8(8).u8(id).u8(id).u32(1); // Processor Local APIC (5.2.12.2): enabled
    }
    let io = &p.ioapic;
    t.u8(1).u8(12).u8(io.id).u8(0).u32(io.base).u32(io.gsi_base); // I/O APIC (5.2.12.3)
    for &IsaOverride { irq, gsi, flags } in &p.overrides {
        t.u8(2).u8(10).u8(0).u8(irq).u32(gsi).u16(flags); // Interrupt Source Override (5.2.12.5)
    }
    t.u8(4).u8(6).u8(0xFF).u16(0).u8(1); // Local APIC NMI (5.2.12.7): all processors, LINT1
    t.finish()
}

/// A definition block (5.2.11.1): the DSDT, revision 2 (64-bit integers), holding `aml`.
pub fn dsdt(aml: &[u8]) -> Vec<u8> {
    let mut t = Sdt::new(b"DSDT", 2);
    t.bytes(aml);
    t.finish()
}
