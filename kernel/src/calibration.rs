// SPDX-License-Identifier: MIT OR Apache-2.0
//! Which reference-timer windows to trust when calibrating the TSC (the arithmetic;
//! `arch::x86_64::time` takes the readings against the ACPI PM timer or the PIT).
//!
//! A window's edges are only known between two TSC readings: a PIT countdown starts somewhere
//! in the gate write and ends somewhere between the last poll that found it running and the
//! first that found it expired; a PM-timer reading happens somewhere inside its port read.
//! Normally those brackets are a few microseconds wide. When the
//! CPU is taken away inside one (an SMI on hardware; on an emulator, the host preempting the
//! emulator's thread), the bracket grows by the time away and the window's rate is off by
//! as much: a few milliseconds in a 50 ms window is percents, and two hosts of a pair must
//! agree on the TSC rate to within `TSC_TOLERANCE_PPM`. Like Linux's quick PIT calibration,
//! a window counts only where its brackets are narrow; the rate is the median of those.
//!
//! The PM timer is preferred where the FADT names one. Under a loaded QEMU, PIT windows with
//! narrow brackets were still seen off by up to 3.6 % (a pair refused itself over the TSC
//! rates its hosts measured), and by 0.2 % in the LAPIC timer's count, while the PM timer's
//! windows on the same hosts agreed within 5 ppm: its count is read, not inferred from when a
//! poll first saw an expiry.

use alloc::vec::Vec;

/// TSC readings around one reference window (a PIT countdown, or two PM-timer readings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edges {
    /// Just before and just after the write that started the countdown (the PIT), or the
    /// first reading (the PM timer).
    pub start: (u64, u64),
    /// After the last poll that found the countdown running, and after the poll that found it
    /// expired (the PIT), or just before and just after the last reading (the PM timer).
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

/// Ticks a free-running counter of `mask + 1` values (a 24- or 32-bit PM timer) advanced from
/// `first` to `now`, across at most one wrap.
pub fn counted(first: u32, now: u32, mask: u32) -> u32 {
    now.wrapping_sub(first) & mask
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
/// the median (by `rate`) of the first [`GOOD_WINDOWS`] narrow ones; once [`MAX_WINDOWS`] are
/// measured without that many, the median of the narrowest [`GOOD_WINDOWS`].
pub fn pick<W: Copy>(
    windows: &[W],
    edges: impl Fn(&W) -> Edges,
    rate: impl Fn(&W) -> u64,
) -> Option<W> {
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
    kept.sort_by_key(|w| rate(w));
    kept.get(kept.len().saturating_sub(1) / 2).copied()
}

#[cfg(test)]
mod tests;
