// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the local APIC model: registers, priorities, EOI, masking, errors,
//! IPIs, IA32_APIC_BASE, hostile accesses and the saved state (the timer is in
//! `timer_tests.rs`).

use super::*;
use crate::testutil::{Rng, round_trip};
use alloc::string::ToString;

use crate::vmm::devices::state::{DeviceId, DeviceState, StateError, StateReader};

/// A 1 GHz timer clock: one clock per nanosecond.
pub(super) const HZ: u64 = 1_000_000_000;
/// A 2 GHz guest TSC.
pub(super) const TSC_HZ: u64 = 2_000_000_000;

pub(super) fn lapic_with_id(apic_id: u8) -> Lapic {
    Lapic::new(LapicConfig {
        apic_id,
        timer_hz: HZ,
        tsc_hz: TSC_HZ,
    })
}

pub(super) fn lapic() -> Lapic {
    lapic_with_id(0)
}

/// A 32-bit register read at the APIC's current time.
pub(super) fn rd(l: &mut Lapic, offset: u64) -> u32 {
    l.read(offset, 4, l.now) as u32
}

/// A 32-bit register write at the APIC's current time; returns the EOI for the IOAPIC.
pub(super) fn wr(l: &mut Lapic, offset: u64, value: u32) -> Option<u8> {
    l.write(offset, 4, u64::from(value), l.now)
}

/// Acknowledges the pending vector (which must be `v`).
fn take(l: &mut Lapic, v: u8) {
    assert_eq!(l.pending(0), Some(v));
    assert_eq!(l.acknowledge(0), Some(v));
}

#[test]
fn firmware_state_and_read_only_registers() {
    let mut l = lapic_with_id(3);
    assert_eq!(rd(&mut l, regs::ID), 0x0300_0000);
    assert_eq!(
        rd(&mut l, regs::VERSION),
        0x0006_0014,
        "7 LVTs, no EOI suppression"
    );
    assert_eq!(rd(&mut l, regs::SVR), 0x1FF);
    assert_eq!(rd(&mut l, 0x350), 0x8700, "LINT0: ExtINT");
    assert_eq!(rd(&mut l, 0x360), 0x8400, "LINT1: NMI");
    for off in [
        regs::LVT_CMCI,
        regs::LVT_TIMER,
        0x330,
        0x340,
        regs::LVT_ERROR,
    ] {
        assert_eq!(rd(&mut l, off), LVT_MASKED, "{off:#x}");
    }
    assert_eq!(rd(&mut l, regs::DFR), u32::MAX);
    assert_eq!(l.apic_base_msr(), 0xFEE0_0900);
    assert_eq!(l.mmio_base(), Some(0xFEE0_0000));
    assert!(l.accepts_pic_interrupts());
    for off in [
        regs::ID,
        regs::VERSION,
        regs::PPR,
        regs::APR,
        regs::IRR,
        regs::RRD,
    ] {
        assert_eq!(wr(&mut l, off, 0xFFFF_FFFF), None);
    }
    assert_eq!(rd(&mut l, regs::ID), 0x0300_0000, "the ID is read-only");
    assert_eq!(rd(&mut l, regs::VERSION), 0x0006_0014);
    assert_eq!(rd(&mut l, regs::IRR), 0);
    // Writable bits only.
    wr(&mut l, regs::LDR, 0xFFFF_FFFF);
    wr(&mut l, regs::DFR, 0);
    wr(&mut l, regs::ICR_HIGH, 0xFFFF_FFFF);
    wr(&mut l, regs::TIMER_DIVIDE, 0xFFFF_FFFF);
    wr(&mut l, regs::TPR, 0x1FF);
    assert_eq!(rd(&mut l, regs::LDR), 0xFF00_0000);
    assert_eq!(rd(&mut l, regs::DFR), 0x0FFF_FFFF);
    assert_eq!(rd(&mut l, regs::ICR_HIGH), 0xFF00_0000);
    assert_eq!(rd(&mut l, regs::TIMER_DIVIDE), 0xB);
    assert_eq!(rd(&mut l, regs::TPR), 0xFF);
    wr(&mut l, 0x350, 0xFFFF_FFFF);
    assert_eq!(
        rd(&mut l, 0x350),
        0x1_A7FF,
        "delivery status and remote IRR stay 0"
    );
}

#[test]
fn narrow_and_unaligned_reads_see_the_register_bytes() {
    let mut l = lapic();
    assert_eq!(l.read(regs::VERSION, 1, 0), 0x14);
    assert_eq!(l.read(regs::VERSION + 2, 1, 0), 0x06);
    assert_eq!(l.read(regs::VERSION + 2, 2, 0), 0x0006);
    assert_eq!(
        l.read(regs::VERSION, 8, 0),
        0x0006_0014,
        "bytes 4-7 of a slot read 0"
    );
    assert_eq!(l.read(regs::VERSION + 4, 4, 0), 0);
    assert_eq!(l.read(regs::SVR - 2, 4, 0), 0x01FF_0000, "across two slots");
    assert_eq!(l.read(PAGE_SIZE - 2, 4, 0), 0, "beyond the page");
    // Narrow or unaligned writes do nothing.
    assert_eq!(l.write(regs::TPR, 1, 0x50, 0), None);
    assert_eq!(l.write(regs::TPR + 4, 4, 0x50, 0), None);
    assert_eq!(rd(&mut l, regs::TPR), 0);
    assert_eq!(l.write(regs::TPR, 4, 0xAAAA_AAAA_0000_0050, 0), None);
    assert_eq!(
        rd(&mut l, regs::TPR),
        0x50,
        "a 4-byte write takes the low dword"
    );
}

#[test]
fn nested_interrupts_are_delivered_and_ended_in_priority_order() {
    let mut l = lapic();
    assert!(l.accept(0x31, false));
    assert!(l.accept(0x51, false));
    assert_eq!(
        rd(&mut l, regs::IRR + 0x10),
        1 << 17,
        "vector 0x31: word 1, bit 17"
    );
    assert_eq!(rd(&mut l, regs::IRR + 0x20), 1 << 17);
    take(&mut l, 0x51);
    assert_eq!(rd(&mut l, regs::ISR + 0x20), 1 << 17);
    assert_eq!(rd(&mut l, regs::PPR), 0x50);
    assert_eq!(
        l.pending(0),
        None,
        "class 3 waits below the class 5 in service"
    );
    assert!(l.accept(0x55, false));
    assert_eq!(l.pending(0), None, "the same class does not nest");
    assert!(l.accept(0x61, false));
    take(&mut l, 0x61);
    assert_eq!(rd(&mut l, regs::PPR), 0x60);
    assert_eq!(
        wr(&mut l, regs::EOI, 0),
        None,
        "edge-triggered: no EOI for the IOAPIC"
    );
    assert_eq!(
        rd(&mut l, regs::ISR + 0x30),
        0,
        "EOI ended the highest, 0x61"
    );
    assert_eq!(l.pending(0), None, "0x51 is still in service");
    assert_eq!(l.eoi(), None);
    take(&mut l, 0x55);
    assert_eq!(l.eoi(), None);
    take(&mut l, 0x31);
    assert_eq!(l.eoi(), None);
    assert_eq!(l.isr, Vectors::default());
    assert_eq!(l.eoi(), None, "EOI with nothing in service");
    assert_eq!(rd(&mut l, regs::PPR), 0);
}

#[test]
fn tpr_masks_whole_classes_and_ppr_and_apr_follow() {
    let mut l = lapic();
    wr(&mut l, regs::TPR, 0x50);
    l.accept(0x5F, false);
    assert_eq!(l.pending(0), None, "class 5 is masked by TPR 0x50");
    assert_eq!(rd(&mut l, regs::PPR), 0x50);
    l.accept(0x61, false);
    take(&mut l, 0x61);
    assert_eq!(
        rd(&mut l, regs::PPR),
        0x60,
        "the class in service outranks TPR"
    );
    wr(&mut l, regs::TPR, 0x7F);
    assert_eq!(rd(&mut l, regs::PPR), 0x7F);
    assert_eq!(rd(&mut l, regs::APR), 0x7F, "TPR above IRR and ISR");
    assert_eq!(l.cr8(), 7);
    l.set_cr8(0x12);
    assert_eq!(
        rd(&mut l, regs::TPR),
        0x20,
        "CR8 writes TPR[7:4] and clears TPR[3:0]"
    );
    assert_eq!(
        rd(&mut l, regs::APR),
        0x60,
        "the highest of TPR, ISR and IRR classes"
    );
    l.eoi();
    assert_eq!(l.pending(0), Some(0x5F));
    wr(&mut l, regs::TPR, 0);
    assert_eq!(rd(&mut l, regs::APR), 0x50);
}

#[test]
fn acknowledging_without_a_request_gives_the_spurious_vector() {
    let mut l = lapic();
    assert_eq!(l.acknowledge(0), Some(0xFF));
    wr(&mut l, regs::SVR, 0x13F);
    l.accept(0x40, false);
    wr(&mut l, regs::TPR, 0x40); // masked between pending and acknowledge
    assert_eq!(l.acknowledge(0), Some(0x3F));
    assert_eq!(
        l.isr,
        Vectors::default(),
        "the spurious vector is not in service"
    );
    assert_eq!(l.eoi(), None);
}

#[test]
fn level_triggered_vectors_report_their_eoi() {
    let mut l = lapic();
    l.accept(0x40, true);
    l.accept(0x80, false);
    assert_eq!(
        rd(&mut l, regs::TMR + 0x20),
        1,
        "TMR marks 0x40 level-triggered"
    );
    take(&mut l, 0x80);
    assert_eq!(wr(&mut l, regs::EOI, 0), None, "0x80 is edge-triggered");
    take(&mut l, 0x40);
    assert_eq!(wr(&mut l, regs::EOI, 0), Some(0x40));
    l.accept(0x40, false);
    assert_eq!(
        rd(&mut l, regs::TMR + 0x20),
        0,
        "accepted as edge: TMR cleared"
    );
}

#[test]
fn software_disable_masks_every_lvt_and_holds_requests() {
    let mut l = lapic();
    wr(&mut l, regs::LVT_TIMER, 0x2_0040);
    l.accept(0x50, false);
    wr(&mut l, regs::SVR, 0xFF);
    for off in [
        regs::LVT_CMCI,
        regs::LVT_TIMER,
        0x330,
        0x340,
        0x350,
        0x360,
        regs::LVT_ERROR,
    ] {
        assert_ne!(rd(&mut l, off) & LVT_MASKED, 0, "{off:#x} masked");
    }
    assert_eq!(
        rd(&mut l, regs::LVT_TIMER),
        0x3_0040,
        "the rest of the entry stays"
    );
    wr(&mut l, regs::LVT_TIMER, 0x40);
    assert_eq!(rd(&mut l, regs::LVT_TIMER), 0x1_0040, "cannot be unmasked");
    assert!(!l.accepts_pic_interrupts(), "LINT0 masked too");
    assert!(!l.accept(0x60, false), "no new interrupts");
    assert_eq!(
        l.pending(0),
        Some(0x50),
        "held requests are still delivered"
    );
    wr(&mut l, regs::SVR, 0x1FF);
    assert_eq!(
        rd(&mut l, regs::LVT_TIMER),
        0x1_0040,
        "still masked after re-enabling"
    );
    wr(&mut l, regs::LVT_TIMER, 0x40);
    assert_eq!(rd(&mut l, regs::LVT_TIMER), 0x40);
    wr(&mut l, 0x350, 0x700);
    assert!(l.accepts_pic_interrupts(), "virtual wire again");
    wr(&mut l, 0x350, 0x720);
    assert!(
        l.accepts_pic_interrupts(),
        "the vector field does not matter"
    );
    wr(&mut l, 0x350, 0x020);
    assert!(
        !l.accepts_pic_interrupts(),
        "LINT0 in fixed mode is not the PIC's wire"
    );
}

#[test]
fn esr_latches_on_write_and_raises_the_error_interrupt_once_per_write() {
    let mut l = lapic();
    wr(&mut l, regs::LVT_ERROR, 0xFE);
    assert!(!l.accept(5, false), "vectors below 16 are illegal");
    assert_eq!(l.irr.0[0], 0);
    assert_eq!(rd(&mut l, regs::ESR), 0, "nothing latched before a write");
    assert_eq!(l.pending(0), Some(0xFE), "the error interrupt");
    wr(&mut l, regs::ESR, 0);
    assert_eq!(rd(&mut l, regs::ESR), regs::ESR_RECEIVE_ILLEGAL);
    wr(&mut l, regs::ESR, 0);
    assert_eq!(
        rd(&mut l, regs::ESR),
        0,
        "the write cleared what was latched"
    );
    l.irr.put(0xFE, false);
    wr(&mut l, regs::ICR_LOW, 0x4_0003);
    assert_eq!(l.pending(0), Some(0xFE), "re-armed by the ESR write");
    l.irr.put(0xFE, false);
    l.accept(7, false);
    assert_eq!(
        l.pending(0),
        None,
        "not re-armed: no second error interrupt"
    );
    wr(&mut l, regs::ESR, 0);
    assert_eq!(
        rd(&mut l, regs::ESR),
        regs::ESR_SEND_ILLEGAL | regs::ESR_RECEIVE_ILLEGAL
    );
    // An illegal error vector logs its own error instead of looping.
    wr(&mut l, regs::LVT_ERROR, 0x02);
    l.accept(1, false);
    wr(&mut l, regs::ESR, 0);
    assert_eq!(rd(&mut l, regs::ESR), regs::ESR_RECEIVE_ILLEGAL);
    assert_eq!(l.irr, Vectors::default());
}

#[test]
fn ipis_reach_this_apic_only_when_addressed_to_it() {
    let mut l = lapic_with_id(2);
    let send = |l: &mut Lapic, high: u32, low: u32| {
        wr(l, regs::ICR_HIGH, high);
        wr(l, regs::ICR_LOW, low);
        let got = l.irr.highest();
        l.irr = Vectors::default();
        got
    };
    assert_eq!(send(&mut l, 0, 0x4_0045), Some(0x45), "shorthand self");
    assert_eq!(
        rd(&mut l, regs::ICR_LOW),
        0x4_0045,
        "delivery status reads idle"
    );
    assert_eq!(send(&mut l, 0, 0x8_0046), Some(0x46), "all including self");
    assert_eq!(send(&mut l, 0, 0xC_0047), None, "all excluding self");
    assert_eq!(
        send(&mut l, 0, 0x4_0147),
        None,
        "self takes fixed delivery only"
    );
    assert_eq!(
        send(&mut l, 0x0200_0000, 0x48),
        Some(0x48),
        "physical: own ID"
    );
    assert_eq!(
        send(&mut l, 0x0200_0000, 0x148),
        Some(0x48),
        "lowest priority"
    );
    assert_eq!(
        send(&mut l, 0x0300_0000, 0x49),
        None,
        "physical: another ID"
    );
    assert_eq!(send(&mut l, 0xFF00_0000, 0x4A), Some(0x4A), "broadcast");
    assert_eq!(
        send(&mut l, 0x0200_0000, 0x44B),
        None,
        "NMI is not delivered"
    );
    // Logical, flat model: a bit in common with LDR.
    wr(&mut l, regs::LDR, 0x0600_0000);
    assert_eq!(send(&mut l, 0x0400_0000, 0x84C), Some(0x4C));
    assert_eq!(send(&mut l, 0x0900_0000, 0x84C), None);
    // Cluster model: same cluster, a member bit in common.
    wr(&mut l, regs::DFR, 0x0FFF_FFFF);
    wr(&mut l, regs::LDR, 0x2100_0000);
    assert_eq!(send(&mut l, 0x2300_0000, 0x84D), Some(0x4D));
    assert_eq!(send(&mut l, 0x1100_0000, 0x84D), None, "another cluster");
    assert_eq!(send(&mut l, 0x2200_0000, 0x84D), None, "another member");
    wr(&mut l, regs::DFR, 0x5FFF_FFFF);
    assert_eq!(send(&mut l, 0x2100_0000, 0x84D), None, "reserved model");
    // An illegal vector to self: logged as sent and as received.
    assert_eq!(send(&mut l, 0, 0x4_000F), None);
    wr(&mut l, regs::ESR, 0);
    assert_eq!(
        rd(&mut l, regs::ESR),
        regs::ESR_SEND_ILLEGAL | regs::ESR_RECEIVE_ILLEGAL
    );
    assert_eq!(send(&mut l, 0, 0xC_0003), None);
    wr(&mut l, regs::ESR, 0);
    assert_eq!(
        rd(&mut l, regs::ESR),
        regs::ESR_SEND_ILLEGAL,
        "sent to nobody"
    );
}

#[test]
fn the_bus_delivers_vectored_messages_to_their_destination() {
    let mut l = lapic_with_id(1);
    let msg = |vector, mode, destination| Message {
        vector,
        mode,
        level_triggered: true,
        destination,
        logical: false,
    };
    assert!(l.deliver(msg(0x30, DeliveryMode::Fixed, 1)));
    assert!(l.tmr.get(0x30));
    assert!(l.requested(0x30));
    assert!(l.deliver(msg(0x31, DeliveryMode::LowestPriority, 1)));
    assert!(!l.deliver(msg(0x32, DeliveryMode::Fixed, 0)));
    for mode in [DeliveryMode::Nmi, DeliveryMode::ExtInt, DeliveryMode::Init] {
        assert!(!l.deliver(msg(0x33, mode, 1)), "{mode:?}");
    }
    assert!(!l.deliver(msg(0x0E, DeliveryMode::Fixed, 1)));
    assert_eq!(l.esr_pending, regs::ESR_RECEIVE_ILLEGAL);
}

#[test]
fn apic_base_msr_enables_and_disables_but_never_moves() {
    let mut l = lapic();
    let base = l.apic_base_msr();
    assert_eq!(l.write_apic_base_msr(base, 0), Ok(()));
    assert_eq!(l.write_apic_base_msr(base & !APIC_BASE_BSP, 0), Ok(()));
    assert_eq!(l.apic_base_msr(), base, "BSP is read-only");
    for bad in [
        0xFEF0_0900,
        base | APIC_BASE_X2APIC,
        base | 1,
        base | 1 << 9,
        base | 1 << 40,
    ] {
        assert_eq!(l.write_apic_base_msr(bad, 0), Err(MsrFault), "{bad:#x}");
    }
    assert_eq!(l.apic_base_msr(), base);
    wr(&mut l, regs::TPR, 0x20);
    l.accept(0x40, false);
    assert_eq!(l.write_apic_base_msr(base & !APIC_BASE_ENABLE, 0), Ok(()));
    assert_eq!(l.apic_base_msr(), 0xFEE0_0100);
    assert_eq!(l.mmio_base(), None);
    assert_eq!(
        l.read(regs::VERSION, 4, 0),
        0xFFFF_FFFF,
        "the page is not decoded"
    );
    assert_eq!(l.read(regs::VERSION, 1, 0), 0xFF);
    assert_eq!(l.write(regs::TPR, 4, 0x30, 0), None);
    assert!(!l.accept(0x41, false));
    assert_eq!(l.pending(0), None, "the request was lost with the state");
    assert_eq!(l.acknowledge(0), None);
    assert!(l.accepts_pic_interrupts(), "the PIC drives INTR directly");
    l.set_cr8(5);
    round_trip(&l);
    assert_eq!(l.write_apic_base_msr(base, 0), Ok(()));
    assert_eq!(
        rd(&mut l, regs::SVR),
        0xFF,
        "power-up state: software-disabled"
    );
    assert_eq!(rd(&mut l, regs::TPR), 0);
    assert_eq!(rd(&mut l, 0x350), LVT_MASKED);
    assert!(!l.accepts_pic_interrupts());
}

/// Every offset of the page (and some beyond) with every width, read and written with random
/// values: nothing panics and the APIC stays in a state that saves and restores.
#[test]
fn hostile_accesses_anywhere_do_not_panic() {
    let mut rng = Rng::new(0xA91C);
    let mut l = lapic();
    let offsets = (0..PAGE_SIZE + 16).chain([u64::MAX - 3, u64::MAX, 1 << 40]);
    for (step, offset) in offsets.enumerate() {
        for width in [0, 1, 2, 3, 4, 8, 9, 255] {
            let now = step as u64 * 10;
            let _ = l.read(offset, width, now);
            let _ = l.write(offset, width, rng.next(), now);
            let _ = l.pending(now);
        }
        if step % 512 == 0 {
            round_trip(&l);
        }
    }
    round_trip(&l);
}

/// Random traffic of every kind; after each step the state restores to an equal APIC that
/// re-encodes to the same bytes, and the copy then behaves exactly like the original.
#[test]
fn every_reachable_state_round_trips_exactly() {
    let mut rng = Rng::new(0x1A71C);
    let mut l = lapic();
    let offsets = [
        regs::TPR,
        regs::EOI,
        regs::LDR,
        regs::DFR,
        regs::SVR,
        regs::ESR,
        regs::ICR_LOW,
        regs::ICR_HIGH,
        regs::LVT_TIMER,
        regs::LVT_ERROR,
        0x350,
        regs::TIMER_INITIAL,
        regs::TIMER_DIVIDE,
    ];
    let (mut now, mut counting, mut deadlines) = (0, 0, 0);
    for step in 0..20_000 {
        now += rng.below(3_000);
        let value = rng.next();
        match rng.below(10) {
            0 | 1 => {
                let off = offsets[rng.below(offsets.len() as u64) as usize];
                // Mostly unmasked timer modes and small counts, so the timer fires.
                let v = match off {
                    regs::LVT_TIMER => value & 0x6_00FF | 0x20,
                    regs::TIMER_INITIAL => value & 0xFFF,
                    regs::SVR if value & 7 != 0 => value | 0x100,
                    _ => value,
                };
                let _ = l.write(off, 4, v, now);
            }
            2 => _ = l.read(rng.below(0x400), 4, now),
            3 => _ = l.accept(value as u8, value & 1 << 9 != 0),
            4 => _ = l.acknowledge(now),
            5 => _ = l.eoi(),
            6 => l.write_tsc_deadline(value % 20_000, rng.below(10_000), now),
            7 if step % 97 == 0 => {
                let enable = if value & 1 != 0 { APIC_BASE_ENABLE } else { 0 };
                let _ = l.write_apic_base_msr(DEFAULT_BASE | APIC_BASE_BSP | enable, now);
            }
            _ => _ = l.pending(now),
        }
        let mut copy = round_trip(&l);
        let later = now + rng.below(5_000);
        assert_eq!(copy.pending(later), l.pending(later));
        assert_eq!(copy.next_deadline(), l.next_deadline());
        assert_eq!(copy, l);
        counting += usize::from(l.timer.countdown.is_some());
        deadlines += usize::from(l.timer.deadline.is_some());
    }
    assert!(counting > 1000 && deadlines > 100, "{counting} {deadlines}");
}

/// Saves `l` after `spoil` changes it, and expects the restore to refuse `field`.
fn refused(field: &str, spoil: impl FnOnce(&mut Lapic)) {
    let mut l = lapic();
    spoil(&mut l);
    let bytes = l.state_bytes();
    match Lapic::restore_state(&mut StateReader::new(&bytes)) {
        Err(StateError::Invalid { field: f, .. }) => assert_eq!(f, field),
        other => panic!("{field}: {other:?}"),
    }
}

#[test]
fn impossible_states_are_refused() {
    assert_eq!(DeviceId::lapic(1).to_string(), "local APIC 1");
    refused("LAPIC IA32_APIC_BASE", |l| l.apic_base = 0xFEF0_0900);
    refused("LAPIC IA32_APIC_BASE", |l| l.apic_base |= APIC_BASE_X2APIC);
    refused("LAPIC DFR", |l| l.dfr = 0);
    refused("LAPIC SVR", |l| l.svr = 0x1000);
    refused("LAPIC IRR", |l| l.irr.put(3, true));
    refused("LAPIC ISR", |l| l.isr.put(15, true));
    refused("LAPIC ESR", |l| l.esr = 1);
    refused("LAPIC LVT entry", |l| l.lvt[TIMER] = 1 << 12);
    refused("LAPIC LVT unmasked while software-disabled", |l| {
        l.svr = 0xFF;
    });
    refused("LAPIC divide configuration", |l| l.timer.divide = 4);
    refused("LAPIC timer frequency", |l| l.timer.hz = 0);
    refused("LAPIC state while globally disabled", |l| {
        l.apic_base &= !APIC_BASE_ENABLE;
    });
    refused("LAPIC countdown in this timer mode", |l| {
        l.timer.set_initial(Mode::OneShot, 10, 0);
        l.lvt[TIMER] = 0x4_0000;
    });
    refused("LAPIC countdown expiry not after now", |l| {
        l.timer.set_initial(Mode::OneShot, 10, 0);
        l.now = 20; // divide by 2: 10 ticks take 20 ns
    });
    refused("LAPIC countdown count", |l| {
        l.timer.set_initial(Mode::OneShot, 10, 0);
        l.timer.initial = 5;
    });
    refused("LAPIC countdown expiry skipped", |l| {
        l.lvt[TIMER] = 0x2_0000;
        l.timer.set_initial(Mode::Periodic, 10, 0);
        l.timer.countdown.as_mut().unwrap().fired = 3;
    });
    refused("LAPIC deadline in this timer mode", |l| {
        l.timer.deadline = Some(timer::Deadline { tsc: 1, ns: 5 });
    });
    refused("LAPIC deadline not after now", |l| {
        l.lvt[TIMER] = 0x4_0000;
        l.timer.deadline = Some(timer::Deadline { tsc: 1, ns: 0 });
    });
    let good = lapic().state_bytes();
    assert!(matches!(
        Lapic::from_state_bytes(&good[..good.len() - 1]),
        Err(StateError::Truncated { .. })
    ));
}
