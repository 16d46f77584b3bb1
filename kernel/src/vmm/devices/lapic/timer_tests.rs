// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host unit tests of the local APIC timer: one-shot, periodic and TSC-deadline modes, the
//! divider, current-count reads, masking, and countdowns that continue across a restore.

use super::tests::{TSC_HZ, lapic, rd, wr};
use super::*;
use crate::testutil::{Rng, round_trip};

/// Vector the tests give the timer.
const V: u8 = 0x40;
/// LVT timer entries: unmasked, vector [`V`].
const ONE_SHOT: u32 = V as u32;
const PERIODIC: u32 = 0x2_0000 | V as u32;
const TSC_DEADLINE: u32 = 0x4_0000 | V as u32;

/// An APIC at guest time `now` with the timer in `lvt` mode, divide by 1 (one tick per ns).
fn timer(lvt: u32) -> Lapic {
    let mut l = lapic();
    wr(&mut l, regs::TIMER_DIVIDE, 0xB);
    wr(&mut l, regs::LVT_TIMER, lvt);
    l
}

/// Whether the timer interrupt is pending at `now`; takes it and ends it if so.
fn fired(l: &mut Lapic, now: u64) -> bool {
    if l.pending(now) != Some(V) {
        return false;
    }
    assert_eq!(l.acknowledge(now), Some(V));
    assert_eq!(l.eoi(), None, "the timer is edge-triggered");
    true
}

fn current(l: &mut Lapic, now: u64) -> u32 {
    l.read(regs::TIMER_CURRENT, 4, now) as u32
}

#[test]
fn one_shot_counts_down_and_fires_once() {
    let mut l = timer(ONE_SHOT);
    assert_eq!(l.next_deadline(), None, "stopped until a count is written");
    l.now = 100;
    wr(&mut l, regs::TIMER_INITIAL, 1000);
    assert_eq!(rd(&mut l, regs::TIMER_INITIAL), 1000);
    assert_eq!(current(&mut l, 350), 750);
    assert_eq!(l.next_deadline(), Some(1100));
    assert!(!fired(&mut l, 1099));
    assert_eq!(current(&mut l, 1099), 1);
    assert!(fired(&mut l, 1100));
    assert_eq!(current(&mut l, 1100), 0);
    assert_eq!(l.next_deadline(), None);
    assert!(!fired(&mut l, 100_000), "one shot only");
    assert_eq!(
        rd(&mut l, regs::TIMER_INITIAL),
        1000,
        "the initial count stays"
    );
    // Rewriting the count restarts it; writing 0 stops it.
    wr(&mut l, regs::TIMER_INITIAL, 10);
    assert_eq!(l.next_deadline(), Some(100_010));
    wr(&mut l, regs::TIMER_INITIAL, 0);
    assert_eq!(l.next_deadline(), None);
    assert!(!fired(&mut l, 200_000));
}

#[test]
fn every_divide_value_scales_the_count() {
    for (code, divisor) in [
        (0b0000, 2),
        (0b0001, 4),
        (0b0010, 8),
        (0b0011, 16),
        (0b1000, 32),
        (0b1001, 64),
        (0b1010, 128),
        (0b1011, 1),
    ] {
        let mut l = timer(ONE_SHOT);
        wr(&mut l, regs::TIMER_DIVIDE, code | 0xF0);
        assert_eq!(rd(&mut l, regs::TIMER_DIVIDE), code);
        wr(&mut l, regs::TIMER_INITIAL, 100);
        assert_eq!(
            current(&mut l, 30 * divisor - 1),
            71,
            "divide code {code:#b}"
        );
        assert_eq!(current(&mut l, 30 * divisor), 70);
        assert_eq!(l.next_deadline(), Some(100 * divisor));
        assert!(!fired(&mut l, 100 * divisor - 1));
        assert!(fired(&mut l, 100 * divisor));
    }
}

#[test]
fn periodic_reloads_and_coalesces_missed_periods() {
    let mut l = timer(PERIODIC);
    wr(&mut l, regs::TIMER_INITIAL, 1000);
    assert_eq!(current(&mut l, 1), 999);
    assert!(!fired(&mut l, 999));
    assert!(fired(&mut l, 1000));
    assert_eq!(current(&mut l, 1000), 1000, "reloaded");
    assert_eq!(current(&mut l, 1500), 500);
    assert_eq!(l.next_deadline(), Some(2000));
    assert!(fired(&mut l, 2000));
    // Nobody looked for 8.5 periods: one interrupt, then the schedule goes on.
    assert!(fired(&mut l, 10_500));
    assert!(!fired(&mut l, 10_999));
    assert_eq!(l.next_deadline(), Some(11_000));
    assert_eq!(current(&mut l, 10_999), 1);
    // One request per vector: an expiry while the last is still in IRR merges with it.
    assert_eq!(l.pending(11_000), Some(V));
    l.advance(12_000);
    assert_eq!(l.acknowledge(12_000), Some(V));
    assert_eq!(l.pending(12_000), None);
    l.eoi();
    // Changing the divider goes on from the current count at the new rate.
    l.advance(12_400);
    assert_eq!(current(&mut l, 12_400), 600);
    wr(&mut l, regs::TIMER_DIVIDE, 0b0000);
    assert_eq!(current(&mut l, 12_600), 500);
    assert_eq!(l.next_deadline(), Some(12_400 + 1200));
    assert!(fired(&mut l, 13_600));
    assert_eq!(
        l.next_deadline(),
        Some(13_600 + 2000),
        "whole periods at the new rate"
    );
}

#[test]
fn expiries_are_exact_at_any_clock_rate() {
    let mut rng = Rng::new(0x71);
    for _ in 0..300 {
        let hz = 1 + rng.below(5_000_000_000);
        let mut l = Lapic::new(LapicConfig {
            apic_id: 0,
            timer_hz: hz,
            tsc_hz: TSC_HZ,
        });
        let divide = [0b0000, 0b0011, 0b1010, 0b1011][rng.below(4) as usize];
        wr(&mut l, regs::TIMER_DIVIDE, divide);
        wr(
            &mut l,
            regs::LVT_TIMER,
            if rng.below(2) == 0 {
                ONE_SHOT
            } else {
                PERIODIC
            },
        );
        l.now = rng.below(1 << 40);
        let count = 1 + rng.below(1 << 20) as u32;
        wr(&mut l, regs::TIMER_INITIAL, count);
        let at = l.next_deadline().expect("armed");
        assert!(at > l.now);
        assert!(current(&mut l, at - 1) >= 1, "still counting just before");
        assert!(!fired(&mut l, at - 1));
        assert!(fired(&mut l, at), "fires exactly at its deadline");
    }
}

#[test]
fn masked_timer_counts_without_interrupting() {
    let mut l = timer(ONE_SHOT | LVT_MASKED);
    wr(&mut l, regs::TIMER_INITIAL, 50);
    assert_eq!(l.next_deadline(), None, "no interrupt to wait for");
    assert_eq!(current(&mut l, 20), 30);
    assert!(!fired(&mut l, 60));
    assert_eq!(current(&mut l, 60), 0, "but the count ran out");
    wr(&mut l, regs::LVT_TIMER, ONE_SHOT);
    assert!(!fired(&mut l, 100), "unmasking later does not revive it");
}

#[test]
fn switching_one_shot_and_periodic_keeps_counting() {
    let mut l = timer(ONE_SHOT);
    wr(&mut l, regs::TIMER_INITIAL, 100);
    l.advance(40);
    wr(&mut l, regs::LVT_TIMER, PERIODIC);
    assert_eq!(current(&mut l, 40), 60);
    assert!(fired(&mut l, 100));
    assert_eq!(
        l.next_deadline(),
        Some(200),
        "reloads with the initial count"
    );
    assert!(fired(&mut l, 200));
    l.advance(250);
    wr(&mut l, regs::LVT_TIMER, ONE_SHOT);
    assert_eq!(current(&mut l, 250), 50);
    assert!(!fired(&mut l, 299));
    assert!(fired(&mut l, 300));
    assert_eq!(l.next_deadline(), None);
}

#[test]
fn tsc_deadline_arms_fires_and_disarms() {
    let mut l = timer(ONE_SHOT);
    wr(&mut l, regs::TIMER_INITIAL, 100);
    wr(&mut l, regs::LVT_TIMER, TSC_DEADLINE);
    assert_eq!(
        rd(&mut l, regs::TIMER_INITIAL),
        0,
        "the mode switch disarmed the count"
    );
    assert_eq!(l.next_deadline(), None);
    wr(&mut l, regs::TIMER_INITIAL, 100);
    assert_eq!(rd(&mut l, regs::TIMER_INITIAL), 0, "initial count ignored");
    assert_eq!(current(&mut l, 0), 0);
    // Guest TSC 5000 at 1000 ns; 2 GHz: a deadline 4000 ticks ahead is 2000 ns ahead.
    l.write_tsc_deadline(9000, 5000, 1000);
    assert_eq!(l.tsc_deadline(), 9000);
    assert_eq!(l.next_deadline(), Some(3000));
    assert!(!fired(&mut l, 2999));
    assert!(fired(&mut l, 3000));
    assert_eq!(l.tsc_deadline(), 0, "cleared when it fires");
    assert_eq!(l.next_deadline(), None);
    // Writing 0 disarms.
    l.write_tsc_deadline(20_000, 6000, 3000);
    l.write_tsc_deadline(0, 6001, 3001);
    assert_eq!(l.tsc_deadline(), 0);
    assert!(!fired(&mut l, 1 << 40));
    // A deadline already passed fires at once; one tick ahead rounds up to a whole ns.
    l.write_tsc_deadline(100, 200, 1 << 40);
    assert!(fired(&mut l, 1 << 40));
    l.write_tsc_deadline(201, 200, 1 << 40);
    assert_eq!(l.next_deadline(), Some((1 << 40) + 1));
    // Leaving the mode disarms; outside it the MSR reads 0 and ignores writes.
    wr(&mut l, regs::LVT_TIMER, ONE_SHOT);
    assert_eq!(l.next_deadline(), None);
    l.write_tsc_deadline(1 << 50, 0, 1 << 40);
    assert_eq!(l.tsc_deadline(), 0);
    assert_eq!(l.next_deadline(), None);
}

#[test]
fn reserved_timer_mode_does_not_run() {
    let mut l = timer(0x6_0000 | V as u32);
    wr(&mut l, regs::TIMER_INITIAL, 10);
    assert_eq!(rd(&mut l, regs::TIMER_INITIAL), 10);
    assert_eq!(l.next_deadline(), None);
    assert_eq!(current(&mut l, 5), 0);
    assert!(!fired(&mut l, 100));
}

/// A guest saved mid-countdown and restored (on another host, whose clock resumes at the
/// saved guest time) sees the same counts and the same expiries as one that ran on.
#[test]
fn countdowns_continue_exactly_after_a_restore() {
    let mut periodic = timer(PERIODIC);
    wr(&mut periodic, regs::TIMER_DIVIDE, 0b0001);
    wr(&mut periodic, regs::TIMER_INITIAL, 333);
    periodic.advance(5_000);
    let mut one_shot = timer(ONE_SHOT);
    wr(&mut one_shot, regs::TIMER_INITIAL, 7_777);
    one_shot.advance(5_000);
    let mut deadline = timer(TSC_DEADLINE);
    deadline.write_tsc_deadline(1_000_000, 0, 0);
    deadline.advance(5_000);
    for mut original in [periodic, one_shot, deadline] {
        let mut copy = round_trip(&original);
        for now in (5_000..600_000).step_by(997) {
            assert_eq!(current(&mut copy, now), current(&mut original, now));
            assert_eq!(fired(&mut copy, now), fired(&mut original, now));
            assert_eq!(copy.next_deadline(), original.next_deadline());
        }
        assert_eq!(copy, original);
    }
}

/// Restored on a host whose TSC runs at another rate: a deadline armed before keeps its guest
/// time; one written afterwards counts this host's ticks (the guest TSC is this host's plus
/// an offset).
#[test]
fn tsc_deadlines_after_a_restore_count_the_new_hosts_ticks() {
    let mut original = timer(TSC_DEADLINE);
    original.write_tsc_deadline(1_000_000, 0, 0);
    let armed = original.next_deadline();
    let mut copy = round_trip(&original);
    copy.resume_on_host(TSC_HZ / 2);
    assert_eq!(
        copy.next_deadline(),
        armed,
        "an armed deadline keeps its guest time"
    );
    assert!(fired(&mut copy, armed.unwrap()));
    // At half the rate, 1000 ticks are twice as many nanoseconds.
    copy.write_tsc_deadline(5_000_000 + 1000, 5_000_000, 10_000_000);
    original.write_tsc_deadline(5_000_000 + 1000, 5_000_000, 10_000_000);
    let (fast, slow) = (
        original.next_deadline().unwrap(),
        copy.next_deadline().unwrap(),
    );
    assert_eq!(slow - 10_000_000, 2 * (fast - 10_000_000));
}
