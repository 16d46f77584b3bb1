// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the interrupt fabric: ISA lines to the PIC and the I/O APIC, PIC versus
//! local APIC in `pending`, EOIs back to the I/O APIC, and the MMIO pages.

use super::*;
use crate::vmm::devices::lapic::regs;

const LAPIC: u64 = lapic::DEFAULT_BASE;

fn fabric() -> Interrupts {
    Interrupts::new(LapicConfig {
        apic_id: 0,
        timer_hz: 1_000_000_000,
        tsc_hz: 1_000_000_000,
    })
}

/// Programs the PIC as an OS does: vectors 0x20-0x2F, only the lines in `unmasked` open.
fn program_pic(f: &mut Interrupts, unmasked: u16) {
    for (port, bytes) in [
        (0x20, [0x11u8, 0x20, 0x04, 0x01]),
        (0xA0, [0x11, 0x28, 0x02, 0x01]),
    ] {
        f.pic.io_write(port, 1, u32::from(bytes[0]));
        for b in &bytes[1..] {
            f.pic.io_write(port + 1, 1, u32::from(*b));
        }
    }
    f.pic.io_write(0x21, 1, u32::from(!unmasked & 0xFF));
    f.pic.io_write(0xA1, 1, u32::from(!unmasked >> 8));
}

fn lapic_write(f: &mut Interrupts, offset: u64, value: u32) {
    assert!(f.mmio_write(LAPIC + offset, 4, u64::from(value), 0));
}

fn ioapic_route(f: &mut Interrupts, pin: u8, entry: u64) {
    let index = 0x10 + 2 * u64::from(pin);
    for (i, half) in [(index, entry as u32), (index + 1, (entry >> 32) as u32)] {
        assert!(f.mmio_write(ioapic::BASE + ioapic::IOREGSEL, 4, i, 0));
        assert!(f.mmio_write(ioapic::BASE + ioapic::IOWIN, 4, u64::from(half), 0));
    }
}

/// Masks the PIC, enables the local APIC and routes pin `pin` to `vector` (edge or level).
fn apic_mode(f: &mut Interrupts, pin: u8, vector: u8, level: bool) {
    program_pic(f, 0);
    lapic_write(f, regs::SVR, 0x1FF);
    ioapic_route(f, pin, u64::from(vector) | if level { 1 << 15 } else { 0 });
}

#[test]
fn isa_lines_map_to_their_pins_with_irq0_on_pin_2() {
    assert_eq!(ioapic_pin(IrqLine::PIT), 2);
    assert_eq!(ioapic_pin(IrqLine::COM1), 4);
    assert_eq!(ioapic_pin(IrqLine::RTC), 8);
    assert_eq!(ioapic_pin(IrqLine::new(9).unwrap()), 9);
}

#[test]
fn in_virtual_wire_mode_the_pic_delivers() {
    let mut f = fabric();
    program_pic(&mut f, 1);
    f.pulse(IrqLine::PIT);
    assert_eq!(f.pending(0), Some(0x20));
    assert!(f.is_requested(IrqLine::PIT), "a second tick must wait");
    assert_eq!(f.acknowledge(0), Some(0x20));
    assert!(!f.is_requested(IrqLine::PIT));
    assert_eq!(f.pending(0), None);
}

#[test]
fn a_pic_request_goes_before_the_local_apics() {
    let mut f = fabric();
    program_pic(&mut f, 1);
    // A self-IPI of a high vector waits in the local APIC.
    lapic_write(&mut f, regs::ICR_LOW, 0x4_00F0);
    f.pulse(IrqLine::PIT);
    assert_eq!(f.pending(0), Some(0x20));
    assert_eq!(f.acknowledge(0), Some(0x20));
    assert_eq!(f.pending(0), Some(0xF0));
    assert_eq!(f.acknowledge(0), Some(0xF0));
}

#[test]
fn with_lint0_masked_only_the_local_apic_delivers() {
    let mut f = fabric();
    program_pic(&mut f, 1);
    lapic_write(&mut f, 0x350, 0x1_0700);
    f.pulse(IrqLine::PIT);
    assert_eq!(
        f.pending(0),
        None,
        "the PIC's INTR no longer reaches the vCPU"
    );
    assert!(
        !f.is_requested(IrqLine::PIT),
        "nothing can take the request"
    );
}

#[test]
fn isa_lines_reach_the_ioapic_and_the_local_apic() {
    let mut f = fabric();
    apic_mode(&mut f, 2, 0x30, false);
    f.pulse(IrqLine::PIT);
    assert!(
        f.is_requested(IrqLine::PIT),
        "the vector waits in the local APIC's IRR"
    );
    assert_eq!(f.pending(0), Some(0x30));
    assert_eq!(f.acknowledge(0), Some(0x30));
    assert!(!f.is_requested(IrqLine::PIT));
    // Pin 0 is not IRQ0's: routing it delivers nothing for the PIT.
    ioapic_route(&mut f, 2, 1 << 16);
    ioapic_route(&mut f, 0, 0x31);
    f.pulse(IrqLine::PIT);
    assert_eq!(f.pending(0), None);
    assert!(!f.is_requested(IrqLine::PIT));
}

#[test]
fn a_level_eoi_reaches_the_ioapic_and_a_line_still_high_sends_again() {
    let mut f = fabric();
    apic_mode(&mut f, 9, 0x39, true);
    let sci = IrqLine::new(9).unwrap();
    f.raise(sci);
    assert_eq!(f.acknowledge(0), Some(0x39));
    assert_ne!(
        f.ioapic.redirection(9).unwrap() & (1 << 14),
        0,
        "remote IRR"
    );
    lapic_write(&mut f, regs::EOI, 0);
    assert_eq!(
        f.ioapic.redirection(9).unwrap() & (1 << 14),
        1 << 14,
        "still asserted: sent again, remote IRR set again"
    );
    assert_eq!(f.acknowledge(0), Some(0x39));
    f.lower(sci);
    lapic_write(&mut f, regs::EOI, 0);
    assert_eq!(f.ioapic.redirection(9).unwrap() & (1 << 14), 0);
    assert_eq!(f.pending(0), None);
}

#[test]
fn mmio_decodes_both_pages_only() {
    let mut f = fabric();
    assert!(f.decodes_mmio(LAPIC) && f.decodes_mmio(LAPIC + 0xFFF));
    assert!(f.decodes_mmio(ioapic::BASE + 0x10));
    assert!(!f.decodes_mmio(LAPIC + 0x1000) && !f.decodes_mmio(ioapic::BASE - 1));
    assert_eq!(f.mmio_read(LAPIC + regs::VERSION, 4, 0), Some(0x0006_0014));
    assert!(f.mmio_write(ioapic::BASE, 4, 1, 0));
    assert_eq!(
        f.mmio_read(ioapic::BASE + ioapic::IOWIN, 4, 0),
        Some(u64::from(ioapic::VERSION_VALUE))
    );
    assert_eq!(f.mmio_read(0xFED0_0000, 4, 0), None);
    assert!(!f.mmio_write(0xFED0_0000, 4, 0, 0));
    // A globally disabled local APIC no longer decodes its page.
    f.lapic.write_apic_base_msr(LAPIC, 0).unwrap();
    assert!(!f.decodes_mmio(LAPIC));
    assert!(f.decodes_mmio(ioapic::BASE));
}
