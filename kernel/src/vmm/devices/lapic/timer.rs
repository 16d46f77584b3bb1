// SPDX-License-Identifier: MIT OR Apache-2.0
//! The local APIC timer (Intel SDM Vol. 3A, 11.5.4): one-shot and periodic countdowns of the
//! bus clock divided by the divide configuration, and the TSC-deadline mode (11.5.4.1).
//!
//! Time is an input, as in the PIT: a countdown is the segment that started at guest time
//! `start_ns` with `count`, so the current count and every expiry are exact functions of guest
//! time, never stepped. Expiry `k` (from 0) of a countdown falls when `count + k * initial`
//! timer ticks have passed; periodic expiries missed while nobody looked coalesce into one
//! interrupt, as the IRR holds one request per vector. A change of divide or of the mode
//! between one-shot and periodic re-bases the countdown at the time of the write, dropping
//! the fraction of a tick in progress (at most 128 clocks). A switch into or out of
//! TSC-deadline mode disarms the timer (11.5.4.1).

/// Nanoseconds in a second.
const NS_PER_S: u128 = 1_000_000_000;

/// Timer mode: LVT timer bits 18:17 (SDM Vol. 3A, 11.5.1, Table 11-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 00: counts down once from the initial count.
    OneShot,
    /// 01: reloads the initial count at every expiry.
    Periodic,
    /// 10: fires when the guest TSC reaches IA32_TSC_DEADLINE.
    TscDeadline,
    /// 11: reserved; the timer does not run.
    Reserved,
}

impl Mode {
    /// The mode an LVT timer entry selects.
    pub fn of(lvt: u32) -> Self {
        match (lvt >> 17) & 3 {
            0 => Self::OneShot,
            1 => Self::Periodic,
            2 => Self::TscDeadline,
            _ => Self::Reserved,
        }
    }

    fn counts(self) -> bool {
        matches!(self, Self::OneShot | Self::Periodic)
    }
}

/// A one-shot or periodic countdown in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Countdown {
    /// Guest time at which the counter held `count`.
    pub start_ns: u64,
    /// The count then: 1 up to the initial count.
    pub count: u32,
    /// Expiries already accounted (periodic mode; one-shot countdowns end at the first).
    pub fired: u64,
    /// Guest time of the next expiry, computed with the fields it follows
    /// ([`Timer::countdown_at`]): the check on every VM entry then needs no 128-bit division.
    next_ns: u64,
}

/// An armed TSC deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// IA32_TSC_DEADLINE as written (never 0: 0 disarms).
    pub tsc: u64,
    /// The guest time at which the guest TSC reaches it.
    pub ns: u64,
}

/// The timer's registers and what is counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// Timer input clock (the bus clock, before the divider), in Hz; at least 1.
    pub hz: u64,
    /// Guest TSC rate in Hz; at least 1.
    pub tsc_hz: u64,
    /// Initial count register.
    pub initial: u32,
    /// Divide configuration register (bits 0, 1 and 3).
    pub divide: u32,
    /// One-shot or periodic countdown, if running.
    pub countdown: Option<Countdown>,
    /// TSC deadline, if armed.
    pub deadline: Option<Deadline>,
}

impl Timer {
    /// A stopped timer (power-up state) with the given rates (0 is taken as 1).
    pub fn new(hz: u64, tsc_hz: u64) -> Self {
        Self {
            hz: hz.max(1),
            tsc_hz: tsc_hz.max(1),
            initial: 0,
            divide: 0,
            countdown: None,
            deadline: None,
        }
    }

    /// The divisor the divide configuration selects: 2, 4, ... 128, or 1 for 1011b
    /// (SDM Vol. 3A, 11.5.4, Figure 11-10).
    pub fn divisor(&self) -> u64 {
        let code = (self.divide & 3) | (self.divide >> 1 & 4);
        1 << ((code + 1) & 7)
    }

    /// Whole timer ticks (divided clocks) in `ns` nanoseconds.
    fn ticks(&self, ns: u64) -> u128 {
        u128::from(ns) * u128::from(self.hz) / (u128::from(self.divisor()) * NS_PER_S)
    }

    /// The first number of nanoseconds holding `ticks` whole ticks (saturating).
    fn ns_for(&self, ticks: u128) -> u64 {
        let scaled = ticks.saturating_mul(u128::from(self.divisor()) * NS_PER_S);
        u64::try_from(scaled.div_ceil(u128::from(self.hz))).unwrap_or(u64::MAX)
    }

    /// Guest time of the expiry after `fired` accounted ones of countdown `c`.
    fn expiry_of(&self, c: &Countdown, fired: u64) -> u64 {
        let ticks = u128::from(c.count) + u128::from(fired) * u128::from(self.initial);
        c.start_ns.saturating_add(self.ns_for(ticks))
    }

    /// A countdown from `count` at guest time `start_ns` with `fired` expiries accounted, under
    /// this timer's initial count, divider and rate.
    pub(super) fn countdown_at(&self, start_ns: u64, count: u32, fired: u64) -> Countdown {
        let mut c = Countdown {
            start_ns,
            count,
            fired,
            next_ns: 0,
        };
        c.next_ns = self.expiry_of(&c, fired);
        c
    }

    /// Guest time of the next expiry in `mode`, if the timer is armed.
    pub fn expiry(&self, mode: Mode) -> Option<u64> {
        match mode {
            Mode::OneShot | Mode::Periodic => self.countdown.map(|c| c.next_ns),
            Mode::TscDeadline => self.deadline.map(|d| d.ns),
            Mode::Reserved => None,
        }
    }

    /// The guest time of the expiry before the next one of a periodic countdown, if any
    /// (for the restore checks: it must not be after the saved time).
    pub fn previous_expiry(&self) -> Option<u64> {
        let c = self.countdown?;
        c.fired.checked_sub(1).map(|k| self.expiry_of(&c, k))
    }

    /// Accounts every expiry up to guest time `now` in `mode`; true if there was at least one.
    /// One-shot countdowns stop and TSC deadlines disarm (reading 0 again, 11.5.4.1).
    #[inline]
    pub fn advance(&mut self, mode: Mode, now: u64) -> bool {
        match self.expiry(mode) {
            Some(at) if at <= now => self.expire(mode, now),
            _ => false,
        }
    }

    /// [`advance`](Self::advance) past an expiry (kept out of line: the check runs on every VM
    /// entry, an expiry about once a millisecond at most).
    #[cold]
    fn expire(&mut self, mode: Mode, now: u64) -> bool {
        match mode {
            Mode::Periodic => {
                let (initial, ticks) = (u128::from(self.initial.max(1)), self.countdown_ticks(now));
                if let Some(c) = self.countdown {
                    let past = ticks.saturating_sub(u128::from(c.count)) / initial + 1;
                    let past = u64::try_from(past).unwrap_or(u64::MAX);
                    let fired = past.max(c.fired.saturating_add(1));
                    self.countdown = Some(self.countdown_at(c.start_ns, c.count, fired));
                }
            }
            Mode::TscDeadline => self.deadline = None,
            _ => self.countdown = None,
        }
        true
    }

    /// Ticks since the countdown's start at guest time `now` (0 if stopped).
    fn countdown_ticks(&self, now: u64) -> u128 {
        self.countdown
            .map_or(0, |c| self.ticks(now.saturating_sub(c.start_ns)))
    }

    /// The current count register at guest time `now` (0 when stopped and in TSC-deadline
    /// mode, 11.5.4.1).
    pub fn current(&self, mode: Mode, now: u64) -> u32 {
        let Some(c) = self.countdown.filter(|_| mode.counts()) else {
            return 0;
        };
        let (d, count) = (self.countdown_ticks(now), u128::from(c.count));
        let left = if d < count {
            count - d
        } else if mode == Mode::Periodic {
            let initial = u128::from(self.initial.max(1));
            initial - (d - count) % initial
        } else {
            0
        };
        left as u32
    }

    /// A write of the initial count at guest time `now`: starts a countdown from it (0 stops
    /// the timer); ignored in TSC-deadline mode (11.5.4.1).
    pub fn set_initial(&mut self, mode: Mode, value: u32, now: u64) {
        if mode == Mode::TscDeadline {
            return;
        }
        self.initial = value;
        self.countdown = (value != 0 && mode.counts()).then(|| self.countdown_at(now, value, 0));
    }

    /// Restarts a running countdown from its current count (`count`, read in the old
    /// configuration) at `now`, if it still counts in `mode`.
    fn rebase(&mut self, count: u32, mode: Mode, now: u64) {
        self.countdown = self
            .countdown
            .filter(|_| count != 0 && mode.counts())
            .map(|_| self.countdown_at(now, count, 0));
    }

    /// A write of the divide configuration at `now`: the count goes on at the new rate.
    pub fn set_divide(&mut self, mode: Mode, value: u32, now: u64) {
        let count = self.current(mode, now);
        self.divide = value & super::regs::DIVIDE_WRITABLE;
        self.rebase(count, mode, now);
    }

    /// An LVT timer write that changes the mode from `old` to `new` at `now`.
    pub fn change_mode(&mut self, old: Mode, new: Mode, now: u64) {
        if old == new {
            return;
        }
        if old == Mode::TscDeadline || new == Mode::TscDeadline {
            self.initial = 0;
            self.countdown = None;
            self.deadline = None;
        } else {
            let count = self.current(old, now);
            self.rebase(count, new, now);
        }
    }

    /// IA32_TSC_DEADLINE as the guest reads it: 0 unless armed in TSC-deadline mode.
    pub fn read_deadline(&self, mode: Mode) -> u64 {
        match (mode, self.deadline) {
            (Mode::TscDeadline, Some(d)) => d.tsc,
            _ => 0,
        }
    }

    /// A write of IA32_TSC_DEADLINE at guest time `now`, when the guest TSC reads
    /// `guest_tsc`: arms the timer for `value` (0 disarms). Ignored outside TSC-deadline mode.
    /// A deadline already passed expires at `now`.
    pub fn write_deadline(&mut self, mode: Mode, value: u64, guest_tsc: u64, now: u64) {
        if mode != Mode::TscDeadline {
            return;
        }
        self.deadline = (value != 0).then(|| {
            let ticks = u128::from(value.saturating_sub(guest_tsc));
            let ns = (ticks * NS_PER_S).div_ceil(u128::from(self.tsc_hz));
            Deadline {
                tsc: value,
                ns: now.saturating_add(u64::try_from(ns).unwrap_or(u64::MAX)),
            }
        });
    }
}
