// SPDX-License-Identifier: MIT OR Apache-2.0
//! Where the guest's network card sits: a virtio-net device (`devices::virtio`) on the
//! virtio-mmio transport, one register window in the PCI hole and one I/O APIC pin, described
//! to the guest by a DSDT device with `_HID` `LNRO0005` — the id Linux's `virtio_mmio` driver
//! matches through ACPI (Debian builds it as a module and does not enable the command-line
//! device list, so ACPI is how its driver finds the device; Firecracker describes its devices
//! the same way).
//!
//! Why virtio-mmio rather than virtio-pci: it needs no virtual PCI bus (configuration space,
//! BAR sizing, MSI-X tables, interrupt routing tables), only a register page and a
//! level-triggered interrupt, and unmodified Debian kernels drive it with their own modules.
//!
//! The interrupt is I/O APIC pin [`GSI`], above the ISA range: for GSIs 0-15 Linux takes the
//! trigger mode from the MADT's ISA defaults (edge) rather than from the device's `_CRS`, and
//! the virtio-mmio interrupt is a level (the interrupt status register is non-zero).

use alloc::vec::Vec;

use super::acpi::aml::{self, Resource};
use super::devices::virtio::VirtioNet;
use super::ram_layout::MAX_RAM;

/// Guest-physical base of the register window: the start of the PCI hole, above any guest RAM.
pub const BASE: u64 = MAX_RAM;
/// The I/O APIC pin (global system interrupt) of the device's interrupt.
pub const GSI: u8 = 16;

// The window lies between guest RAM and the I/O APIC's page.
const _: () = assert!(BASE + VirtioNet::MMIO_SIZE <= super::devices::ioapic::BASE);

/// The offset of guest-physical `gpa` in the register window, if it is inside.
pub fn offset(gpa: u64) -> Option<u64> {
    let offset = gpa.wrapping_sub(BASE);
    (offset < VirtioNet::MMIO_SIZE).then_some(offset)
}

/// The DSDT device that describes the card: `_HID` "LNRO0005", `_UID` 0, and `_CRS` with the
/// register window (`Memory32Fixed`) and the interrupt (`Interrupt`, level, active high,
/// exclusive) (ACPI 6.5, 6.1.5, 6.1.12, 6.2.2).
pub fn acpi_device() -> Vec<u8> {
    aml::device(
        "VIO0",
        &[
            aml::name("_HID", &aml::string("LNRO0005")),
            aml::name("_UID", &aml::integer(0)),
            aml::name(
                "_CRS",
                &aml::resource_template(&[
                    Resource::Memory32Fixed {
                        writable: true,
                        base: BASE as u32,
                        len: VirtioNet::MMIO_SIZE as u32,
                    },
                    Resource::Interrupt {
                        gsi: u32::from(GSI),
                        level: true,
                        active_low: false,
                        shared: false,
                    },
                ]),
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_decodes_only_its_own_bytes() {
        assert_eq!(offset(BASE), Some(0));
        assert_eq!(offset(BASE + 0x1FF), Some(0x1FF));
        assert_eq!(offset(BASE + VirtioNet::MMIO_SIZE), None);
        assert_eq!(offset(BASE - 1), None);
        assert_eq!(offset(0), None);
    }

    #[test]
    fn the_acpi_device_names_the_window_and_a_level_interrupt() {
        let dev = acpi_device();
        let find = |needle: &[u8]| dev.windows(needle.len()).any(|w| w == needle);
        assert!(find(b"VIO0\x08_HID\x0DLNRO0005\x00"));
        let mut window = alloc::vec![0x86, 9, 0, 1];
        window.extend_from_slice(&(BASE as u32).to_le_bytes());
        window.extend_from_slice(&(VirtioNet::MMIO_SIZE as u32).to_le_bytes());
        assert!(find(&window), "Memory32Fixed");
        assert!(find(&[0x89, 6, 0, 0x01, 1, GSI, 0, 0, 0]), "Interrupt");
    }
}
