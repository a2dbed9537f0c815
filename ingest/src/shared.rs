//! State shared by the pipeline stages and the Kafka rebalance callback.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::cache::BestScoreCache;

/// Records handed to the batcher whose batch has not finished yet.
#[derive(Debug, Default)]
pub struct InFlight {
    count: Mutex<u64>,
    idle: Condvar,
}

impl InFlight {
    /// `n` more records entered the pipeline.
    pub fn add(&self, n: u64) {
        if let Ok(mut c) = self.count.lock() {
            *c += n;
        }
    }

    /// `n` records finished (written, or abandoned at shutdown).
    pub fn done(&self, n: u64) {
        if let Ok(mut c) = self.count.lock() {
            *c = c.saturating_sub(n);
            if *c == 0 {
                self.idle.notify_all();
            }
        }
    }

    /// Records in flight now.
    pub fn get(&self) -> u64 {
        self.count.lock().map_or(0, |c| *c)
    }

    /// Blocks until nothing is in flight or `timeout` passes; returns whether it drained.
    /// Called from librdkafka's rebalance callback, which is synchronous.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let Ok(mut count) = self.count.lock() else { return false };
        while *count > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.idle.wait_timeout(count, left) {
                Ok((c, _)) => count = c,
                Err(_) => return false,
            }
        }
        true
    }
}

/// Counters of one worker, reported at exit and exported as metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Records received from Kafka.
    pub consumed: AtomicU64,
    /// Coalesced events written to Redis.
    pub applied: AtomicU64,
    /// Events skipped because the cache proved them useless.
    pub skipped: AtomicU64,
    /// Events merged into a higher score of the same player in the same batch.
    pub coalesced: AtomicU64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Batches whose offsets were stored.
    pub batches: AtomicU64,
    /// Failed Redis write attempts.
    pub redis_errors: AtomicU64,
    /// Partition revocations seen.
    pub revocations: AtomicU64,
    /// Times consumption was paused because Redis stayed slow or down.
    pub pauses: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What every stage and the rebalance callback share.
#[derive(Debug)]
pub struct Shared {
    /// Records in flight, for draining on revoke.
    pub in_flight: InFlight,
    /// The best-score cache.
    pub cache: BestScoreCache,
    /// Counters.
    pub counters: Counters,
    /// Bumped on every revocation: work from an older epoch must not store offsets.
    epoch: AtomicU64,
}

impl Shared {
    /// Fresh shared state with a cache of `cache_capacity` players.
    pub fn new(cache_capacity: usize) -> Self {
        Self {
            in_flight: InFlight::default(),
            cache: BestScoreCache::new(cache_capacity),
            counters: Counters::default(),
            epoch: AtomicU64::new(0),
        }
    }

    /// The current assignment epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Starts a new assignment epoch (after a revocation).
    pub fn bump_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_idle_returns_when_drained_or_timed_out() {
        let f = std::sync::Arc::new(InFlight::default());
        assert!(f.wait_idle(Duration::ZERO));
        f.add(2);
        assert!(!f.wait_idle(Duration::from_millis(10)));
        let g = f.clone();
        let t = std::thread::spawn(move || g.wait_idle(Duration::from_secs(10)));
        f.done(1);
        f.done(1);
        assert!(t.join().expect("thread"));
        assert_eq!(f.get(), 0);
    }
}
