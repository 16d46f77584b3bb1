// SPDX-License-Identifier: MIT OR Apache-2.0
//! The DSDT's AML: the soft-off sleep state and the legacy PC devices of the platform.

use alloc::vec::Vec;

use super::Platform;
use super::aml::{Resource, device, eisa_id, integer, name, package, resource_template, scope};
use crate::vmm::devices::pm;

/// A fixed I/O range of `len` ports at `port`.
fn io(port: u16, len: u8) -> Resource {
    Resource::Io {
        min: port,
        max: port,
        align: 1,
        len,
    }
}

/// A device with a hardware id, a unique id and current resources (ACPI 6.5, 6.1.5 `_HID`,
/// 6.1.12 `_UID`, 6.2.2 `_CRS`).
fn pnp_device(path: &str, hid: &str, uid: u64, crs: &[Resource]) -> Vec<u8> {
    device(
        path,
        &[
            name("_HID", &eisa_id(hid)),
            name("_UID", &integer(uid)),
            name("_CRS", &resource_template(crs)),
        ],
    )
}

/// The DSDT's AML:
/// - `\_S5`: the soft-off state's SLP_TYP for PM1a and PM1b (ACPI 6.5, 7.4.2 "\_Sx (System
///   States)"), the value `devices::pm` powers off on;
/// - in `\_SB`: COM1 (`PNP0501`, ports 0x3F8-0x3FF, IRQ 4), the RTC (`PNP0B00`, 0x70-0x71,
///   IRQ 8), the PIT (`PNP0100`, 0x40-0x43, IRQ 0) and the 8259 pair (`PNP0000`, 0x20-0x21,
///   0xA0-0xA1, cascade on IRQ 2), then the platform's extra devices.
pub fn aml(p: &Platform) -> Vec<u8> {
    let s5 = integer(u64::from(pm::S5_SLP_TYP));
    let mut sb = alloc::vec![
        pnp_device(
            "COM1",
            "PNP0501",
            1,
            &[io(0x3F8, 8), Resource::IrqNoFlags(4)]
        ),
        pnp_device("RTC", "PNP0B00", 0, &[io(0x70, 2), Resource::IrqNoFlags(8)]),
        pnp_device("TMR", "PNP0100", 0, &[io(0x40, 4), Resource::IrqNoFlags(0)]),
        pnp_device(
            "PIC",
            "PNP0000",
            0,
            &[io(0x20, 2), io(0xA0, 2), Resource::IrqNoFlags(2)]
        ),
    ];
    sb.extend(p.devices.iter().cloned());
    let mut out = name("\\_S5", &package(&[s5.clone(), s5, integer(0), integer(0)]));
    out.extend(scope("\\_SB", &sb));
    out
}
