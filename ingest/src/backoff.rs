//! Exponential backoff with full jitter, for retrying Redis and Kafka writes.

use std::time::Duration;

use rand::Rng;

/// Retry delays: each attempt waits a random time up to a doubling cap.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays start below `min` and are capped at `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { min, max, attempt: 0 }
    }

    /// The delay before the next attempt: uniform in `[min/2, cap]` where the
    /// cap doubles per attempt up to `max` ("full jitter", so retrying workers
    /// spread out instead of hammering a recovering Redis in lockstep).
    pub fn next_delay(&mut self) -> Duration {
        let cap = self.min.saturating_mul(1 << self.attempt.min(16)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let low = (self.min / 2).min(cap);
        rand::rng().random_range(low..=cap)
    }

    /// Attempts made since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(5) && first <= Duration::from_millis(10), "{first:?}");
        for _ in 0..50 {
            assert!(b.next_delay() <= Duration::from_millis(100));
        }
        assert_eq!(b.attempts(), 51);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(10));
    }
}
