// SPDX-License-Identifier: MIT OR Apache-2.0
//! The quiet window of [`Chipset::pending_at`]: it answers as a full evaluation at every entry
//! would, however devices change and time passes.

use super::*;
use crate::testutil::Rng;

const RAM: u64 = 8 << 20;
/// A 1 GHz TSC: one tick is one nanosecond of guest time.
const HZ: u64 = 1_000_000_000;
const TSC0: u64 = 1_000_000;
/// Wall time: the RTC's interrupts stay off, so its value changes nothing here.
const UNIX: u64 = 1_800_000_000;

/// A chipset whose PIT ticks at about 1 kHz (mode 2) and whose PIC has every line unmasked.
fn ticking() -> Chipset {
    let mut c = Chipset::started(RAM, TSC0, HZ);
    let _ = c.write(0x21, 1, 0x00, 0);
    let _ = c.write(0x43, 1, 0x34, 0);
    let _ = c.write(0x40, 1, 1193 & 0xFF, 0);
    let _ = c.write(0x40, 1, 1193 >> 8, 0);
    c
}

/// What every entry used to do: evaluate the controllers, with no quiet window.
fn evaluated(c: &mut Chipset, tsc: u64) -> Option<u8> {
    c.interrupts_mut();
    c.pending_at(tsc, || UNIX)
}

#[test]
fn nothing_pending_opens_a_window_that_the_next_timer_tick_ends() {
    let mut c = ticking();
    let mut tsc = TSC0 + 1_000;
    assert_eq!(c.pending_at(tsc, || UNIX), None);
    let quiet = c.quiet_until_tsc;
    assert!(quiet > tsc, "a window up to the PIT's next tick");
    assert!(
        quiet <= TSC0 + 1_000_000,
        "ends no later than the tick ({quiet})"
    );
    // Inside the window the answer comes without an evaluation; at its end the tick is there.
    tsc = quiet - 1;
    assert_eq!(c.pending_at(tsc, || UNIX), None);
    let mut t = quiet;
    let vector = loop {
        if let Some(v) = c.pending_at(t, || UNIX) {
            break v;
        }
        t += 1;
        assert!(t < quiet + 10, "the tick came late");
    };
    assert_eq!(vector, 0x08, "IRQ0 through the PIC's base 0x08");
}

#[test]
fn a_line_raised_inside_the_window_is_pending_at_once() {
    let mut c = ticking();
    assert_eq!(c.pending_at(TSC0 + 10, || UNIX), None);
    assert!(c.quiet_until_tsc > TSC0 + 20);
    let line = IrqLine::new(3).unwrap();
    c.interrupts_mut().set_level(line, true);
    assert_eq!(
        c.pending_at(TSC0 + 20, || UNIX),
        Some(0x0B),
        "IRQ3, not the window's None"
    );
}

#[test]
fn port_accesses_end_the_window_only_when_a_chipset_device_takes_them() {
    let mut c = ticking();
    assert_eq!(c.pending_at(TSC0 + 10, || UNIX), None);
    let quiet = c.quiet_until_tsc;
    assert_eq!(
        c.write(0x80, 1, 0, 10),
        None,
        "no chipset device at port 0x80"
    );
    assert_eq!(c.quiet_until_tsc, quiet);
    assert!(c.read(0x21, 1, 10).is_some());
    assert_eq!(c.quiet_until_tsc, 0);
}

/// Random device changes, interrupt acknowledgements, EOIs, mask changes and time steps (some
/// tiny, some past several ticks): the chipset with its quiet window answers every entry as
/// one that evaluates every time.
#[test]
fn the_window_answers_as_an_evaluation_at_every_entry_would() {
    for seed in 1..=20 {
        let mut rng = Rng::new(seed);
        let mut fast = ticking();
        let mut full = fast.clone();
        let mut tsc = TSC0;
        let mut taken = 0;
        for step in 0..3_000 {
            tsc += match rng.below(4) {
                0 => rng.below(3),
                1 => rng.below(2_000),
                2 => rng.below(400_000),
                _ => rng.below(3_000_000),
            };
            let now = fast.clock.at(tsc);
            match rng.below(8) {
                0 => {
                    let line = IrqLine::new(rng.below(16) as u8).unwrap();
                    let high = rng.below(2) == 1;
                    fast.interrupts_mut().set_level(line, high);
                    full.interrupts_mut().set_level(line, high);
                }
                1 => {
                    // Non-specific EOI to both PICs, as a handler ends.
                    for c in [&mut fast, &mut full] {
                        let _ = c.write(0xA0, 1, 0x20, now);
                        let _ = c.write(0x20, 1, 0x20, now);
                    }
                }
                2 => {
                    let mask = rng.below(256) as u32 & !0x05;
                    let _ = fast.write(0x21, 1, mask, now);
                    let _ = full.write(0x21, 1, mask, now);
                }
                _ => {}
            }
            let (a, b) = (fast.pending_at(tsc, || UNIX), evaluated(&mut full, tsc));
            assert_eq!(a, b, "seed {seed}, step {step}, TSC {tsc}");
            if a.is_some() && rng.below(2) == 0 {
                assert_eq!(fast.acknowledge_at(tsc), full.acknowledge_at(tsc));
                taken += 1;
            }
        }
        assert!(taken > 100, "seed {seed}: only {taken} interrupts taken");
    }
}
