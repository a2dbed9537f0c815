//! The date of every answer: the watermark ingest published, as the node the data comes from holds it.
//!
//! Ingest writes, beside the data, a time before which every record is
//! applied ([`leaderboard_store::marker::watermark`]). A background task reads it every
//! `--watermark-refresh` through the same connection the reads use, so from
//! a replica it comes with that replica's lag built in. An answer is dated
//! by the claim read *before* its data, from the same node: the node's data
//! only grows, so it holds at least what the claim covers.
//!
//! When the read connection moves to another node (a Sentinel replica died,
//! or reads went back from the primary to a replica), the claim read from
//! the old node says nothing about the new one: the next answer reads the
//! claim again first, and an answer whose read straddled a switch is dated
//! by the smaller of the two claims. Before any ingest has published, answers
//! are dated 1970-01-01T00:00:00Z: nothing is promised.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use leaderboard_store::{Store, marker::watermark};
use tokio_util::sync::CancellationToken;

/// The last claim read and the connection epoch it was read under.
#[derive(Debug)]
pub struct Freshness {
    store: Store,
    /// The source topic whose watermark dates the answers.
    topic: String,
    /// Milliseconds since the epoch; 0 when no claim was published.
    applied_before_ms: AtomicI64,
    epoch: AtomicU64,
    /// Longest wait for a claim read on the request path.
    timeout: Duration,
}

/// A date and the connection epoch it is valid for.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    applied_before_ms: i64,
    epoch: u64,
}

impl Stamp {
    /// The date, as a time.
    pub fn as_of(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(u64::try_from(self.applied_before_ms).unwrap_or(0))
    }
}

impl Freshness {
    /// Dates answers read through `store` by the watermark of `topic`;
    /// nothing is read until [`Freshness::refresh`].
    pub fn new(store: Store, topic: String, timeout: Duration) -> Self {
        Self { store, topic, applied_before_ms: AtomicI64::new(0), epoch: AtomicU64::new(u64::MAX), timeout }
    }

    /// Reads the claim again (and lets a Sentinel replica reader that fell
    /// back to the primary return to a replica first).
    ///
    /// # Errors
    /// When Redis does not answer: the last claim stays.
    pub async fn refresh(&self) -> leaderboard_store::Result<()> {
        self.store.return_to_replica().await;
        self.read().await.map(|_| ())
    }

    async fn read(&self) -> leaderboard_store::Result<Stamp> {
        let epoch = self.store.epoch();
        let claim =
            tokio::time::timeout(self.timeout, watermark::read(&self.store, &self.topic)).await.map_err(|_| {
                leaderboard_store::Error::Redis(std::io::Error::from(std::io::ErrorKind::TimedOut).into())
            })??;
        let applied_before_ms = claim.unwrap_or(0).max(0);
        self.applied_before_ms.store(applied_before_ms, Ordering::Release);
        self.epoch.store(epoch, Ordering::Release);
        let age = SystemTime::now().duration_since(Stamp { applied_before_ms, epoch }.as_of()).unwrap_or_default();
        metrics::gauge!("api_watermark_age_seconds").set(age.as_secs_f64());
        Ok(Stamp { applied_before_ms, epoch })
    }

    /// The date for data read from now on: the last claim if it came from
    /// the node reads go to now, else a claim read from that node first (the
    /// Unix epoch when that fails: nothing can be promised).
    pub async fn before_read(&self) -> Stamp {
        let epoch = self.store.epoch();
        if self.epoch.load(Ordering::Acquire) == epoch {
            return Stamp { applied_before_ms: self.applied_before_ms.load(Ordering::Acquire), epoch };
        }
        self.read().await.unwrap_or(Stamp { applied_before_ms: 0, epoch })
    }

    /// The date for data read since `stamp` was taken: `stamp`, or if reads
    /// moved to another node meanwhile, the smaller of it and that node's claim.
    pub async fn after_read(&self, stamp: Stamp) -> SystemTime {
        if self.store.epoch() == stamp.epoch {
            return stamp.as_of();
        }
        let now = self.before_read().await;
        stamp.as_of().min(now.as_of())
    }

    /// Refreshes every `interval` until `shutdown`.
    pub async fn run(&self, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {
                    if let Err(e) = self.refresh().await {
                        tracing::debug!(class = e.failure().as_str(), "watermark not read this round");
                    }
                }
            }
        }
    }
}
