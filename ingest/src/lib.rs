//! ingest: Kafka consumer-group workers that apply score events to Redis.
//!
//! Every worker of the group runs the same pipeline over the partitions it is
//! assigned, three tasks joined by bounded channels:
//!
//! ```text
//! consume ──records──► batch ──batches──► write
//! (poll, pause)        (decode, cache,    (DLQ, Redis via shard-router,
//!                       coalesce)           then store offsets)
//! ```
//!
//! Delivery is at least once with an exact effect: offsets are stored only
//! after the batch holding them is in Redis (and its malformed records in the
//! dead-letter topic), and every Redis write is a best-score `ZADD GT`, so a
//! redelivered event changes nothing. Partition revocation and shutdown drain
//! in-flight batches (up to the drain timeout) and commit synchronously.
//!
//! # Layout
//! - [`config`]: flags and environment; [`run`]: the pipeline.
//! - [`consume`], [`batch`], [`write`]: the three stages; [`shared`]: their shared state.
//! - [`cache`]: the best-score cache; [`backoff`]: retry delays.
//! - [`telemetry`]: metrics endpoint and logs.

pub mod backoff;
pub mod batch;
pub mod cache;
pub mod config;
pub mod consume;
pub mod record;
pub mod shared;
pub mod telemetry;
pub mod write;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::FutureProducer;
use shard_router::{Router, RouterOptions, Store, StoreOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::Config;

use crate::backoff::Backoff;
use crate::shared::Shared;

/// What a worker did, returned when it stops.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Records received from Kafka.
    pub consumed: u64,
    /// Coalesced events written to Redis.
    pub applied: u64,
    /// Events the best-score cache skipped (writes saved).
    pub skipped: u64,
    /// Events merged within a batch (writes saved).
    pub coalesced: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Batches completed.
    pub batches: u64,
    /// Failed Redis write attempts (each was retried).
    pub redis_errors: u64,
    /// Partition revocations.
    pub revocations: u64,
    /// Times consumption was paused because Redis stayed slow or down.
    pub pauses: u64,
    /// Freshness p50 / p99 / p999 in milliseconds (event `ts` to applied).
    pub freshness_ms: (u64, u64, u64),
}

/// Connects to Redis, retrying with backoff until it answers or `shutdown`.
async fn connect_store(
    config: &Config,
    target: &shard_router::RedisTarget,
    shutdown: &CancellationToken,
) -> Option<Store> {
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max);
    loop {
        match Store::connect(target, StoreOptions::default()).await {
            Ok(store) => return Some(store),
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(error = %e, retry_in = ?delay, "redis unreachable at start-up");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => return None,
                }
            }
        }
    }
}

/// Runs one ingest worker until `shutdown`, then drains and commits.
///
/// # Errors
/// Invalid configuration, a Kafka client that cannot be created, or a
/// pipeline task that panicked.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<Report> {
    let (layout, target) = config.validate()?;
    let Some(store) = connect_store(&config, &target, &shutdown).await else { return Ok(Report::default()) };
    let router = Router::new(store, layout, RouterOptions { size_refresh: config.size_refresh });
    let shared = Arc::new(Shared::new(config.cache_capacity));
    let consumer = Arc::new(consume::create_consumer(&config, shared.clone()).context("creating the kafka consumer")?);
    let mut producer_config = ClientConfig::new();
    producer_config.set("bootstrap.servers", &config.brokers).set("acks", "all").set("linger.ms", "5");
    for (k, v) in config.kafka_settings() {
        producer_config.set(k, v);
    }
    let producer: FutureProducer = producer_config.create().context("creating the dead-letter producer")?;
    info!(topic = %config.topic, group = %config.group, layout = %router.spec(), "ingest started");

    let (record_tx, record_rx) = mpsc::channel(config.batch_size * 2);
    let (batch_tx, batch_rx) = mpsc::channel(2);
    let consume = tokio::spawn(consume::run(
        consumer.clone(),
        record_tx,
        shared.clone(),
        config.batch_size * 4,
        config.pause_after,
        shutdown.clone(),
    ));
    let batcher = tokio::spawn(batch::run(record_rx, batch_tx, shared.clone(), config.batch_size, config.linger));
    let writer = write::Writer {
        router,
        producer,
        consumer: consumer.clone(),
        shared: shared.clone(),
        topic: config.topic.clone(),
        dlq_topic: config.dlq_topic.clone(),
        backoff: Backoff::new(config.backoff_min, config.backoff_max),
        drain_timeout: config.drain_timeout,
        freshness: Histogram::new_with_bounds(1, 3_600_000, 3).context("freshness histogram")?,
    };
    let writer = tokio::spawn(writer.run(batch_rx, shutdown.clone()));

    consume.await.context("consume task")?;
    batcher.await.context("batch task")?;
    let freshness = writer.await.context("write task")?;
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => info!("final offsets committed"),
        Err(e) => warn!(error = %e, "final commit: nothing to commit or commit failed"),
    }
    consumer.unsubscribe();
    let c = &shared.counters;
    let report = Report {
        consumed: c.consumed.load(Ordering::Relaxed),
        applied: c.applied.load(Ordering::Relaxed),
        skipped: c.skipped.load(Ordering::Relaxed),
        coalesced: c.coalesced.load(Ordering::Relaxed),
        dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
        batches: c.batches.load(Ordering::Relaxed),
        redis_errors: c.redis_errors.load(Ordering::Relaxed),
        revocations: c.revocations.load(Ordering::Relaxed),
        pauses: c.pauses.load(Ordering::Relaxed),
        freshness_ms: (
            freshness.value_at_quantile(0.5),
            freshness.value_at_quantile(0.99),
            freshness.value_at_quantile(0.999),
        ),
    };
    info!(?report, "ingest stopped");
    Ok(report)
}
