// SPDX-License-Identifier: MIT OR Apache-2.0
use super::*;

/// A 50 ms window of a 2.6 GHz TSC whose start bracket is 2 µs wide and whose end bracket is
/// `late_us` wide (the CPU taken away that long before the expiring poll returned).
fn window(late_us: u64) -> Edges {
    const MHZ: u64 = 2_600;
    let start = (1_000_000, 1_000_000 + 2 * MHZ);
    let expiry = start.0 + MHZ + 50_000 * MHZ;
    Edges {
        start,
        end: (expiry - MHZ, expiry + late_us * MHZ),
    }
}

#[test]
fn a_window_bracketed_tightly_is_within_tolerance_and_a_preempted_one_is_not() {
    let tight = window(2);
    // Half of the 2 µs start bracket and the 1 + 2 µs end bracket.
    assert_eq!(tight.slack(), (2 + 3) * 2_600 / 2);
    assert!(tight.within(WINDOW_PPM));
    // 3 ms away in a 50 ms window: 6 %, the error a pair once refused itself over.
    let late = window(3_000);
    assert!(late.slack() > 1_500 * 2_600);
    assert!(!late.within(WINDOW_PPM));
}

#[test]
fn the_rate_is_the_median_of_the_first_narrow_windows() {
    let seen = [
        window(3_000),
        window(2),
        window(5),
        window(9_000),
        window(3),
        window(1),
    ];
    // Three narrow windows (2, 5, 3 µs late): the median of their tick counts is the 3 µs one.
    assert_eq!(pick(&seen, |w| *w, Edges::ticks), Some(window(3)));
    // Two narrow windows are not enough while more may be measured.
    assert_eq!(pick(&seen[..4], |w| *w, Edges::ticks), None);
}

#[test]
fn a_host_that_spoils_every_window_still_gets_the_narrowest() {
    let seen: Vec<Edges> = (0..MAX_WINDOWS as u64)
        .map(|i| window(2_000 + 100 * i))
        .collect();
    assert_eq!(pick(&seen[..MAX_WINDOWS - 1], |w| *w, Edges::ticks), None);
    // The three narrowest are 2000, 2100 and 2200 µs late: the median is 2100.
    assert_eq!(pick(&seen, |w| *w, Edges::ticks), Some(window(2_100)));
}

#[test]
fn readings_out_of_order_do_not_overflow() {
    let odd = Edges {
        start: (u64::MAX, 5),
        end: (10, 0),
    };
    assert_eq!(odd.ticks(), 0);
    assert!(!odd.within(WINDOW_PPM) || odd.slack() == 0);
    let _ = pick(&[odd; MAX_WINDOWS], |w| *w, Edges::ticks);
}

#[test]
fn a_pm_timer_count_survives_its_wrap_at_24_and_32_bits() {
    const BITS24: u32 = 0x00FF_FFFF;
    assert_eq!(counted(100, 178_077, BITS24), 177_977);
    // A 24-bit counter wraps every 4.7 s: 0xFFFF00 to 0x100 is 0x200 ticks.
    assert_eq!(counted(0x00FF_FF00, 0x100, BITS24), 0x200);
    // Bits above the counter's width (a chipset that leaves them floating) do not count.
    assert_eq!(counted(0x00FF_FF00, 0xFF00_0100, BITS24), 0x200);
    assert_eq!(counted(u32::MAX - 9, 10, u32::MAX), 20);
}
