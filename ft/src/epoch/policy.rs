// SPDX-License-Identifier: MIT OR Apache-2.0
//! Epoch length from the workload (US20170262299, "taking checkpoints at varying intervals":
//! the trigger time depends on the workload). Short epochs release held output sooner; long
//! epochs stun less often and coalesce repeated writes to hot pages into one copy. So:
//!
//! 1. **The link is swamped**: the last epoch's dirty set takes longer to send than the epoch
//!    ran. Shortening would not release output sooner (the acknowledgement waits for the
//!    transfer anyway) and would send hot pages again and again, so the next epoch grows to
//!    cover the transfer time with a quarter of headroom.
//! 2. **Output is waiting** (held for release): halve the epoch, so clients see it sooner.
//! 3. **Otherwise** nothing waits on the epoch: grow it by a quarter, which costs nothing
//!    observable and saves stuns.
//!
//! Every result is clamped to the configured `[min, max]`.

use core::fmt;

/// Bytes per guest page sent in a checkpoint (without compression).
pub const PAGE_BYTES: u64 = 4096;

/// Bounds of the epoch length (from the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochPolicy {
    min_ns: u64,
    max_ns: u64,
}

/// Bounds that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// The minimum is zero.
    ZeroMinimum,
    /// The minimum exceeds the maximum.
    MinAboveMax,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroMinimum => write!(f, "the shortest epoch must be longer than zero"),
            Self::MinAboveMax => write!(f, "the shortest epoch is longer than the longest"),
        }
    }
}

/// What the last epoch looked like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EpochObservation {
    /// How long it ran (ns).
    pub length_ns: u64,
    /// Pages it dirtied.
    pub dirty_pages: u64,
    /// Measured checkpoint link throughput (bytes per second); 0 if not known yet.
    pub link_bytes_per_sec: u64,
    /// Whether guest output is held waiting for an acknowledgement.
    pub output_waiting: bool,
}

/// Why the policy chose a length (for logs and benchmarks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Rule 1: the dirty set takes longer to send than the epoch ran.
    LinkSwamped,
    /// Rule 2: output is held.
    OutputWaiting,
    /// Rule 3: nothing waits.
    Idle,
}

impl EpochPolicy {
    /// Epochs between `min_ns` and `max_ns`.
    ///
    /// # Errors
    /// [`PolicyError`] for a zero minimum or a minimum above the maximum.
    pub fn new(min_ns: u64, max_ns: u64) -> Result<Self, PolicyError> {
        if min_ns == 0 {
            return Err(PolicyError::ZeroMinimum);
        }
        if min_ns > max_ns {
            return Err(PolicyError::MinAboveMax);
        }
        Ok(Self { min_ns, max_ns })
    }

    /// The shortest epoch (ns).
    #[must_use]
    pub fn min_ns(&self) -> u64 {
        self.min_ns
    }

    /// The longest epoch (ns).
    #[must_use]
    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    /// Time to send `pages` dirty pages at `bytes_per_sec` (ns); `None` if the rate is unknown.
    #[must_use]
    pub fn transfer_ns(pages: u64, bytes_per_sec: u64) -> Option<u64> {
        if bytes_per_sec == 0 {
            return None;
        }
        let ns =
            u128::from(pages) * u128::from(PAGE_BYTES) * 1_000_000_000 / u128::from(bytes_per_sec);
        Some(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// The next epoch's length and the rule that chose it.
    #[must_use]
    pub fn next(&self, last: &EpochObservation) -> (u64, Reason) {
        let last_len = last.length_ns.clamp(self.min_ns, self.max_ns);
        let transfer = Self::transfer_ns(last.dirty_pages, last.link_bytes_per_sec);
        let (len, reason) = match transfer {
            Some(t) if t > last.length_ns => (t.saturating_add(t / 4), Reason::LinkSwamped),
            _ if last.output_waiting => (last_len / 2, Reason::OutputWaiting),
            _ => (last_len.saturating_add(last_len / 4), Reason::Idle),
        };
        (len.clamp(self.min_ns, self.max_ns), reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    const MS: u64 = 1_000_000;

    fn policy() -> EpochPolicy {
        EpochPolicy::new(5 * MS, 200 * MS).unwrap()
    }

    fn seen(length_ms: u64, dirty_pages: u64, mib_per_sec: u64, output: bool) -> EpochObservation {
        EpochObservation {
            length_ns: length_ms * MS,
            dirty_pages,
            link_bytes_per_sec: mib_per_sec << 20,
            output_waiting: output,
        }
    }

    #[test]
    fn bounds_are_validated() {
        assert_eq!(EpochPolicy::new(0, 10), Err(PolicyError::ZeroMinimum));
        assert_eq!(EpochPolicy::new(11, 10), Err(PolicyError::MinAboveMax));
        let p = EpochPolicy::new(10, 10).unwrap();
        assert_eq!((p.min_ns(), p.max_ns()), (10, 10));
        assert_eq!(
            p.next(&seen(50, 0, 0, true)).0,
            10,
            "fixed-length epochs stay fixed"
        );
    }

    #[test]
    fn transfer_time() {
        // 256 pages = 1 MiB at 1 MiB/s: one second.
        assert_eq!(EpochPolicy::transfer_ns(256, 1 << 20), Some(1_000_000_000));
        assert_eq!(EpochPolicy::transfer_ns(256, 0), None);
        assert_eq!(EpochPolicy::transfer_ns(u64::MAX, 1), Some(u64::MAX));
    }

    #[test]
    fn waiting_output_halves_the_epoch_down_to_the_minimum() {
        let p = policy();
        let mut len = 100;
        let mut seen_lengths = std::vec::Vec::new();
        for _ in 0..6 {
            let (next, why) = p.next(&seen(len, 10, 100, true));
            assert_eq!(why, Reason::OutputWaiting);
            len = next / MS;
            seen_lengths.push(len);
        }
        assert_eq!(seen_lengths, [50, 25, 12, 6, 5, 5]);
    }

    #[test]
    fn an_idle_guest_grows_the_epoch_up_to_the_maximum() {
        let p = policy();
        assert_eq!(p.next(&seen(100, 10, 100, false)), (125 * MS, Reason::Idle));
        assert_eq!(p.next(&seen(190, 10, 100, false)), (200 * MS, Reason::Idle));
        assert_eq!(
            p.next(&seen(1, 0, 0, false)).0,
            6_250_000,
            "from the minimum up"
        );
    }

    #[test]
    fn a_swamped_link_lengthens_the_epoch_even_with_output_waiting() {
        let p = policy();
        // 2560 pages = 10 MiB at 100 MiB/s: 100 ms to send, after a 20 ms epoch.
        let (len, why) = p.next(&seen(20, 2560, 100, true));
        assert_eq!(why, Reason::LinkSwamped);
        assert_eq!(len, 125 * MS);
        // Far beyond the link: capped at the maximum.
        assert_eq!(
            p.next(&seen(20, 1 << 30, 1, true)),
            (200 * MS, Reason::LinkSwamped)
        );
        // A dirty set that fits in the epoch does not count as swamping.
        assert_eq!(p.next(&seen(200, 2560, 100, true)).1, Reason::OutputWaiting);
    }

    #[test]
    fn results_always_lie_within_the_bounds() {
        let p = policy();
        let mut rng = Rng::new(0x5EED);
        for _ in 0..10_000 {
            let x = rng.next_u64();
            let o = EpochObservation {
                length_ns: x % (1000 * MS),
                dirty_pages: (x >> 20) % 1_000_000,
                link_bytes_per_sec: (x >> 8) % (1 << 30),
                output_waiting: x & 1 == 1,
            };
            let (len, _) = p.next(&o);
            assert!((p.min_ns()..=p.max_ns()).contains(&len), "{o:?} -> {len}");
        }
    }
}
