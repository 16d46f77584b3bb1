// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the ACPI PM registers.

use alloc::boxed::Box;
use alloc::string::ToString;

use super::*;
use crate::testutil::{Rng, round_trip};
use crate::vmm::devices::PortBus;
use crate::vmm::devices::state::DeviceState;

const SECOND: u64 = 1_000_000_000;
/// Guest time of the timer's first carry (tick 2^31), rounded up to a whole ns.
const FIRST_CARRY_NS: u64 = ns_of_tick(1 << 31);
/// Guest time at which the timer wraps to 0 (tick 2^32), the second carry.
const WRAP_NS: u64 = ns_of_tick(1 << 32);

/// The first whole ns at which the timer has counted `tick` ticks.
const fn ns_of_tick(tick: u128) -> u64 {
    (tick * 1_000_000_000).div_ceil(TIMER_HZ as u128) as u64
}

/// SLP_TYP and SLP_EN as a PM1_CNT value.
fn sleep(typ: u8) -> u32 {
    u32::from(typ) << SLP_TYP_SHIFT | u32::from(SLP_EN)
}

#[test]
fn power_on_registers() {
    let mut pm = Pm::new();
    assert_eq!(pm.io_read(PM1A_EVT, 2), 0, "no status");
    assert_eq!(pm.io_read(PM1A_EVT + 2, 2), 0, "nothing enabled");
    assert_eq!(pm.io_read(PM1A_CNT, 2), 1, "SCI_EN: always in ACPI mode");
    assert_eq!(pm.io_read(PM_TMR, 4), 0);
    assert_eq!(pm.io_read(RESET, 1), 0);
    assert_eq!(pm.io_read(BASE + 6, 2), 0, "reserved");
    assert!(!pm.sci_level());
    assert_eq!(pm.next_deadline(), None);
    assert!(Pm::decodes(BASE) && Pm::decodes(LAST));
    assert!(!Pm::decodes(BASE - 1) && !Pm::decodes(LAST + 1));
}

#[test]
fn the_timer_counts_at_3_579545_mhz_from_guest_time_and_wraps_at_32_bits() {
    let mut pm = Pm::new();
    pm.advance(SECOND);
    assert_eq!(pm.io_read(PM_TMR, 4), 3_579_545);
    pm.advance(10 * SECOND + 1);
    assert_eq!(pm.timer(), 35_795_450);
    // Byte and word reads see the same count.
    let bytes: u32 = (0..4).map(|i| pm.io_read(PM_TMR + i, 1) << (8 * i)).sum();
    let words = pm.io_read(PM_TMR, 2) | pm.io_read(PM_TMR + 2, 2) << 16;
    assert_eq!((bytes, words), (35_795_450, 35_795_450));
    // Time never goes back.
    pm.advance(SECOND);
    assert_eq!(pm.timer(), 35_795_450);
    assert_eq!(pm.now(), 10 * SECOND + 1);
    // 2^32 ticks take 1199.86 s; the counter wraps to 0 there.
    let wrap_ns = WRAP_NS;
    pm.advance(wrap_ns - 1);
    assert_eq!(pm.timer(), u32::MAX);
    pm.advance(wrap_ns);
    assert_eq!(pm.timer(), 0);
    // Every tick is 279.4 ns: over a second of 1 µs steps the count moves by 3 or 4 each time.
    let mut last = pm.timer();
    for k in 1..=1_000_000 {
        pm.advance(wrap_ns + k * 1_000);
        let t = pm.timer();
        assert!(matches!(t.wrapping_sub(last), 3 | 4), "at step {k}");
        last = t;
    }
    assert_eq!(last, 3_579_545);
    // Saturating guest time does not overflow.
    pm.advance(u64::MAX);
    let _ = pm.io_read(PM_TMR, 4);
}

#[test]
fn timer_status_is_set_by_each_carry_and_cleared_by_writing_one() {
    let mut pm = Pm::new();
    pm.io_write(PM1A_EVT + 2, 2, u32::from(TMR));
    assert_eq!(pm.next_deadline(), Some(FIRST_CARRY_NS));
    pm.advance(FIRST_CARRY_NS - 1);
    assert_eq!(pm.io_read(PM1A_EVT, 2), 0);
    assert!(!pm.sci_level());
    pm.advance(FIRST_CARRY_NS);
    assert_eq!(pm.io_read(PM1A_EVT, 2), u32::from(TMR));
    assert!(pm.sci_level(), "enabled status raises the SCI");
    assert_eq!(pm.next_deadline(), None, "already pending");
    pm.io_write(PM1A_EVT, 2, 0xFEFE); // zeros in TMR_STS's place clear nothing
    assert!(pm.sci_level());
    pm.io_write(PM1A_EVT, 1, 1);
    assert_eq!(pm.io_read(PM1A_EVT, 2), 0);
    assert!(!pm.sci_level());
    assert_eq!(pm.next_deadline(), Some(WRAP_NS));
    pm.advance(5 * FIRST_CARRY_NS);
    assert_eq!(pm.status(), TMR, "several carries: one status bit");
    pm.io_write(PM1A_EVT + 2, 2, 0);
    assert!(!pm.sci_level(), "disabled: status only");
    assert_eq!(pm.next_deadline(), None);
}

#[test]
fn power_button_status_enable_and_write_one_to_clear() {
    let mut pm = Pm::new();
    pm.press_power_button();
    assert_eq!(pm.io_read(PM1A_EVT, 2), u32::from(PWRBTN));
    assert!(!pm.sci_level(), "not enabled");
    pm.io_write(PM1A_EVT + 3, 1, 1); // PWRBTN_EN through the enable register's high byte
    assert_eq!(pm.io_read(PM1A_EVT + 2, 2), u32::from(PWRBTN));
    assert!(pm.sci_level());
    pm.io_write(PM1A_EVT, 1, 0xFF); // the low byte does not hold PWRBTN_STS
    assert!(pm.sci_level());
    pm.io_write(PM1A_EVT, 4, u32::from(PWRBTN)); // dword write: status W1C, enable written 0
    assert_eq!(pm.io_read(PM1A_EVT, 4), 0);
    assert!(!pm.sci_level());
}

#[test]
fn only_defined_enable_and_stored_control_bits_stick() {
    let mut pm = Pm::new();
    pm.io_write(PM1A_EVT + 2, 2, 0xFFFF);
    assert_eq!(
        pm.enable(),
        0x4721,
        "the defined enable bits, no reserved ones"
    );
    assert_eq!(
        pm.enable(),
        TMR | GBL_EN | PWRBTN | SLPBTN_EN | RTC_EN | PCIEXP_WAKE_DIS
    );
    assert_eq!(pm.status(), 0, "enabling sets no status");
    assert!(!pm.sci_level());
    pm.io_write(PM1A_CNT, 2, 0xFFFF & !u32::from(SLP_EN));
    assert_eq!(
        pm.io_read(PM1A_CNT, 2),
        u32::from(SCI_EN | BM_RLD | SLP_TYP_MASK),
        "GBL_RLS and reserved bits read 0"
    );
    pm.io_write(PM1A_CNT, 2, 0);
    assert_eq!(pm.io_read(PM1A_CNT, 2), 1, "SCI_EN cannot be cleared");
    pm.io_write(PM_TMR, 4, 0x1234_5678);
    assert_eq!(pm.timer(), 0, "the timer is read-only");
}

#[test]
fn slp_en_with_the_s5_type_powers_off_in_any_width() {
    // ACPICA's sequence: SLP_TYP first, then SLP_TYP | SLP_EN.
    let mut pm = Pm::new();
    let typ = u32::from(S5_SLP_TYP) << SLP_TYP_SHIFT;
    assert_eq!(pm.io_write(PM1A_CNT, 2, typ | 1), Effect::None);
    assert_eq!(pm.io_read(PM1A_CNT, 2), typ | 1);
    assert_eq!(
        pm.io_write(PM1A_CNT, 2, sleep(S5_SLP_TYP) | 1),
        Effect::PowerOff
    );
    assert_eq!(pm.io_read(PM1A_CNT, 2), typ | 1, "SLP_EN reads 0");
    let high = sleep(S5_SLP_TYP) >> 8;
    assert_eq!(Pm::new().io_write(PM1A_CNT + 1, 1, high), Effect::PowerOff);
    assert_eq!(
        Pm::new().io_write(PM1A_CNT, 4, sleep(S5_SLP_TYP)),
        Effect::PowerOff
    );
    assert_eq!(
        Pm::new().io_write(BASE + 2, 4, sleep(S5_SLP_TYP) << 16),
        Effect::PowerOff
    );
}

#[test]
fn other_sleep_types_are_refused() {
    let mut pm = Pm::new();
    for typ in (0..8).filter(|&t| t != S5_SLP_TYP) {
        assert_eq!(pm.io_write(PM1A_CNT, 2, sleep(typ)), Effect::None, "S{typ}");
        let kept = u32::from(typ) << SLP_TYP_SHIFT | 1;
        assert_eq!(
            pm.io_read(PM1A_CNT, 2),
            kept,
            "the type is kept, SLP_EN is not"
        );
    }
}

#[test]
fn the_reset_value_resets_and_nothing_else_does() {
    for v in 0..=255u32 {
        let expected = if v == u32::from(RESET_VALUE) {
            Effect::Reset
        } else {
            Effect::None
        };
        assert_eq!(Pm::new().io_write(RESET, 1, v), expected, "{v:#x}");
    }
    assert_eq!(Pm::new().io_write(RESET, 4, 0xFFFF_FF06), Effect::Reset);
    assert_eq!(
        Pm::new().io_write(RESET - 1, 2, 0x0600),
        Effect::Reset,
        "byte cycles"
    );
    assert_eq!(Pm::new().io_write(RESET - 1, 2, 0x0006), Effect::None);
}

/// The effect a write must have, from its byte cycles alone.
fn expected_effect(port: u16, width: Width, value: u32) -> Effect {
    let mut effect = Effect::None;
    for i in 0..u16::from(width.clamp(1, 4)) {
        let byte = (value >> (8 * i)) as u8;
        let s5_high = (sleep(S5_SLP_TYP) >> 8) as u8;
        let hit = match port.wrapping_add(i) {
            p if p == PM1A_CNT + 1 => byte & (s5_high | 0x1C) == s5_high,
            RESET => byte == RESET_VALUE,
            _ => false,
        };
        if hit && effect == Effect::None {
            effect = if port.wrapping_add(i) == RESET {
                Effect::Reset
            } else {
                Effect::PowerOff
            };
        }
    }
    effect
}

/// Any port, any width, any value: no panic, reads stay within the width, only the two
/// registers have effects, and every state reached round-trips.
#[test]
fn hostile_accesses_are_defined() {
    let mut rng = Rng::new(0x0ACF_1234);
    let mut pm = Pm::new();
    for step in 0..50_000u64 {
        let port = match rng.below(4) {
            0 => rng.next() as u16,
            _ => BASE.wrapping_sub(3).wrapping_add(rng.below(22) as u16),
        };
        let width = rng.below(9) as Width;
        let value = rng.next() as u32;
        pm.advance(step * 997_331 + (rng.next() >> 44));
        if rng.below(50) == 0 {
            pm.press_power_button();
        }
        if rng.below(2) == 0 {
            let v = pm.io_read(port, width);
            let bits = 8 * u32::from(width.clamp(1, 4));
            assert!(bits == 32 || v >> bits == 0, "{port:#x}/{width}: {v:#x}");
        } else {
            let effect = pm.io_write(port, width, value);
            assert_eq!(
                effect,
                expected_effect(port, width, value),
                "{port:#x}/{width}/{value:#x}"
            );
        }
        assert_eq!(pm.control() & SLP_EN, 0);
        round_trip(&pm);
    }
}

#[test]
fn it_sits_on_the_port_bus_and_reads_all_ones_beyond_its_block() {
    let mut bus = PortBus::default();
    let mut pm = Pm::new();
    pm.advance(SECOND);
    bus.attach(Box::new(pm));
    assert_eq!(bus.read(PM_TMR, 4), 3_579_545);
    assert_eq!(bus.write(PM1A_CNT, 2, sleep(S5_SLP_TYP)), Effect::PowerOff);
    assert_eq!(bus.write(RESET, 1, u32::from(RESET_VALUE)), Effect::Reset);
    assert_eq!(bus.read(LAST + 1, 1), 0xFF);
    let mut direct = Pm::new();
    assert_eq!(
        direct.io_read(LAST, 4),
        0xFFFF_FF00,
        "bytes past the block float high"
    );
}

#[test]
fn state_round_trips_through_the_bus_and_impossible_states_are_refused() {
    let mut pm = Pm::new();
    pm.advance(3 * FIRST_CARRY_NS + 5);
    pm.io_write(PM1A_EVT + 2, 2, u32::from(TMR | PWRBTN));
    pm.io_write(PM1A_CNT, 2, 3 << SLP_TYP_SHIFT | u32::from(BM_RLD));
    pm.io_write(PM1A_EVT, 1, 1);
    pm.press_power_button();
    let copy = round_trip(&pm);
    assert_eq!(copy.status(), PWRBTN);
    assert_eq!(copy.control(), 3 << SLP_TYP_SHIFT | BM_RLD | SCI_EN);

    let mut bus = PortBus::default();
    bus.attach(Box::new(pm.clone()));
    let saved = bus.save_state();
    let mut other = PortBus::default();
    other.attach(Box::new(Pm::new()));
    other.restore_state(&saved).expect("restores");
    assert_eq!(other.save_state(), saved);
    assert_eq!(other.read(PM_TMR, 4), pm.timer());
    assert_eq!(
        DeviceId::acpi_pm(BASE).to_string(),
        "ACPI PM registers at port 0x600"
    );

    let good = pm.state_bytes();
    assert_eq!(good.len(), 22);
    let refused = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        match Pm::from_state_bytes(&b) {
            Err(StateError::Invalid { field, .. }) => field,
            other => panic!("{at}: {other:?}"),
        }
    };
    assert_eq!(
        refused(8, &[1, 0]),
        "ACPI PM1 status",
        "TMR_STS is not stored"
    );
    assert_eq!(refused(10, &[0x02, 0]), "ACPI PM1 enable", "reserved bit 1");
    assert_eq!(refused(11, &[0x80]), "ACPI PM1 enable", "reserved bit 15");
    assert_eq!(
        refused(12, &[0x01, 0]),
        "ACPI PM1 control",
        "SCI_EN is not stored"
    );
    assert_eq!(refused(13, &[0x20]), "ACPI PM1 control", "SLP_EN");
    assert_eq!(refused(14, &[4, 0, 0, 0]), "ACPI PM timer carries seen");
    assert!(matches!(
        Pm::from_state_bytes(&good[..21]),
        Err(StateError::Truncated { .. })
    ));
}
