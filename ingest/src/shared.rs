//! State shared by the pipeline stages, the rebalance callback and the health endpoints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::cache::BestScoreCache;
use crate::health::Health;
use crate::partitions::Partitions;

/// What a worker counts; each is reported at exit and exported as a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Records received from Kafka.
    Consumed,
    /// Coalesced events written to Redis.
    Applied,
    /// Events skipped because the cache proved them useless.
    Skipped,
    /// Events merged into a higher score of the same player in the same batch.
    Coalesced,
    /// Records sent to the dead-letter topic (also counted per reason).
    DeadLettered,
    /// Batches finished.
    Batches,
    /// Failed Redis write attempts.
    RedisErrors,
    /// Partition revocations seen.
    Revocations,
    /// Times consumption was paused because the pipeline stayed full.
    Pauses,
    /// A replay's records signed with a key it was not given ([`crate::record::OwnedRecord::unverifiable`]).
    Unverifiable,
    /// Events of erased players stamped before the erasure: never applied, and not
    /// dead-lettered either (that would copy an erased player's data again).
    Erased,
    /// `last` and `sum` events skipped because their record was applied before (a redelivery).
    Replayed,
    /// `last` and `sum` events skipped as a re-sent `id` within the board's `dedup_window`.
    Duplicates,
}

impl Counter {
    const ALL: [Self; 13] = [
        Self::Consumed,
        Self::Applied,
        Self::Skipped,
        Self::Coalesced,
        Self::DeadLettered,
        Self::Batches,
        Self::RedisErrors,
        Self::Revocations,
        Self::Pauses,
        Self::Unverifiable,
        Self::Erased,
        Self::Replayed,
        Self::Duplicates,
    ];

    /// The Prometheus counter it is exported as.
    pub const fn metric(self) -> &'static str {
        match self {
            Self::Consumed => "ingest_events_consumed_total",
            Self::Applied => "ingest_events_applied_total",
            Self::Skipped => "ingest_events_skipped_total",
            Self::Coalesced => "ingest_events_coalesced_total",
            Self::DeadLettered => "ingest_dead_letters_total",
            Self::Batches => "ingest_batches_total",
            Self::RedisErrors => "ingest_redis_write_errors_total",
            Self::Revocations => "ingest_revocations_total",
            Self::Pauses => "ingest_pauses_total",
            Self::Unverifiable => "ingest_replay_unverifiable_total",
            Self::Erased => "ingest_events_erased_total",
            Self::Replayed => "ingest_events_replayed_total",
            Self::Duplicates => "ingest_events_duplicate_ids_total",
        }
    }
}

/// The counters of one worker: atomics for the exit report, and handles on
/// their metrics (taken once, so counting on the hot path is two atomic adds).
#[derive(Debug)]
pub struct Counters {
    values: [AtomicU64; Counter::ALL.len()],
    metrics: [metrics::Counter; Counter::ALL.len()],
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

impl Counters {
    /// Zeroed counters, their metrics registered with the installed recorder.
    pub fn new() -> Self {
        Self { values: Default::default(), metrics: Counter::ALL.map(|c| metrics::counter!(c.metric())) }
    }

    /// Adds `n` to `counter`, and to its metric.
    pub fn add(&self, counter: Counter, n: u64) {
        self.values[counter as usize].fetch_add(n, Ordering::Relaxed);
        self.metrics[counter as usize].increment(n);
    }

    /// The value of `counter` now.
    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter as usize].load(Ordering::Relaxed)
    }
}

/// What every stage, the rebalance callback and the health endpoints share.
#[derive(Debug)]
pub struct Shared {
    /// Owned partitions and their records in flight.
    pub partitions: Partitions,
    /// The best-score cache.
    pub cache: BestScoreCache,
    /// Counters.
    pub counters: Counters,
    /// Progress and dependency state, for `/healthz` and `/readyz`.
    pub health: Health,
}

impl Shared {
    /// Fresh shared state with a cache of `cache_capacity` entries living `cache_ttl`.
    pub fn new(cache_capacity: usize, cache_ttl: Duration) -> Self {
        Self {
            partitions: Partitions::default(),
            cache: BestScoreCache::new(cache_capacity, cache_ttl),
            counters: Counters::new(),
            health: Health::new(),
        }
    }
}
