//! Anti-replay sliding window over a per-direction 64-bit frame counter (in the manner of
//! IPsec's RFC 4303 section 3.4.3, with a 1024-entry bitmap so heavy reordering is tolerated).

/// Counters this far below the highest seen are rejected as too old.
pub const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// Tracks which counters in `(top - WINDOW, top]` were accepted.
#[derive(Clone, Debug)]
pub(crate) struct ReplayWindow {
    top: u64,
    bits: [u64; WORDS],
}

impl ReplayWindow {
    pub(crate) const fn new() -> Self {
        Self {
            top: 0,
            bits: [0; WORDS],
        }
    }

    fn slot(c: u64) -> (usize, u64) {
        // c % WINDOW < 1024, so the index is < 16.
        let i = (c % WINDOW) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    /// Whether counter `c` may be accepted (never seen and not too old). Counter 0 is never
    /// valid. Call before authenticating, then [`ReplayWindow::accept`] after.
    pub(crate) fn check(&self, c: u64) -> bool {
        if c == 0 {
            return false;
        }
        if c > self.top {
            return true;
        }
        if self.top - c >= WINDOW {
            return false;
        }
        let (w, b) = Self::slot(c);
        self.bits[w] & b == 0
    }

    /// Records counter `c` (which passed [`ReplayWindow::check`] and authenticated).
    pub(crate) fn accept(&mut self, c: u64) {
        if c > self.top {
            if c - self.top >= WINDOW {
                self.bits = [0; WORDS];
            } else {
                for k in self.top + 1..=c {
                    let (w, b) = Self::slot(k);
                    self.bits[w] &= !b;
                }
            }
            self.top = c;
        }
        let (w, b) = Self::slot(c);
        self.bits[w] |= b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_semantics() {
        let mut w = ReplayWindow::new();
        assert!(!w.check(0));
        for c in [5, 3, 4, 1, 2] {
            assert!(w.check(c));
            w.accept(c);
            assert!(!w.check(c));
        }
        w.accept(2000);
        assert!(!w.check(5));
        assert!(!w.check(2000 - WINDOW));
        assert!(w.check(2001 - WINDOW));
        w.accept(2001 - WINDOW);
        assert!(!w.check(2001 - WINDOW));
        assert!(w.check(1999));
        w.accept(2100);
        assert!(w.check(1999));
        assert!(!w.check(2000));
        w.accept(u64::MAX);
        assert!(!w.check(u64::MAX));
        assert!(w.check(u64::MAX - 1));
    }

    #[test]
    fn matches_a_set_model() {
        let mut w = ReplayWindow::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut top = 0u64;
        let mut x = 0x1234_5678_u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let c = (top + 200).saturating_sub(x % 1500).max(1);
            let model = !seen.contains(&c) && (c > top || top - c < WINDOW);
            assert_eq!(w.check(c), model, "counter {c} top {top}");
            if model {
                w.accept(c);
                seen.insert(c);
                top = top.max(c);
            }
        }
    }
}
