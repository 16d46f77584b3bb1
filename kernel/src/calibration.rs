// SPDX-License-Identifier: MIT OR Apache-2.0
//! Which PIT windows to trust when calibrating the TSC (the arithmetic; `arch::x86_64::time`
//! takes the readings).
//!
//! A window's edges are only known between two TSC readings: the countdown starts somewhere
//! in the gate write, and ends somewhere between the last poll that found it running and the
//! first that found it expired. Normally those brackets are a few microseconds wide. When the
//! CPU is taken away inside one (an SMI on hardware; on an emulator, the host preempting the
//! emulator's thread), the bracket grows by the time away and the window's rate is off by
//! as much: a few milliseconds in a 50 ms window is percents, and two hosts of a pair must
//! agree on the TSC rate to within `TSC_TOLERANCE_PPM`. Like Linux's quick PIT calibration,
//! a window counts only where its brackets are narrow; the rate is the median of those.

use alloc::vec::Vec;

/// TSC readings around one PIT countdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edges {
    /// Just before and just after the write that started the countdown.
    pub start: (u64, u64),
    /// After the last poll that found the countdown running, and after the poll that found it
    /// expired.
    pub end: (u64, u64),
}

impl Edges {
    /// TSC ticks across the window, midpoint to midpoint of the brackets.
    pub fn ticks(&self) -> u64 {
        mid(self.end).saturating_sub(mid(self.start))
    }

    /// How far [`Edges::ticks`] can be off: half of both brackets' widths.
    pub fn slack(&self) -> u64 {
        (width(self.start) + width(self.end)).div_ceil(2)
    }

    /// Whether the window's rate is known to within `ppm` parts per million.
    pub fn within(&self, ppm: u64) -> bool {
        u128::from(self.slack()) * 1_000_000 <= u128::from(self.ticks()) * u128::from(ppm)
    }
}

fn mid((lo, hi): (u64, u64)) -> u64 {
    lo + hi.saturating_sub(lo) / 2
}

fn width((lo, hi): (u64, u64)) -> u64 {
    hi.saturating_sub(lo)
}

/// Largest error a window may carry to count, in parts per million: a tenth of the pair's
/// TSC tolerance, so two hosts calibrated this way agree well within it.
pub const WINDOW_PPM: u64 = 1_000;

/// Windows that must agree before the median is taken.
pub const GOOD_WINDOWS: usize = 3;

/// Most windows measured (a busy host may spoil many).
pub const MAX_WINDOWS: usize = 16;

/// The window to calibrate with, given those measured so far, or `None` to measure another:
/// the median (by ticks) of the first [`GOOD_WINDOWS`] narrow ones; once [`MAX_WINDOWS`] are
/// measured without that many, the median of the narrowest [`GOOD_WINDOWS`].
pub fn pick<W: Copy>(windows: &[W], edges: impl Fn(&W) -> Edges) -> Option<W> {
    let mut kept: Vec<W> = windows
        .iter()
        .filter(|w| edges(w).within(WINDOW_PPM))
        .take(GOOD_WINDOWS)
        .copied()
        .collect();
    if kept.len() < GOOD_WINDOWS {
        if windows.len() < MAX_WINDOWS {
            return None;
        }
        kept = windows.to_vec();
        kept.sort_by_key(|w| edges(w).slack());
        kept.truncate(GOOD_WINDOWS);
    }
    kept.sort_by_key(|w| edges(w).ticks());
    kept.get(kept.len().saturating_sub(1) / 2).copied()
}

#[cfg(test)]
mod tests;
