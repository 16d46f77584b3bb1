//! Liveness: when to send a heartbeat (nothing sent for `interval`) and when the peer is lost
//! (nothing authenticated received for `timeout`). `PeerLost` is reported exactly once.

/// Heartbeat and peer-silence timers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Liveness {
    interval: u64,
    timeout: u64,
    last_tx: u64,
    last_rx: u64,
    lost: bool,
}

impl Liveness {
    pub(crate) fn new(interval: u64, timeout: u64) -> Self {
        Self {
            interval,
            timeout,
            last_tx: 0,
            last_rx: 0,
            lost: false,
        }
    }

    /// Starts both timers (at pairing).
    pub(crate) fn start(&mut self, now: u64) {
        self.last_tx = now;
        self.last_rx = now;
    }

    /// A frame was sent.
    pub(crate) fn on_transmit(&mut self, now: u64) {
        self.last_tx = self.last_tx.max(now);
    }

    /// An authenticated frame arrived.
    pub(crate) fn on_receive(&mut self, now: u64) {
        self.last_rx = self.last_rx.max(now);
    }

    /// When the next heartbeat is due.
    pub(crate) fn heartbeat_due(&self) -> u64 {
        self.last_tx.saturating_add(self.interval)
    }

    /// When the peer will be declared lost (if nothing arrives before).
    pub(crate) fn loss_deadline(&self) -> u64 {
        self.last_rx.saturating_add(self.timeout)
    }

    /// How long the peer has been silent.
    pub(crate) fn silent_for(&self, now: u64) -> u64 {
        now.saturating_sub(self.last_rx)
    }

    /// Returns `true` exactly once: the first call at which the peer has been silent for more
    /// than the timeout.
    pub(crate) fn check_lost(&mut self, now: u64) -> bool {
        if !self.lost && self.silent_for(now) > self.timeout {
            self.lost = true;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_once() {
        let mut l = Liveness::new(10, 100);
        l.start(1000);
        assert_eq!(l.heartbeat_due(), 1010);
        l.on_transmit(1005);
        assert_eq!(l.heartbeat_due(), 1015);
        assert!(!l.check_lost(1100));
        l.on_receive(1050);
        assert_eq!(l.loss_deadline(), 1150);
        assert!(!l.check_lost(1150));
        assert!(l.check_lost(1151));
        assert!(!l.check_lost(5000));
        assert_eq!(l.silent_for(1200), 150);
    }
}
