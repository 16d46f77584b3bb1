// SPDX-License-Identifier: MIT OR Apache-2.0
//! Guest time: nanoseconds since the guest was created, from readings of the host TSC.
//!
//! Time is an input here as in the device models: the caller passes each TSC reading, so host
//! tests drive the clock explicitly. A clock starts at guest time 0 ([`GuestClock::start`]) or
//! continues a guest saved elsewhere ([`GuestClock::resume`]): the backup host, with its own TSC
//! value and rate, resumes at exactly the saved guest time and runs on from there, so guest
//! time never goes back across a failover (it stands still while no host runs the guest). A
//! TSC reading below the clock's starting one counts as no time at all rather than wrapping.

/// Converts host TSC readings into guest time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestClock {
    /// Guest time at `start_tsc`.
    base_ns: u64,
    /// TSC reading at which guest time was `base_ns`.
    start_tsc: u64,
    /// Nanoseconds per TSC tick, as a 32.32 fixed-point factor.
    ns_per_tick: u128,
    /// TSC ticks per nanosecond, as a 32.32 fixed-point factor: the inverse of `ns_per_tick`,
    /// rounded down (for [`tsc_before`](Self::tsc_before)).
    ticks_per_ns: u128,
}

impl GuestClock {
    /// A clock at guest time 0 at TSC reading `tsc`, for a TSC that runs at `tsc_hz`.
    pub fn start(tsc: u64, tsc_hz: u64) -> Self {
        Self::resume(0, tsc, tsc_hz)
    }

    /// A clock at guest time `guest_ns` at TSC reading `tsc`, for a TSC that runs at `tsc_hz`
    /// (0 is taken as 1).
    pub fn resume(guest_ns: u64, tsc: u64, tsc_hz: u64) -> Self {
        // Rounded up, so whole nanoseconds come out whole (the error is below 1 ns/s).
        let ns_per_tick = (1_000_000_000u128 << 32).div_ceil(u128::from(tsc_hz.max(1)));
        Self {
            base_ns: guest_ns,
            start_tsc: tsc,
            ns_per_tick,
            ticks_per_ns: (1u128 << 64) / ns_per_tick,
        }
    }

    /// Guest time at TSC reading `tsc` (saturating at `u64::MAX`).
    pub fn at(&self, tsc: u64) -> u64 {
        let ticks = tsc.saturating_sub(self.start_tsc);
        // At most 2^64 * 2^62: no overflow in u128.
        let elapsed = (u128::from(ticks) * self.ns_per_tick) >> 32;
        self.base_ns
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }

    /// A TSC reading before which guest time is below `ns` ([`at`](Self::at) is below `ns`
    /// at every earlier reading): the first reading that reaches `ns`, or one a few ticks
    /// earlier (the rounding of the rate; at most 2 + `ns / 2^32` ticks). A multiplication,
    /// no division: the monitor asks this on the way into the guest.
    pub fn tsc_before(&self, ns: u64) -> u64 {
        // Guest time is `base_ns` at and before the start: only a later time has readings below.
        let Some(wanted) = ns.checked_sub(self.base_ns).filter(|&d| d > 0) else {
            return 0;
        };
        // `wanted * 2^32 / ns_per_tick` rounded down is at most the least tick count whose
        // time reaches `wanted` (its ceiling); so is this, from a factor rounded down.
        let ticks = (u128::from(wanted) * self.ticks_per_ns) >> 32;
        u64::try_from(ticks)
            .ok()
            .and_then(|t| self.start_tsc.checked_add(t))
            .unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nanoseconds_from_the_start() {
        let c = GuestClock::start(1_000, 2_000_000_000);
        assert_eq!(c.at(1_000), 0);
        assert_eq!(c.at(3_000), 1_000);
        assert_eq!(c.at(1_000 + 2_000_000_000), 1_000_000_000);
        assert_eq!(
            c.at(999),
            0,
            "a reading before the start is no time, not a wrap"
        );
        assert_eq!(GuestClock::start(0, 0).at(u64::MAX), u64::MAX, "saturates");
    }

    /// `tsc_before` is never late (every reading before it is earlier than the time asked for)
    /// and early by a few ticks at most, whatever the rate, start and time.
    #[test]
    fn tsc_before_is_at_most_a_few_ticks_before_the_first_reading_that_reaches_a_time() {
        for (base, start, hz) in [
            (0, 1_000, 2_000_000_000),
            (7_000_123, 99, 2_494_333_111),
            (5, 0, 1),
            (0, 0, 3_000_000_007),
        ] {
            let c = GuestClock::resume(base, start, hz);
            for ns in [
                base + 1,
                base + 2,
                base + 999,
                base + 1_000_000_007,
                base + (1 << 40),
            ] {
                let t = c.tsc_before(ns);
                assert!(
                    t == 0 || c.at(t - 1) < ns,
                    "{hz} Hz: late, at({t} - 1) >= {ns}"
                );
                // The first reading that reaches `ns`, exactly.
                let wanted = u128::from(ns - base) << 32;
                let first = start + u64::try_from(wanted.div_ceil(c.ns_per_tick)).unwrap();
                assert!(c.at(first) >= ns && c.at(first - 1) < ns);
                let slack = 2 + ((ns - base) >> 32);
                assert!(t + slack >= first, "{hz} Hz: {t} is early by {}", first - t);
            }
            assert_eq!(c.tsc_before(base), 0, "there at every reading");
            assert_eq!(c.tsc_before(base.saturating_sub(1)), 0);
        }
        assert_eq!(
            GuestClock::start(u64::MAX - 10, 1).tsc_before(u64::MAX),
            u64::MAX,
            "beyond the last reading"
        );
    }

    /// Host A (2.5 GHz) runs the guest to a checkpoint; host B (3 GHz, its TSC far behind A's)
    /// resumes it: guest time continues from the saved value and never goes back.
    #[test]
    fn resumed_clock_continues_from_the_saved_time_on_another_host() {
        let a = GuestClock::start(7_000_000, 2_500_000_000);
        let mut last = 0;
        let mut tsc = 7_000_000;
        for _ in 0..1000 {
            tsc += 123_457;
            let t = a.at(tsc);
            assert!(t >= last);
            last = t;
        }
        let saved = a.at(tsc);
        assert_eq!(saved, 1000 * 123_457 * 2 / 5);

        let b = GuestClock::resume(saved, 42, 3_000_000_000);
        assert_eq!(b.at(42), saved, "starts exactly at the saved time");
        assert_eq!(b.at(42 + 3_000), saved + 1_000, "runs at B's rate");
        assert_eq!(b.at(41), saved, "never before the saved time");
        let mut tsc = 42;
        for step in 1..1000_u64 {
            tsc += step * 977;
            let t = b.at(tsc);
            assert!(t >= last);
            last = t;
        }
        assert_eq!(last, saved + (tsc - 42) / 3);
    }
}
