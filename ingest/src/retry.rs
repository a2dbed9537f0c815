//! Waiting between attempts of a failed write: backoff, health, and the drain deadline.
//!
//! Callers classify each failure ([`Failure`]) and call [`Retry::wait`],
//! which records it (metric, health state, one log line per change of
//! state), then sleeps an exponentially growing, jittered delay (`backon`).
//! Retries go on for as long as it takes, except at shutdown: once shutdown
//! has begun, they stop at the drain deadline and the batch is abandoned
//! without storing its offsets, so its records are redelivered.

use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBackoff, ExponentialBuilder};
use leaderboard_store::Failure;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::health::{Health, Step};

/// Retry state of one writer.
#[derive(Debug)]
pub struct Retry {
    builder: ExponentialBuilder,
    delays: ExponentialBackoff,
    max: Duration,
    attempts: u32,
    shutdown: CancellationToken,
    drain_timeout: Duration,
    deadline: Option<Instant>,
}

impl Retry {
    /// Delays grow from `min` to at most `max` (each with up to 100 % jitter);
    /// after `shutdown`, attempts stop `drain_timeout` later.
    pub fn new(min: Duration, max: Duration, shutdown: CancellationToken, drain_timeout: Duration) -> Self {
        // The jitter adds up to one more delay, so the ramp is halved to keep `max` a bound.
        let builder = ExponentialBuilder::default()
            .with_min_delay(min / 2)
            .with_max_delay(max / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Self { delays: builder.build(), builder, max, attempts: 0, shutdown, drain_timeout, deadline: None }
    }

    /// `step` failed with `failure`: records it in `health`, then waits before
    /// the next attempt. Returns false when the attempt should be abandoned
    /// (shutdown began and its drain deadline passes before the next attempt).
    pub async fn wait(
        &mut self,
        health: &Health,
        step: Step,
        failure: Failure,
        error: &(dyn std::fmt::Display + Sync),
    ) -> bool {
        self.attempts += 1;
        metrics::counter!("ingest_write_failures_total", "step" => step.as_str(), "class" => failure.as_str())
            .increment(1);
        health.fail(step, failure);
        // The failure is logged once per state change by `health`; each attempt only at debug level.
        debug!(step = step.as_str(), class = failure.as_str(), attempt = self.attempts, %error, "write failed");
        // `without_max_times`: the iterator never ends; `max` is only a fallback.
        let delay = self.delays.next().unwrap_or(self.max);
        self.sleep(delay).await
    }

    /// Waits `delay` for something that is not a failure (another process's
    /// work to finish), with the same drain deadline as [`Retry::wait`]:
    /// false when the wait should be abandoned.
    pub async fn pause(&mut self, delay: Duration) -> bool {
        self.sleep(delay).await
    }

    async fn sleep(&mut self, delay: Duration) -> bool {
        if self.shutdown.is_cancelled() {
            let end = *self.deadline.get_or_insert_with(|| Instant::now() + self.drain_timeout);
            if Instant::now() + delay >= end {
                return false;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.shutdown.cancelled(), if self.deadline.is_none() => {
                self.deadline = Some(Instant::now() + self.drain_timeout);
            }
        }
        true
    }

    /// `step` succeeded: the next failure starts from the shortest delay again.
    pub fn succeeded(&mut self, health: &Health, step: Step) {
        if self.attempts > 0 {
            self.attempts = 0;
            self.delays = self.builder.build();
        }
        health.succeed(step);
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn delays_grow_stay_bounded_and_stop_at_the_drain_deadline() {
        let shutdown = CancellationToken::new();
        let health = Health::new();
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        let mut retry = Retry::new(min, max, shutdown.clone(), Duration::from_secs(5));
        let mut waited = Vec::new();
        for _ in 0..12 {
            let start = Instant::now();
            assert!(retry.wait(&health, Step::Redis, Failure::Transient, &"boom").await);
            waited.push(start.elapsed());
        }
        assert!(waited[0] >= min / 2 && waited[0] <= min, "{waited:?}");
        assert!(waited.iter().all(|d| *d <= max), "{waited:?}");
        assert!(waited[11] >= max / 2, "grew to the cap: {waited:?}");
        assert_eq!(health.status().blocked.map(|b| b.step), Some(Step::Redis));
        retry.succeeded(&health, Step::Redis);
        assert!(health.status().blocked.is_none());
        assert_eq!(retry.attempts(), 0);

        shutdown.cancel();
        let start = Instant::now();
        while retry.wait(&health, Step::Redis, Failure::StoreBlocked, &"oom").await {}
        assert!(start.elapsed() <= Duration::from_secs(5), "gave up by the drain deadline: {:?}", start.elapsed());
    }
}
