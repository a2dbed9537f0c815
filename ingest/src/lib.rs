//! ingest: Kafka consumer-group workers that apply score events to Redis.
//!
//! Every worker of the group runs the same pipeline over the partitions it is
//! assigned: a poll thread and two tasks joined by channels bounded in count
//! and, through a byte budget, in bytes:
//!
//! ```text
//! poll thread ──records──► batch ──batches──► write
//! (consumer, rebalance,    (decode,           (board rules: bounds, cache, coalesce;
//!  byte budget, pause)      reject)            dead letters, Redis via the store,
//!                                              then offsets)
//! ```
//!
//! Delivery is at least once with an exact effect: offsets are stored only
//! after the batch holding them is in Redis (and its malformed records in the
//! dead-letter topic), and every Redis write is a best-score `ZADD GT`, so a
//! redelivered event changes nothing. A revocation (eager or incremental)
//! drains the revoked partitions' in-flight records (up to the drain timeout)
//! and commits synchronously; shutdown drains and commits too.
//!
//! Nothing a producer sends can stop the pipeline: a malformed record of any
//! size becomes a dead letter that fits ([`dead_letter`]); an event the store
//! refuses for good is set aside as `unwritable`; everything else is retried
//! by class ([`write`](mod@write)) and shows in `/readyz` and the metrics while it lasts.
//!
//! # Layout
//! - [`config`]: flags and environment (and the memory bound); [`run`]: the pipeline.
//! - [`poll`], [`batch`], [`write`](mod@write): the three stages; [`record`]: a record as the
//!   stages hand it on; [`partitions`]: owned partitions and in-flight records;
//!   [`shared`]: state the stages share.
//! - [`write`](mod@write) is a folder: the [`write::Writer`] and its constructor in `mod.rs`, the loop
//!   (batch, epoch confirmed, offsets stored) in `run.rs`, one batch's updates in
//!   `updates.rs`, Redis retries by class, bisection and the replica wait in `apply.rs`,
//!   what it sets aside for the dead-letter topic in `dead_letters.rs`.
//! - [`prepare`]: each board's rules applied to a batch (bounds, seasons, skips, coalescing
//!   to the best update per [`prepare::BoardPlayer`]).
//! - [`seasons`]: closing seasons past their grace; [`watermark`]: publishing what this
//!   worker has applied (the watermark behind every `as_of`).
//! - [`dead_letter`]: the dead-letter format; [`retry`]: backoff by failure class;
//!   [`replicas`]: how many Redis replicas must confirm a batch (`WAIT`).
//! - [`loss`]: noticing a Redis that lost its data (the store's epoch, which the writer holds
//!   to as a [`loss::Epoch`]); [`recovery`]: replaying the topic into a store being recovered.
//! - [`cache`]: the best-score cache; [`health`] and [`telemetry`]: `/healthz`, `/readyz`, `/metrics`.

pub mod batch;
pub mod cache;
pub mod config;
pub mod dead_letter;
pub mod health;
pub mod loss;
pub mod partitions;
pub mod poll;
pub mod prepare;
pub mod record;
pub mod recovery;
pub mod replicas;
pub mod retry;
pub mod seasons;
pub mod shared;
pub mod telemetry;
pub mod watermark;
pub mod write;

use std::sync::Arc;

use anyhow::Context as _;
use backon::{BackoffBuilder as _, ExponentialBuilder};
use hdrhistogram::Histogram;
use leaderboard_store::{Router, Store, StoreOptions};
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::Config;

use crate::loss::Epoch;
use crate::poll::Poller;
use crate::shared::{Counter, Shared};

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
    /// Times consumption was paused because the pipeline stayed full.
    pub pauses: u64,
    /// A replay's records signed with a key it was not given (refused; the recovery must fail).
    pub unverifiable: u64,
    /// Events of erased players stamped before their erasure (dropped, never dead-lettered).
    pub erased: u64,
    /// Freshness p50 / p99 / p999 in milliseconds (event `ts` to applied).
    pub freshness_ms: (u64, u64, u64),
}

/// Runs `attempt` until it succeeds, waiting with backoff between failures
/// (each logged as `what` with the failure `attempt` describes); `None` at `shutdown`.
async fn retry_at_start<T, F, Fut>(
    config: &Config,
    shutdown: &CancellationToken,
    what: &str,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(config.backoff_min)
        .with_max_delay(config.backoff_max)
        .with_jitter()
        .without_max_times()
        .build();
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(failure) => {
                let delay = delays.next().unwrap_or(config.backoff_max);
                warn!(%failure, retry_in = ?delay, "{what}");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => return None,
                }
            }
        }
    }
}

/// Connects to Redis, retrying with backoff until it answers or `shutdown`.
async fn connect_store(
    config: &Config,
    target: &leaderboard_store::RedisTarget,
    options: StoreOptions,
    shutdown: &CancellationToken,
) -> Option<Store> {
    retry_at_start(config, shutdown, "redis unreachable at start-up", || async {
        Store::connect(target, options).await.map_err(|e| e.failure().as_str().to_string())
    })
    .await
}

/// The dead-letter producer: bounded queue, failures within 30 s, `acks=all` and idempotence.
fn dead_letter_producer(config: &Config) -> anyhow::Result<FutureProducer> {
    let mut producer_config = ClientConfig::new();
    producer_config
        .set("bootstrap.servers", &config.brokers)
        .set("linger.ms", "5")
        // A letter that cannot be delivered fails within this, so the retry loop (and
        // `/readyz`) sees a broken dead-letter topic, instead of librdkafka's 5 minutes.
        .set("message.timeout.ms", "30000")
        .set("message.max.bytes", (config.dlq_max_bytes + 64 * 1024).to_string())
        .set("queue.buffering.max.kbytes", (config.dlq_queue_bytes / 1024).to_string());
    for (k, v) in config.kafka_settings() {
        producer_config.set(k, v);
    }
    // Set last, so no shared option weakens them: a dead letter's offsets are stored only after
    // it is acknowledged by every in-sync replica, and retries never duplicate it.
    producer_config.set("acks", "all").set("enable.idempotence", "true");
    producer_config.create().context("creating the dead-letter producer")
}

/// Runs one ingest worker until `shutdown`, then drains and commits. Serves
/// `/metrics`, `/healthz` and `/readyz` on `listener` meanwhile.
///
/// # Errors
/// Invalid configuration, a Kafka client that cannot be created, or a
/// pipeline task that panicked.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<Report> {
    let (layout, target) = config.validate()?;
    let store_options = config.store.store_options()?;
    let metrics = telemetry::install_recorder().context("installing the metrics recorder")?;
    let shared = Arc::new(Shared::new(config.cache_capacity, config.cache_ttl));
    // Served from the start: while Redis does not answer yet, `/readyz` says so.
    let probe_slot = Arc::new(std::sync::OnceLock::new());
    let probe = telemetry::Probe {
        shared: shared.clone(),
        store: probe_slot.clone(),
        stall_timeout: config.stall_timeout,
        metrics,
    };
    let server = tokio::spawn(telemetry::serve(listener, probe, shutdown.clone()));
    // Three connections: the writer's, one that never writes (`PING`, counting replicas),
    // and the watermark publisher's.
    let (Some(store), Some(probe_store), Some(watermark_store)) = (
        connect_store(&config, &target, store_options, &shutdown).await,
        connect_store(&config, &target, store_options, &shutdown).await,
        connect_store(&config, &target, store_options, &shutdown).await,
    ) else {
        return server.await.context("metrics server")?.map(|()| Report::default());
    };
    let _ = probe_slot.set(probe_store.clone());
    // A replay writes restored boards in whatever layout they were restored with.
    let router_options =
        leaderboard_store::RouterOptions { any_layout: config.replay.is_some(), ..config.store.router_options() };
    let writer_layout = layout.clone();
    let router = Router::new(store, layout, router_options);
    let consumer = Arc::new(poll::create_consumer(&config, shared.clone()).context("creating the kafka consumer")?);
    let producer = dead_letter_producer(&config)?;
    // Closed seasons' results go through the same producer (one client, one connection set).
    let results_producer = producer.clone();
    // On the writer's connection: the probe connection must never write (it counts replicas).
    let replicas =
        replicas::ReplicaAck::new(config.wait_replicas, config.min_replicas, config.wait_timeout, probe_store.clone());
    let Some(epoch) = start_guard(&config, router.store(), &consumer, &shared, &replicas, &shutdown).await else {
        return server.await.context("metrics server")?.map(|()| Report::default());
    };
    info!(
        topic = %config.topic,
        group = %config.group,
        layout = %router.spec(),
        wait_replicas = ?config.wait_replicas,
        "ingest started"
    );

    let budget_bytes = u32::try_from(config.max_buffered_bytes).context("--max-buffered-bytes")?;
    let (record_tx, record_rx) = mpsc::channel(config.batch_size * 2);
    let (batch_tx, batch_rx) = mpsc::channel(2);
    let finished = CancellationToken::new();
    let poller = Poller {
        consumer: consumer.clone(),
        shared: shared.clone(),
        tx: record_tx,
        budget: Arc::new(Semaphore::new(budget_bytes as usize)),
        budget_bytes,
        pause_after: config.pause_after,
        shutdown: shutdown.clone(),
        finished: finished.clone(),
        runtime: tokio::runtime::Handle::current(),
        verifier: Arc::new(config.signatures.verifier(config.replay.is_some()).map_err(anyhow::Error::msg)?),
    };
    // Whatever happens below, the poll thread is told to commit and close.
    let finish_guard = finished.clone().drop_guard();
    let polled = poller.spawn().context("starting the poll thread")?;
    let batcher =
        tokio::spawn(batch::run(record_rx, batch_tx, config.topic.as_str().into(), config.batch_size, config.linger));
    let parts = write::Parts {
        redis: write::Connection::new(router, target, store_options, router_options),
        producer,
        consumer: consumer.clone(),
        shared: shared.clone(),
        replicas,
        epoch: epoch.clone(),
        shutdown: shutdown.clone(),
    };
    let writer = write::Writer::new(&config, parts).context("freshness histogram")?;
    let writer = tokio::spawn(writer.run(batch_rx));
    let background = match epoch {
        Epoch::Guarded(guard) => {
            let closer = seasons::Closer {
                router: Router::new(watermark_store.clone(), writer_layout, config.store.router_options()),
                topic: config.topic.clone(),
                clock: config.store.clock,
                interval: config.season_check,
                guard,
                results: seasons::Results {
                    producer: results_producer,
                    topic: config.season_results_topic.clone(),
                    top: config.season_results_top,
                },
            };
            Background::start(&config, &consumer, &shared, watermark_store, closer, &finished)
        }
        Epoch::Replay => Background::idle(),
    };

    batcher.await.context("batch task")?;
    let freshness = writer.await.context("write task")?;
    background.stop().await?;
    drop(finish_guard);
    let _ = polled.await;
    shutdown.cancel();
    server.await.context("metrics server task")??;
    let report = report(&shared, &freshness);
    info!(?report, "ingest stopped");
    Ok(report)
}

/// Learns the store's epoch ([`loss::Guard::start`]), retrying with backoff
/// until Redis and the broker answer: [`Epoch::Replay`] for a replay (which
/// has no guard), `None` at shutdown (as [`connect_store`]).
async fn start_guard(
    config: &Config,
    store: &Store,
    consumer: &Arc<poll::IngestConsumer>,
    shared: &Arc<Shared>,
    replicas: &replicas::ReplicaAck,
    shutdown: &CancellationToken,
) -> Option<Epoch> {
    if config.replay.is_some() {
        return Some(Epoch::Replay);
    }
    let what = "cannot read the store's epoch or the group's offsets yet";
    let guard = retry_at_start(config, shutdown, what, || async {
        loss::Guard::start(store.clone(), consumer.clone(), &config.topic, shared.clone(), replicas).await.map_err(
            |e| {
                // Redis errors by class only: their text may quote a reply.
                e.downcast_ref::<leaderboard_store::Error>()
                    .map_or_else(|| format!("{e:#}"), |r| r.failure().as_str().into())
            },
        )
    })
    .await?;
    Some(Epoch::Guarded(Arc::new(guard)))
}

/// The tasks beside the pipeline: the watermark publisher, the season closer
/// and the epoch watcher (none of them in a recovery's replay).
struct Background {
    published: CancellationToken,
    publisher: tokio::task::JoinHandle<()>,
    others: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    fn idle() -> Self {
        Self { published: CancellationToken::new(), publisher: tokio::spawn(async {}), others: Vec::new() }
    }

    fn start(
        config: &Config,
        consumer: &Arc<poll::IngestConsumer>,
        shared: &Arc<Shared>,
        store: Store,
        closer: seasons::Closer,
        finished: &CancellationToken,
    ) -> Self {
        let guard = closer.guard.clone();
        let published = finished.child_token();
        let publisher = watermark::Publisher {
            consumer: consumer.clone(),
            shared: shared.clone(),
            store,
            topic: config.topic.clone(),
            interval: config.watermark_interval,
            lateness: config.watermark_lateness,
        };
        Self {
            publisher: tokio::spawn(publisher.run(published.clone())),
            others: vec![
                tokio::spawn(closer.run(finished.child_token())),
                tokio::spawn(guard.watch(config.loss_check, finished.child_token())),
            ],
            published,
        }
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.published.cancel();
        self.publisher.await.context("watermark task")?;
        for task in self.others {
            task.abort(); // each closing step, and each check, is safe to interrupt
            let _ = task.await;
        }
        Ok(())
    }
}

/// The exit report: the counters and the freshness quantiles.
fn report(shared: &Shared, freshness: &Histogram<u64>) -> Report {
    let c = &shared.counters;
    Report {
        consumed: c.get(Counter::Consumed),
        applied: c.get(Counter::Applied),
        skipped: c.get(Counter::Skipped),
        coalesced: c.get(Counter::Coalesced),
        dead_lettered: c.get(Counter::DeadLettered),
        batches: c.get(Counter::Batches),
        redis_errors: c.get(Counter::RedisErrors),
        revocations: c.get(Counter::Revocations),
        pauses: c.get(Counter::Pauses),
        unverifiable: c.get(Counter::Unverifiable),
        erased: c.get(Counter::Erased),
        freshness_ms: (
            freshness.value_at_quantile(0.5),
            freshness.value_at_quantile(0.99),
            freshness.value_at_quantile(0.999),
        ),
    }
}
