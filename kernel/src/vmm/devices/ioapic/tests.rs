// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the IOAPIC model, alone (messages recorded) and sending to the local
//! APIC model.

use alloc::string::ToString;
use alloc::vec::Vec;

use super::*;
use crate::testutil::{Rng, round_trip};
use crate::vmm::devices::lapic::{Lapic, LapicConfig, regs};
use crate::vmm::devices::state::{DeviceId, DeviceState, StateError, StateReader};

/// An APIC bus that records what is sent and accepts it unless told to refuse.
#[derive(Default)]
struct Bus {
    sent: Vec<Message>,
    refuse: bool,
}

impl ApicBus for Bus {
    fn deliver(&mut self, msg: Message) -> bool {
        self.sent.push(msg);
        !self.refuse
    }
}

impl Bus {
    /// Vectors sent since the last call.
    fn take(&mut self) -> Vec<u8> {
        self.sent.drain(..).map(|m| m.vector).collect()
    }
}

fn reg(io: &mut IoApic, bus: &mut Bus, index: u8) -> u32 {
    io.write(IOREGSEL, 4, u64::from(index), bus);
    io.read(IOWIN, 4) as u32
}

fn set_reg(io: &mut IoApic, bus: &mut Bus, index: u8, value: u32) {
    io.write(IOREGSEL, 4, u64::from(index), bus);
    io.write(IOWIN, 4, u64::from(value), bus);
}

/// Programs `pin`: destination first, then the low dword.
fn route(io: &mut IoApic, bus: &mut Bus, pin: u8, low: u32, destination: u8) {
    set_reg(io, bus, 0x11 + 2 * pin, u32::from(destination) << 24);
    set_reg(io, bus, 0x10 + 2 * pin, low);
}

const LEVEL_BIT: u32 = 1 << 15;
const MASK_BIT: u32 = 1 << 16;
const REMOTE_IRR_BIT: u32 = 1 << 14;

#[test]
fn identification_registers_and_reset_state() {
    let (mut io, mut bus) = (IoApic::new(0x12), Bus::default());
    assert_eq!(reg(&mut io, &mut bus, 0), 0x0200_0000, "4-bit ID");
    assert_eq!(
        reg(&mut io, &mut bus, 1),
        0x0017_0011,
        "version 0x11, 24 entries"
    );
    assert_eq!(reg(&mut io, &mut bus, 2), 0x0200_0000, "arbitration ID");
    set_reg(&mut io, &mut bus, 0, 0xFFFF_FFFF);
    set_reg(&mut io, &mut bus, 1, 0);
    assert_eq!(reg(&mut io, &mut bus, 0), 0x0F00_0000);
    assert_eq!(reg(&mut io, &mut bus, 1), VERSION_VALUE, "read-only");
    for pin in 0..PINS as u8 {
        assert_eq!(reg(&mut io, &mut bus, 0x10 + 2 * pin), MASK_BIT, "masked");
        assert_eq!(reg(&mut io, &mut bus, 0x11 + 2 * pin), 0);
    }
    set_reg(&mut io, &mut bus, 0x40, 0x1234);
    assert_eq!(reg(&mut io, &mut bus, 0x40), 0, "no register there");
    io.write(IOREGSEL, 4, 0x1234_5610, &mut bus);
    assert_eq!(io.read(IOREGSEL, 4), 0x10, "IOREGSEL holds 8 bits");
    assert_eq!(io.read(0x40, 4), 0, "no EOI register in version 0x11");
    assert!(bus.sent.is_empty());
}

#[test]
fn edge_pins_send_on_rising_edges_while_unmasked() {
    let (mut io, mut bus) = (IoApic::new(0), Bus::default());
    route(&mut io, &mut bus, 4, 0x0924, 3); // lowest priority, logical
    io.set_irq(4, true, &mut bus);
    assert_eq!(
        bus.sent,
        [Message {
            vector: 0x24,
            mode: DeliveryMode::LowestPriority,
            level_triggered: false,
            destination: 3,
            logical: true,
        }]
    );
    bus.sent.clear();
    io.set_irq(4, true, &mut bus);
    assert_eq!(bus.take(), [0u8; 0], "no edge while high");
    io.set_irq(4, false, &mut bus);
    io.set_irq(4, true, &mut bus);
    assert_eq!(bus.take(), [0x24]);
    io.set_irq(4, false, &mut bus);
    set_reg(&mut io, &mut bus, 0x18, MASK_BIT | 0x24);
    io.set_irq(4, true, &mut bus);
    set_reg(&mut io, &mut bus, 0x18, 0x24);
    assert_eq!(bus.take(), [0u8; 0], "an edge while masked is lost");
    io.eoi(0x24, &mut bus);
    assert_eq!(bus.take(), [0u8; 0], "EOIs do not concern edge pins");
    io.set_irq(24, true, &mut bus);
    io.set_irq(255, true, &mut bus);
    assert_eq!(bus.take(), [0u8; 0], "no such pins");
}

#[test]
fn level_pins_wait_for_the_eoi_and_send_again_while_asserted() {
    let (mut io, mut bus) = (IoApic::new(0), Bus::default());
    route(&mut io, &mut bus, 10, LEVEL_BIT | 0x3A, 0);
    route(&mut io, &mut bus, 11, LEVEL_BIT | 0x3A, 0);
    io.set_irq(10, true, &mut bus);
    assert!(bus.sent[0].level_triggered);
    assert_eq!(bus.take(), [0x3A]);
    assert_ne!(
        reg(&mut io, &mut bus, 0x24) & REMOTE_IRR_BIT,
        0,
        "remote IRR set"
    );
    io.set_irq(10, true, &mut bus);
    io.set_irq(11, true, &mut bus);
    assert_eq!(bus.take(), [0x3A], "pin 10 waits for its EOI, pin 11 sends");
    io.eoi(0x3B, &mut bus);
    assert_eq!(bus.take(), [0u8; 0], "another vector");
    io.eoi(0x3A, &mut bus);
    assert_eq!(bus.take(), [0x3A, 0x3A], "both pins still asserted");
    io.set_irq(10, false, &mut bus);
    io.set_irq(11, false, &mut bus);
    io.eoi(0x3A, &mut bus);
    assert_eq!(bus.take(), [0u8; 0]);
    assert_eq!(reg(&mut io, &mut bus, 0x24) & REMOTE_IRR_BIT, 0);
    io.set_irq(10, true, &mut bus);
    assert_eq!(bus.take(), [0x3A]);
}

#[test]
fn masked_level_pins_send_when_unmasked_and_refusals_leave_remote_irr_clear() {
    let (mut io, mut bus) = (IoApic::new(0), Bus::default());
    route(&mut io, &mut bus, 5, MASK_BIT | LEVEL_BIT | 0x50, 0);
    io.set_irq(5, true, &mut bus);
    assert_eq!(bus.take(), [0u8; 0]);
    bus.refuse = true;
    set_reg(&mut io, &mut bus, 0x1A, LEVEL_BIT | 0x50);
    assert_eq!(bus.take(), [0x50], "sent on unmask");
    assert_eq!(
        reg(&mut io, &mut bus, 0x1A) & REMOTE_IRR_BIT,
        0,
        "nobody accepted it"
    );
    bus.refuse = false;
    io.set_irq(5, true, &mut bus);
    assert_eq!(bus.take(), [0x50], "tried again");
    assert_ne!(reg(&mut io, &mut bus, 0x1A) & REMOTE_IRR_BIT, 0);
    // Read-only bits are not written; switching to edge clears remote IRR.
    set_reg(&mut io, &mut bus, 0x1A, LEVEL_BIT | 0x7051);
    assert_eq!(
        reg(&mut io, &mut bus, 0x1A),
        LEVEL_BIT | REMOTE_IRR_BIT | 0x2051
    );
    set_reg(&mut io, &mut bus, 0x1A, MASK_BIT | 0x51);
    assert_eq!(reg(&mut io, &mut bus, 0x1A), MASK_BIT | 0x51);
    set_reg(&mut io, &mut bus, 0x1B, 0xFFFF_FFFF);
    assert_eq!(
        reg(&mut io, &mut bus, 0x1B),
        0xFF00_0000,
        "destination only"
    );
    assert_eq!(io.redirection(5), Some(0xFF00_0000_0001_0051));
    assert_eq!(io.redirection(24), None);
}

#[test]
fn narrow_accesses_reach_the_bytes_they_cover() {
    let (mut io, mut bus) = (IoApic::new(0), Bus::default());
    io.write(IOREGSEL, 1, 0x14, &mut bus);
    io.write(IOWIN, 1, 0x33, &mut bus);
    assert_eq!(io.read(IOWIN, 4), 0x1_0033, "the other bytes kept");
    io.write(IOWIN + 2, 1, 0x00, &mut bus);
    assert_eq!(io.read(IOWIN, 4), 0x33, "unmasked through byte 2");
    assert_eq!(io.read(IOWIN + 1, 2), 0);
    assert_eq!(io.read(IOREGSEL, 8), 0x14, "bytes 4-7 of a slot read 0");
    io.write(0x0E, 4, 0x2200_FFFF, &mut bus);
    assert_eq!(
        io.read(IOWIN, 4),
        0x2200,
        "the IOWIN bytes of a straddling write"
    );
    assert_eq!(io.read(IOREGSEL, 4), 0x14);
    io.write(0x20, 4, 0xFFFF_FFFF, &mut bus);
    assert_eq!(io.read(0x20, 4), 0);
    assert!(bus.sent.is_empty());
}

/// The IOAPIC in front of the local APIC model: a level-triggered interrupt is delivered,
/// acknowledged, and its EOI returns to the IOAPIC, which sends again while the line is high.
#[test]
fn level_interrupts_round_trip_through_the_local_apic() {
    let mut lapic = Lapic::new(LapicConfig {
        apic_id: 1,
        timer_hz: 1_000_000_000,
        tsc_hz: 1_000_000_000,
    });
    let mut io = IoApic::new(0);
    io.write(IOREGSEL, 4, 0x11 + 2 * 9, &mut lapic);
    io.write(IOWIN, 4, 0x0100_0000, &mut lapic);
    io.write(IOREGSEL, 4, 0x10 + 2 * 9, &mut lapic);
    io.write(IOWIN, 4, u64::from(LEVEL_BIT | 0x69), &mut lapic);
    io.set_irq(9, true, &mut lapic);
    assert_eq!(lapic.pending(0), Some(0x69));
    assert_eq!(lapic.acknowledge(0), Some(0x69));
    let eoi = lapic.write(regs::EOI, 4, 0, 0);
    assert_eq!(eoi, Some(0x69), "level-triggered: EOI for the IOAPIC");
    io.eoi(0x69, &mut lapic);
    assert_eq!(lapic.pending(0), Some(0x69), "still asserted: sent again");
    assert_eq!(lapic.acknowledge(0), Some(0x69));
    io.set_irq(9, false, &mut lapic);
    io.eoi(lapic.eoi().unwrap(), &mut lapic);
    assert_eq!(lapic.pending(0), None);
    // Addressed to another APIC: not accepted, remote IRR stays clear.
    io.write(IOREGSEL, 4, 0x11 + 2 * 9, &mut lapic);
    io.write(IOWIN, 4, 0x0200_0000, &mut lapic);
    io.set_irq(9, true, &mut lapic);
    assert_eq!(lapic.pending(0), None);
    assert_eq!(io.redirection(9).unwrap() & REMOTE_IRR, 0);
}

/// Any offset, width, value, pin and EOI: nothing panics and the state stays valid.
#[test]
fn hostile_traffic_does_not_panic() {
    let (mut io, mut bus) = (IoApic::new(0), Bus::default());
    let mut rng = Rng::new(0x10A);
    for offset in (0..0x1010).chain([u64::MAX - 2, u64::MAX]) {
        for width in [0, 1, 2, 3, 4, 8, 9] {
            let _ = io.read(offset, width);
            io.write(offset, width, rng.next(), &mut bus);
        }
        io.set_irq(rng.next() as u8, rng.below(2) == 0, &mut bus);
        io.eoi(rng.next() as u8, &mut bus);
    }
    round_trip(&io);
}

/// Random register and pin traffic; after every step the saved state restores to an equal
/// IOAPIC that re-encodes to the same bytes.
#[test]
fn every_reachable_state_round_trips_exactly() {
    let (mut io, mut bus) = (IoApic::new(3), Bus::default());
    let mut rng = Rng::new(0x5EED);
    for _ in 0..20_000 {
        let x = rng.next();
        bus.refuse = x & 1 << 40 != 0;
        match x % 5 {
            0 => io.write(IOREGSEL, 4, 0x10 + (x >> 8) % 0x32, &mut bus),
            1 => io.write(IOWIN, 4, (x >> 8) & !u64::from(MASK_BIT), &mut bus),
            2 | 3 => io.set_irq((x >> 8) as u8 % 26, x & 1 << 20 != 0, &mut bus),
            _ => io.eoi((x >> 8) as u8, &mut bus),
        }
        assert_eq!(round_trip(&io), io);
    }
    assert!(bus.sent.len() > 1000, "the traffic delivered interrupts");
}

#[test]
fn impossible_states_are_refused() {
    assert_eq!(DeviceId::ioapic(0).to_string(), "IOAPIC 0");
    let mut io = IoApic::new(0);
    let good = io.state_bytes();
    let refuse =
        |bytes: &[u8], field: &str| match IoApic::restore_state(&mut StateReader::new(bytes)) {
            Err(StateError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        };
    let mut b = good.clone();
    b[0] = 0x10;
    refuse(&b, "IOAPIC ID");
    io.redirection[3] = 1 << 12; // delivery status
    refuse(&io.state_bytes(), "IOAPIC redirection entry");
    io.redirection[3] = REMOTE_IRR;
    refuse(
        &io.state_bytes(),
        "IOAPIC remote IRR on an edge-triggered pin",
    );
    io.redirection[3] = REMOTE_IRR | LEVEL;
    io.asserted = 1 << 24;
    refuse(&io.state_bytes(), "IOAPIC pin states");
    io.asserted = 1 << 23;
    assert_eq!(round_trip(&io), io);
    assert!(matches!(
        IoApic::from_state_bytes(&good[..good.len() - 1]),
        Err(StateError::Truncated { .. })
    ));
}
