//! Round-trip-time estimation and retransmission timeout (RFC 6298): SRTT/RTTVAR smoothing
//! with alpha = 1/8 and beta = 1/4, RTO = SRTT + max(G, 4 RTTVAR) clamped to configured bounds,
//! exponential backoff on expiry, and Karn's rule (callers only sample frames sent once).

/// Clock granularity G: the caller's time is nanoseconds, but timers are typically serviced
/// with ~1 ms resolution.
const GRANULARITY: u64 = 1_000_000;

/// RFC 6298 estimator.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RttEstimator {
    srtt: Option<u64>,
    rttvar: u64,
    base_rto: u64,
    backoff: u32,
    min: u64,
    max: u64,
}

impl RttEstimator {
    pub(crate) fn new(initial: u64, min: u64, max: u64) -> Self {
        Self {
            srtt: None,
            rttvar: 0,
            base_rto: initial.clamp(min, max),
            backoff: 0,
            min,
            max,
        }
    }

    /// Feeds one measurement (RFC 6298 section 2.2/2.3) and clears the backoff.
    pub(crate) fn sample(&mut self, r: u64) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(s) => {
                // u128 so that absurd samples (time jumps) cannot overflow.
                let var = (3 * u128::from(self.rttvar) + u128::from(s.abs_diff(r))) / 4;
                let srtt = (7 * u128::from(s) + u128::from(r)) / 8;
                self.rttvar = u64::try_from(var).unwrap_or(u64::MAX);
                self.srtt = Some(u64::try_from(srtt).unwrap_or(u64::MAX));
            }
        }
        let s = self.srtt.unwrap_or(r);
        self.base_rto = s
            .saturating_add(GRANULARITY.max(4 * self.rttvar))
            .clamp(self.min, self.max);
        self.backoff = 0;
    }

    /// Doubles the timeout after an expiry (RFC 6298 section 5.5), up to the maximum.
    pub(crate) fn back_off(&mut self) {
        if self.rto() < self.max {
            self.backoff = self.backoff.saturating_add(1);
        }
    }

    /// The current timeout including backoff.
    pub(crate) fn rto(&self) -> u64 {
        let shift = self.backoff.min(32);
        self.base_rto.saturating_mul(1u64 << shift).min(self.max)
    }

    /// Smoothed RTT, if measured.
    pub(crate) fn srtt(&self) -> Option<u64> {
        self.srtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn rfc6298_arithmetic() {
        let mut r = RttEstimator::new(1000 * MS, MS, 60_000 * MS);
        assert_eq!(r.rto(), 1000 * MS);
        r.sample(100 * MS);
        // SRTT = 100, RTTVAR = 50, RTO = 100 + 4*50 = 300.
        assert_eq!(r.srtt(), Some(100 * MS));
        assert_eq!(r.rto(), 300 * MS);
        r.sample(200 * MS);
        // RTTVAR = 3/4*50 + 1/4*100 = 62.5, SRTT = 7/8*100 + 1/8*200 = 112.5.
        assert_eq!(r.srtt(), Some(112_500_000));
        assert_eq!(r.rto(), 112_500_000 + 4 * 62_500_000);
    }

    #[test]
    fn bounds_and_backoff() {
        let mut r = RttEstimator::new(200 * MS, 5 * MS, 1000 * MS);
        r.sample(10_000);
        assert_eq!(r.rto(), 5 * MS);
        r.back_off();
        assert_eq!(r.rto(), 10 * MS);
        for _ in 0..100 {
            r.back_off();
        }
        assert_eq!(r.rto(), 1000 * MS);
        r.sample(10_000);
        assert_eq!(r.rto(), 5 * MS);
        r.sample(5000 * MS);
        assert_eq!(r.rto(), 1000 * MS);
    }
}
