// SPDX-License-Identifier: MIT OR Apache-2.0
//! The interrupt fabric of the guest's PC: the 8259A pair, the I/O APIC and the vCPU's local
//! APIC, wired as on a PC with an APIC (Intel MultiProcessor Specification 1.4, 3.6.2
//! "Interrupt Modes"; ACPI 6.5, 5.2.12 MADT).
//!
//! - Every ISA line goes to both the PIC and the I/O APIC ([`IrqSink`] for [`Interrupts`]):
//!   IRQ0 to I/O APIC pin 2 (the interrupt source override every PC's MADT lists), the others
//!   to the pin of the same number ([`ioapic_pin`]). Whichever controller the OS programs
//!   delivers; the other is masked.
//! - The PIC's INTR reaches the vCPU through the local APIC's LINT0 in ExtINT mode (virtual
//!   wire mode, MP spec 3.6.2.2), as firmware leaves it and as an OS keeps it until it switches
//!   to the I/O APIC; while LINT0 takes it ([`Lapic::accepts_pic_interrupts`]) a PIC request
//!   goes first, as KVM's `kvm_cpu_get_interrupt` does (ExtINT is not subject to the task
//!   priority, SDM Vol. 3A, 11.8.3.1), else the local APIC's highest deliverable vector.
//! - The EOI of a level-triggered vector reaches the I/O APIC (SDM Vol. 3A, 11.8.5).
//! - MMIO: the local APIC page at [`Lapic::mmio_base`] and the I/O APIC page at
//!   [`ioapic::BASE`].
//!
//! Time is an input (guest ns), as for the devices themselves.

use super::ioapic::{self, IoApic};
use super::irq::{IrqLine, IrqSink};
use super::lapic::{self, Lapic, LapicConfig};
use super::pic::Pic;
use crate::vmm::vcpu::Width;

/// The I/O APIC pin ISA line `line` is wired to: IRQ0 on pin 2, the others on their own number
/// (ACPI 6.5, 5.2.12.5; `acpi::Platform::pc` lists the same override).
pub const fn ioapic_pin(line: IrqLine) -> u8 {
    match line.number() {
        0 => 2,
        n => n,
    }
}

/// Size of the I/O APIC's register page.
const IOAPIC_PAGE: u64 = 0x1000;

/// The guest's interrupt controllers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupts {
    /// The 8259A pair.
    pub pic: Pic,
    /// The I/O APIC.
    pub ioapic: IoApic,
    /// The vCPU's local APIC.
    pub lapic: Lapic,
}

impl Interrupts {
    /// The controllers as firmware leaves them: the PIC as a BIOS programs it, the I/O APIC
    /// with every pin masked (ID 0, as `acpi::Platform::pc` describes it), the local APIC in
    /// virtual-wire mode.
    pub fn new(lapic: LapicConfig) -> Self {
        Self {
            pic: Pic::new(),
            ioapic: IoApic::new(0),
            lapic: Lapic::new(lapic),
        }
    }

    /// The vector the vCPU would take now, at guest time `now`: the PIC's through LINT0 in
    /// virtual-wire mode, else the local APIC's.
    #[inline]
    pub fn pending(&mut self, now: u64) -> Option<u8> {
        match self.pic_vector() {
            Some(v) => Some(v),
            None => self.lapic.pending(now),
        }
    }

    /// The interrupt-acknowledge cycle at guest time `now`, from the controller
    /// [`pending`](Self::pending) named.
    pub fn acknowledge(&mut self, now: u64) -> Option<u8> {
        if self.pic_vector().is_some() {
            self.pic.acknowledge()
        } else {
            self.lapic.acknowledge(now)
        }
    }

    /// The PIC's pending vector, if its INTR reaches the vCPU.
    #[inline]
    fn pic_vector(&self) -> Option<u8> {
        self.lapic
            .accepts_pic_interrupts()
            .then(|| self.pic.pending_vector())
            .flatten()
    }

    /// Whether guest-physical `gpa` is in the local or the I/O APIC's register page.
    pub fn decodes_mmio(&self, gpa: u64) -> bool {
        self.lapic_offset(gpa).is_some() || Self::ioapic_offset(gpa).is_some()
    }

    fn lapic_offset(&self, gpa: u64) -> Option<u64> {
        let base = self.lapic.mmio_base()?;
        (gpa.wrapping_sub(base) < lapic::PAGE_SIZE).then(|| gpa - base)
    }

    fn ioapic_offset(gpa: u64) -> Option<u64> {
        (gpa.wrapping_sub(ioapic::BASE) < IOAPIC_PAGE).then(|| gpa - ioapic::BASE)
    }

    /// A read of `width` bytes at `gpa` at guest time `now`; `None` outside both pages.
    pub fn mmio_read(&mut self, gpa: u64, width: Width, now: u64) -> Option<u64> {
        if let Some(offset) = self.lapic_offset(gpa) {
            Some(self.lapic.read(offset, width, now))
        } else {
            Self::ioapic_offset(gpa).map(|offset| self.ioapic.read(offset, width))
        }
    }

    /// A write of `width` bytes at `gpa` at guest time `now`; false outside both pages. A
    /// local APIC EOI of a level-triggered vector goes on to the I/O APIC.
    pub fn mmio_write(&mut self, gpa: u64, width: Width, value: u64, now: u64) -> bool {
        if let Some(offset) = self.lapic_offset(gpa) {
            if let Some(vector) = self.lapic.write(offset, width, value, now) {
                self.ioapic.eoi(vector, &mut self.lapic);
            }
            true
        } else if let Some(offset) = Self::ioapic_offset(gpa) {
            self.ioapic.write(offset, width, value, &mut self.lapic);
            true
        } else {
            false
        }
    }
}

impl Interrupts {
    /// Drives I/O APIC pin `pin` alone: a line beyond the ISA range (as a PCI or virtio-mmio
    /// device's), which the PIC does not see.
    pub fn set_pin_level(&mut self, pin: u8, high: bool) {
        self.ioapic.set_irq(pin, high, &mut self.lapic);
    }
}

impl IrqSink for Interrupts {
    /// Drives `line` on the PIC and on its I/O APIC pin.
    fn set_level(&mut self, line: IrqLine, high: bool) {
        self.pic.set_level(line, high);
        self.ioapic.set_irq(ioapic_pin(line), high, &mut self.lapic);
    }

    /// A request from `line` waits in the controller that delivers it: the PIC's IRR while the
    /// line is unmasked there and the PIC reaches the vCPU, or the local APIC's IRR for the
    /// vector of the line's unmasked I/O APIC pin. A line masked on both paths has nothing
    /// waiting (a new edge is lost, as on a PC).
    fn is_requested(&self, line: IrqLine) -> bool {
        let bit = 1 << line.number();
        let via_pic = self.lapic.accepts_pic_interrupts()
            && self.pic.imr() & bit == 0
            && self.pic.is_requested(line);
        let via_ioapic = self
            .ioapic
            .redirection(ioapic_pin(line))
            .is_some_and(|e| e & ioapic::MASKED == 0 && self.lapic.requested(e as u8));
        via_pic || via_ioapic
    }
}

#[cfg(test)]
mod tests;
