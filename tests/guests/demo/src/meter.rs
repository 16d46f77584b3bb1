// SPDX-License-Identifier: MIT OR Apache-2.0
//! Work mode's meter (`work=<seconds>`): steps run back to back are counted against the PIT's
//! ticks, reported about once per second of timer time as `demo: work <steps> steps in <ms>
//! ms (<cycles> TSC cycles)` (the steps, PIT time and time-stamp counter cycles since the
//! previous report), and in total once the time is up as `demo: work total <steps> steps in
//! <ms> ms (<cycles> TSC cycles)`. Time is an input: the caller passes the tick count and a
//! TSC reading after a step, so a report covers whole steps and the figures are exact
//! functions of the readings.
//!
//! The TSC cycles are a second clock that does not depend on timer interrupts arriving: a
//! monitor that holds the guest stopped for longer than its tick backlog lasts, or delivers
//! ticks late, makes the PIT time fall behind, and the cycles show by how much (converted with
//! the TSC rate the host knows). Differences wrap; they mean nothing across a move to another
//! host (a failover), whose TSC differs.

use crate::pace::Pace;
use core::fmt;

/// Steps run in a stretch of timer time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Steps completed.
    pub steps: u64,
    /// Milliseconds of timer time they took.
    pub ms: u64,
    /// Time-stamp counter cycles they took.
    pub tsc: u64,
}

impl fmt::Display for Interval {
    /// `<steps> steps in <ms> ms (<tsc> TSC cycles)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Interval { steps, ms, tsc } = self;
        write!(f, "{steps} steps in {ms} ms ({tsc} TSC cycles)")
    }
}

/// Counts steps against timer ticks (and TSC cycles) for a fixed run time.
#[derive(Debug, Clone)]
pub struct Meter {
    pace: Pace,
    run_ms: u64,
    start: Reading,
    /// At the previous report (or the start).
    last: Reading,
    last_steps: u64,
}

/// A reading of both clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Timer ticks taken.
    pub ticks: u64,
    /// The time-stamp counter.
    pub tsc: u64,
}

/// Milliseconds between interval reports.
const REPORT_MS: u64 = 1000;
/// Pages of work between two readings of the clock.
pub const POLL_PAGES: u64 = 64;

/// Steps between two readings of the clock for `pages` pages per step: about
/// [`POLL_PAGES`] pages' worth, at least one step.
pub fn poll_every(pages: u64) -> u64 {
    (POLL_PAGES / pages.max(1)).max(1)
}

impl Meter {
    /// A meter for `secs` seconds of a timer programmed with `pace`, starting at `now` with
    /// no step done.
    pub fn new(pace: Pace, secs: u64, now: Reading) -> Meter {
        Meter {
            pace,
            run_ms: secs.saturating_mul(1000),
            start: now,
            last: now,
            last_steps: 0,
        }
    }

    /// `steps` steps are done in all at `now`: the interval since the previous report if a
    /// second or more of timer time has passed (and a new interval starts).
    pub fn after_step(&mut self, steps: u64, now: Reading) -> Option<Interval> {
        let interval = self.since(self.last, steps.saturating_sub(self.last_steps), now);
        if interval.ms < REPORT_MS {
            return None;
        }
        (self.last, self.last_steps) = (now, steps);
        Some(interval)
    }

    /// Whether the run time is up at `now`.
    pub fn done(&self, now: Reading) -> bool {
        self.pace.millis(now.ticks.saturating_sub(self.start.ticks)) >= self.run_ms
    }

    /// `steps` steps in all by `now`, since the start.
    pub fn total(&self, steps: u64, now: Reading) -> Interval {
        self.since(self.start, steps, now)
    }

    fn since(&self, then: Reading, steps: u64, now: Reading) -> Interval {
        Interval {
            steps,
            ms: self.pace.millis(now.ticks.saturating_sub(then.ticks)),
            tsc: now.tsc.wrapping_sub(then.tsc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 100 Hz clock work mode uses: 10.00015 ms per tick.
    fn pace() -> Pace {
        Pace::for_hz(100)
    }

    /// A reading at `ticks` with a TSC at 1 MHz per tick plus `skew` cycles.
    fn at(ticks: u64, skew: u64) -> Reading {
        Reading {
            ticks,
            tsc: ticks * 1_000_000 + skew,
        }
    }

    #[test]
    fn reports_once_per_second_of_ticks_with_the_interval() {
        let mut m = Meter::new(pace(), 3, at(500, 0));
        assert_eq!(m.after_step(1, at(500, 0)), None);
        assert_eq!(m.after_step(40, at(599, 0)), None, "990 ms");
        let first = Interval {
            steps: 41,
            ms: 1000,
            tsc: 100_000_007,
        };
        assert_eq!(m.after_step(41, at(600, 7)), Some(first));
        // A late report covers the whole stretch since the previous one.
        assert_eq!(m.after_step(60, at(650, 0)), None);
        let second = Interval {
            steps: 49,
            ms: 1200,
            tsc: 120_000_000 - 7,
        };
        assert_eq!(m.after_step(90, at(720, 0)), Some(second));
        assert!(!m.done(at(799, 0)));
        assert!(m.done(at(800, 0)), "300 ticks: 3000.04 ms");
        let total = Interval {
            steps: 130,
            ms: 3000,
            tsc: 300_000_000,
        };
        assert_eq!(m.total(130, at(800, 0)), total);
    }

    #[test]
    fn the_tsc_counts_time_the_ticks_missed() {
        // Ticks lost while the guest was held: the PIT says 1 s, the TSC 5 s.
        let mut m = Meter::new(pace(), 2, at(0, 0));
        let late = Reading {
            ticks: 100,
            tsc: 500_000_000,
        };
        let interval = m.after_step(10, late).unwrap();
        assert_eq!((interval.ms, interval.tsc), (1000, 500_000_000));
        let start = Reading {
            ticks: 0,
            tsc: u64::MAX,
        };
        let wrapped = Meter::new(pace(), 1, start);
        assert_eq!(
            wrapped.total(1, at(1, 0)).tsc,
            1_000_001,
            "differences wrap"
        );
    }

    #[test]
    fn the_clock_is_read_about_every_64_pages() {
        assert_eq!(poll_every(64), 1);
        assert_eq!(poll_every(1024), 1);
        assert_eq!(poll_every(1), 64);
        assert_eq!(poll_every(3), 21);
        assert_eq!(poll_every(0), 64, "no division by zero");
    }

    #[test]
    fn lines_read_as_the_guest_prints_them() {
        let interval = Interval {
            steps: 7,
            ms: 1010,
            tsc: 1_010_000_123,
        };
        let line = format!("{interval}");
        assert_eq!(line, "7 steps in 1010 ms (1010000123 TSC cycles)");
    }

    #[test]
    fn ticks_that_seem_to_go_back_count_as_no_time() {
        let mut m = Meter::new(pace(), 1, at(100, 0));
        assert_eq!(m.after_step(5, at(50, 0)), None);
        assert!(!m.done(at(50, 0)));
        assert_eq!(m.total(5, at(50, 0)).ms, 0);
    }
}
