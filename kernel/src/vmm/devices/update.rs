// SPDX-License-Identifier: MIT OR Apache-2.0
//! When the chipset's timers (PIT, PM timer, RTC) are next brought up to date: the monitor
//! skips the update on VM entries before then.

/// How often the RTC is brought up to date while nothing else happens (its resolution is 1 s).
pub const RTC_POLL_NS: u64 = 10_000_000;

/// When the timers need bringing up to date after an update at guest time `now_ns`: at once
/// while PIT ticks wait in the backlog (the controller still held the last one), so each goes
/// as soon as the guest has acknowledged the one before and a backlog drains at the guest's
/// pace rather than one tick per PIT period; else at the earliest of `deadlines`, and at least
/// every [`RTC_POLL_NS`] for the RTC.
pub fn next_update(now_ns: u64, pit_backlog: u64, deadlines: [Option<u64>; 2]) -> u64 {
    if pit_backlog > 0 {
        return now_ns;
    }
    let next = deadlines.into_iter().flatten().min().unwrap_or(u64::MAX);
    next.min(now_ns.saturating_add(RTC_POLL_NS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pit_backlog_is_retried_at_the_next_entry_not_the_next_tick() {
        // The guest fell behind by three ticks; the controller still holds one: the next
        // check (at any later time) updates again and hands over the next as soon as it can.
        assert_eq!(
            next_update(5_000_000, 3, [Some(6_000_000), None]),
            5_000_000
        );
        // Nothing waiting: the next PIT edge, or the PM timer's, whichever is first.
        assert_eq!(
            next_update(5_000_000, 0, [Some(6_000_000), Some(5_500_000)]),
            5_500_000
        );
        // No deadline at all: the RTC is still polled.
        assert_eq!(
            next_update(5_000_000, 0, [None, None]),
            5_000_000 + RTC_POLL_NS
        );
    }
}
