// SPDX-License-Identifier: MIT OR Apache-2.0
//! How the PIT paces `hz` steps per second.
//!
//! Channel 0 divides the 1 193 182 Hz input clock by a 16-bit count (Intel 8254 datasheet,
//! order no. 231164), so it cannot tick slower than about 18.2 Hz. Below 19 steps per second
//! the timer ticks a whole multiple faster and a step takes that many ticks.

/// The PIT's input clock in Hz (105/88 MHz, rounded).
pub const PIT_HZ: u64 = 1_193_182;

/// A PIT programming for a step rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Channel 0's count (1..=65536; 65536 is written as 0).
    pub divisor: u32,
    /// Timer ticks per step.
    pub ticks_per_step: u64,
}

impl Pace {
    /// The programming for `hz` steps per second (`hz` >= 1).
    pub fn for_hz(hz: u64) -> Pace {
        let hz = hz.max(1);
        // hz * ticks_per_step >= 19 > PIT_HZ / 65536.
        let ticks_per_step = 1 + 18 / hz;
        let tick_hz = hz * ticks_per_step;
        let divisor = (PIT_HZ + tick_hz / 2) / tick_hz;
        Pace {
            divisor: divisor.clamp(1, 65536) as u32,
            ticks_per_step,
        }
    }

    /// Milliseconds in `ticks` timer ticks (rounded down).
    pub fn millis(&self, ticks: u64) -> u64 {
        let ms = u128::from(ticks) * u128::from(self.divisor) * 1000 / u128::from(PIT_HZ);
        u64::try_from(ms).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rate_fits_the_counter_and_is_close() {
        for hz in 1..=crate::args::MAX_HZ {
            let pace = Pace::for_hz(hz);
            assert!((1..=65536).contains(&pace.divisor), "{hz}: {pace:?}");
            let step_hz = PIT_HZ as f64 / f64::from(pace.divisor) / pace.ticks_per_step as f64;
            let error = (step_hz - hz as f64).abs() / hz as f64;
            assert!(error < 0.001, "{hz} Hz paced at {step_hz} Hz");
        }
        assert_eq!(
            Pace::for_hz(20),
            Pace {
                divisor: 59659,
                ticks_per_step: 1
            }
        );
        let hundred = Pace::for_hz(100);
        assert_eq!(hundred.divisor, 11932);
        assert_eq!(hundred.millis(100), 1000, "11932 / 1193182 s per tick");
        assert_eq!(hundred.millis(1), 10);
        assert_eq!(hundred.millis(100_000), 1_000_015);
        assert_eq!(Pace::for_hz(1).millis(19), 999);
        assert_eq!(
            Pace::for_hz(1),
            Pace {
                divisor: 62799,
                ticks_per_step: 19
            }
        );
    }
}
