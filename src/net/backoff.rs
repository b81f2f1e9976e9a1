//! The wait between reconnect attempts, one rule for the FMC session and every output: it doubles
//! from a minimum up to a maximum after each failure, and each wait is drawn from 75–100 % of the
//! nominal one so that many clients do not retry in step.

use std::time::Duration;

use rand::Rng;

/// No wait is shorter, whatever the configuration says: a retry loop must never spin.
pub const FLOOR: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// The wait before the next attempt, after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self
            .min
            .saturating_mul(1u32 << self.failures.min(30))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        nominal
            .mul_f64(rand::rng().random_range(0.75..=1.0))
            .max(FLOOR)
    }

    /// After a success: the next failure waits `min` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_minimum_up_to_the_maximum_with_jitter() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        for round in 0..50 {
            let waits: Vec<Duration> = (0..7).map(|_| b.next_delay()).collect();
            for (w, n) in waits.iter().zip([1, 2, 4, 8, 10, 10, 10]) {
                let n = Duration::from_secs(n);
                assert!(
                    *w <= n && *w >= n.mul_f64(0.75),
                    "round {round}: {w:?} vs {n:?}"
                );
            }
            b.reset();
        }
    }

    #[test]
    fn never_below_the_floor_and_never_overflows() {
        let mut zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.next_delay(), FLOOR, "never a busy loop");
        let mut tiny = Backoff::new(Duration::from_millis(100), Duration::from_millis(100));
        assert_eq!(tiny.next_delay(), FLOOR);
        // A maximum below the minimum is raised to it.
        let mut inverted = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert!(inverted.next_delay() >= Duration::from_millis(1500));
        let mut long = Backoff::new(Duration::from_secs(1), Duration::from_secs(3600));
        for _ in 0..200 {
            assert!(long.next_delay() <= Duration::from_secs(3600));
        }
    }
}
