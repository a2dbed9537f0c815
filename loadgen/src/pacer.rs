//! Open-loop pacing: events are due at fixed times whatever the system does.
//!
//! Event `n` is due at `start + n / rate`. The sender asks how many events are
//! due now and sends them, so a stall is followed by a catch-up burst instead
//! of silently lowering the rate. Each event's latency is measured from its
//! *due* time, not from when it was actually sent: that is what corrects for
//! coordinated omission (a stalled system cannot hide its stall by slowing the
//! load generator down).

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::config::{START_AT_AHEAD, START_AT_BEHIND};

/// The instant a run's load is due to start: `at` (a wall-clock time) on the
/// monotonic clock, given what both clocks read `now`; `None` is at once.
/// A start further ahead or behind than the limits is refused.
pub fn start_instant(at: Option<SystemTime>, now: (Instant, SystemTime)) -> anyhow::Result<Instant> {
    let (instant, wall) = now;
    let Some(at) = at else { return Ok(instant) };
    match at.duration_since(wall) {
        Ok(ahead) => {
            anyhow::ensure!(
                ahead <= START_AT_AHEAD,
                "--start-at is {}s ahead, more than the {}s allowed",
                ahead.as_secs(),
                START_AT_AHEAD.as_secs()
            );
            Ok(instant + ahead)
        }
        Err(past) => {
            let behind = past.duration();
            anyhow::ensure!(
                behind <= START_AT_BEHIND,
                "--start-at was {}s ago, more than the {}s allowed",
                behind.as_secs(),
                START_AT_BEHIND.as_secs()
            );
            // The monotonic clock may not reach that far back (shortly after boot): start at once then.
            Ok(instant.checked_sub(behind).unwrap_or(instant))
        }
    }
}

/// Schedules events at a fixed rate from a start instant.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    rate: f64,
    issued: u64,
    limit: Option<u64>,
}

impl Pacer {
    /// `rate` events per second from `start`, at most `limit` events in all.
    pub fn new(start: Instant, rate: f64, limit: Option<u64>) -> Self {
        Self { start, rate, issued: 0, limit }
    }

    /// Events issued so far.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// When event `n` is due.
    pub fn due_time(&self, n: u64) -> Instant {
        self.start + Duration::from_secs_f64(n as f64 / self.rate)
    }

    /// Takes the events due by `now` (at most `max`); returns the index of the
    /// first and how many.
    pub fn take_due(&mut self, now: Instant, max: u64) -> (u64, u64) {
        let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
        let mut due = (elapsed * self.rate).floor() as u64 + 1;
        if let Some(limit) = self.limit {
            due = due.min(limit);
        }
        let n = due.saturating_sub(self.issued).min(max);
        let first = self.issued;
        self.issued += n;
        (first, n)
    }

    /// Whether every event of a bounded run was issued.
    pub fn finished(&self) -> bool {
        self.limit.is_some_and(|l| self.issued >= l)
    }

    /// When the next event is due.
    pub fn next_due(&self) -> Instant {
        self.due_time(self.issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_time_maps_to_the_monotonic_clock_within_its_limits() {
        let now = (Instant::now(), SystemTime::now());
        let at = |offset: Duration, ahead: bool| {
            let wall = if ahead { now.1 + offset } else { now.1 - offset };
            start_instant(Some(wall), now)
        };
        assert_eq!(start_instant(None, now).expect("at once"), now.0);
        assert_eq!(at(Duration::from_millis(2500), true).expect("ahead"), now.0 + Duration::from_millis(2500));
        let late = at(Duration::from_millis(700), false).expect("a late start is caught up");
        assert_eq!(now.0.duration_since(late), Duration::from_millis(700));
        assert_eq!(at(START_AT_AHEAD, true).expect("the limit ahead"), now.0 + START_AT_AHEAD);
        let err = at(START_AT_AHEAD + Duration::from_secs(1), true).expect_err("too far ahead").to_string();
        assert!(err.contains("ahead"), "{err}");
        let err = at(START_AT_BEHIND + Duration::from_secs(1), false).expect_err("too long ago").to_string();
        assert!(err.contains("ago"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn issues_exactly_the_rate_over_time() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start, 30_000.0, None);
        let mut sent = 0;
        // A sender waking every millisecond, as the real one does.
        for _ in 0..2000 {
            tokio::time::sleep_until(pacer.next_due().max(Instant::now() + Duration::from_micros(1000))).await;
            sent += pacer.take_due(Instant::now(), u64::MAX).1;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let rate = sent as f64 / elapsed;
        assert!((rate - 30_000.0).abs() < 30.0, "achieved {rate:.1}/s over {elapsed:.3}s");
    }

    #[tokio::test(start_paused = true)]
    async fn catches_up_after_a_stall_and_stops_at_the_limit() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start, 1000.0, Some(1500));
        assert_eq!(pacer.take_due(start, u64::MAX), (0, 1));
        tokio::time::advance(Duration::from_millis(500)).await;
        // Half a second of stall: every event due in it is issued at once.
        assert_eq!(pacer.take_due(Instant::now(), u64::MAX), (1, 500));
        assert_eq!(pacer.due_time(500), start + Duration::from_millis(500));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(pacer.take_due(Instant::now(), 200), (501, 200), "bounded bursts");
        assert_eq!(pacer.take_due(Instant::now(), u64::MAX), (701, 799));
        assert!(pacer.finished());
        assert_eq!(pacer.take_due(Instant::now(), u64::MAX).1, 0);
    }
}
