//! Congestion control in frames, after RFC 5681/6582 (slow start, congestion avoidance,
//! one multiplicative decrease per recovery episode, restart from one frame after a timeout).
//! The emulated NICs drop 30-95% of frames when flooded, so backing off on loss matters as
//! much as the receiver's advertised window.

/// AIMD congestion window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Congestion {
    enabled: bool,
    cwnd: u32,
    ssthresh: u32,
    /// Fractional growth in congestion avoidance (frames acked since the last increment).
    acc: u32,
    /// Losses of frames below this sequence number belong to the current recovery episode.
    recovery_end: u64,
    max: u32,
    initial: u32,
}

const MIN_CWND: u32 = 2;

impl Congestion {
    pub(crate) fn new(enabled: bool, initial: u32, max: u32) -> Self {
        let initial = initial.clamp(MIN_CWND, max.max(MIN_CWND));
        Self {
            enabled,
            cwnd: initial,
            ssthresh: max,
            acc: 0,
            recovery_end: 0,
            max,
            initial,
        }
    }

    /// Frames that may be in flight.
    pub(crate) fn window(&self) -> u32 {
        if self.enabled {
            self.cwnd.min(self.max)
        } else {
            self.max
        }
    }

    /// `n` frames newly acknowledged.
    pub(crate) fn on_ack(&mut self, n: u32) {
        if self.cwnd < self.ssthresh {
            self.cwnd = self.cwnd.saturating_add(n).min(self.max);
        } else {
            self.acc = self.acc.saturating_add(n);
            if self.acc >= self.cwnd {
                self.acc -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(1).min(self.max);
            }
        }
    }

    /// A loss was detected for frame `seq` while `next_seq` is the next new sequence number;
    /// halves the window once per episode.
    pub(crate) fn on_loss(&mut self, seq: u64, next_seq: u64, in_flight: u32) {
        if seq < self.recovery_end {
            return;
        }
        self.recovery_end = next_seq;
        self.ssthresh = (in_flight.max(self.cwnd) / 2).max(MIN_CWND);
        self.cwnd = self.ssthresh;
        self.acc = 0;
    }

    /// The retransmission timer expired.
    pub(crate) fn on_timeout(&mut self, next_seq: u64) {
        self.ssthresh = (self.cwnd / 2).max(MIN_CWND);
        self.cwnd = MIN_CWND.min(self.initial);
        self.acc = 0;
        self.recovery_end = next_seq;
    }

    pub(crate) fn cwnd(&self) -> u32 {
        self.cwnd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aimd() {
        let mut c = Congestion::new(true, 4, 100);
        c.on_ack(4);
        assert_eq!(c.window(), 8);
        c.on_loss(10, 20, 8);
        assert_eq!(c.window(), 4);
        c.on_loss(12, 20, 8); // same episode
        assert_eq!(c.window(), 4);
        c.on_ack(4);
        assert_eq!(c.window(), 5);
        c.on_timeout(30);
        assert_eq!(c.window(), 2);
        c.on_ack(1000);
        assert!(c.window() <= 100);
        let off = Congestion::new(false, 4, 100);
        assert_eq!(off.window(), 100);
    }
}
