//! The write stage: dead letters, then Redis, then offsets, in that order.
//!
//! A batch's offsets are stored only after its malformed records are in the
//! dead-letter topic and its updates are acknowledged by Redis. Each failure
//! is classified ([`Failure`](leaderboard_store::Failure)) and handled by its class:
//!
//! | class | handling |
//! |---|---|
//! | transient (timeouts, `LOADING`, `BUSY`, `TRYAGAIN`, redirects) | retry with backoff and jitter |
//! | reconnect (connection lost, `READONLY` after a failover) | clear the cache, open a new connection, retry |
//! | store blocked (`OOM`, `MISCONF`, `NOPERM`, unknown errors) | retry with backoff, `/readyz` false, `ingest_blocked{step}` 1, one log line per change |
//! | record (`WRONGTYPE`, foreign data) | find the refused updates by bisection, dead-letter their records as `unwritable`, go on |
//! | one board's record unusable (an unrelated layout, unreadable) | that board's events become dead letters (`unwritable`, naming the cause); the batch's other boards go on |
//!
//! Any failed Redis write also clears the best-score cache: Redis may have
//! lost what it acknowledged. At shutdown, retries stop after the drain
//! timeout and the unfinished batch is abandoned without storing its offsets,
//! so its records are redelivered to the next owner.
//!
//! # Layout
//! - this file: the [`Writer`], built by [`Writer::new`] from the configuration and its
//!   [`Parts`] (among them its Redis [`Connection`]).
//! - `run.rs`: the loop ([`Writer::run`]): each batch written into the store the worker
//!   knows (its epoch confirmed), then its offsets stored.
//! - `updates.rs`: one batch written: prepared under its boards' rules, seasons opened,
//!   updates applied, skips written again after a cache clear.
//! - `apply.rs`: updates applied to Redis: retries by failure class, the bisection that
//!   finds the updates the store refuses, the wait for the replicas.
//! - `dead_letters.rs`: what the write stage sets aside (refused, late, unwritable
//!   records) and sending it to the dead-letter topic.
//! - `players.rs`: erased and banned players: their marks read before a batch, and
//!   read again after its writes, so a mark made meanwhile is honoured before offsets.

mod apply;
mod dead_letters;
mod players;
mod run;
mod updates;

use std::collections::HashSet;
use std::sync::Arc;

use hdrhistogram::Histogram;
use leaderboard_contract::BoardId;
use leaderboard_semantics::Clock;
use leaderboard_store::{RedisTarget, Router, RouterOptions, Store, StoreOptions};
use rdkafka::producer::FutureProducer;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::{Config, Replay};
use crate::dead_letter::DeadLetters;
use crate::loss::Epoch;
use crate::poll::IngestConsumer;
use crate::replicas::ReplicaAck;
use crate::retry::Retry;
use crate::shared::Shared;

/// The write stage of one worker: takes batches, writes them, stores their offsets.
pub struct Writer {
    /// Leaderboard writes, and how to reconnect.
    redis: Connection,
    /// Dead-letter producer.
    dead_letters: DeadLetters,
    /// Where offsets are stored.
    consumer: Arc<IngestConsumer>,
    /// Shared state.
    shared: Arc<Shared>,
    /// Source topic (for storing offsets).
    topic: String,
    /// Backoff, health and the drain deadline.
    retry: Retry,
    /// Replicas that must acknowledge each write before offsets are stored.
    replicas: ReplicaAck,
    /// Freshness (event time to applied), in milliseconds, for the exit report.
    freshness: Histogram<u64>,
    /// The clock seasons are decided by.
    clock: Clock,
    /// Seasons this writer opened (or found open), so each is opened once.
    opened: HashSet<BoardId>,
    /// Seasons whose fence this writer met: their later events are dead letters at once.
    closed: HashSet<BoardId>,
    /// What the store is held to after every batch, before its offsets are stored ([`crate::loss`]).
    epoch: Epoch,
    /// Set for a recovery's replay ([`crate::config::Replay`]).
    replay: Option<Replay>,
    /// The player registry's version this writer last read ([`players`]).
    players_version: Option<u64>,
}

/// What a [`Writer`] is made of besides its configuration: the clients and
/// the state it shares with the rest of the worker.
pub struct Parts {
    /// Redis: the router the writer writes through, and how to reconnect.
    pub redis: Connection,
    /// The dead-letter producer.
    pub producer: FutureProducer,
    /// The consumer, where offsets are stored.
    pub consumer: Arc<IngestConsumer>,
    /// State the stages share.
    pub shared: Arc<Shared>,
    /// Replicas that must acknowledge each write before offsets are stored.
    pub replicas: ReplicaAck,
    /// What the store is held to before offsets are stored.
    pub epoch: Epoch,
    /// The worker's shutdown: retries stop the drain timeout after it.
    pub shutdown: CancellationToken,
}

impl Writer {
    /// The write stage `config` describes, made of `parts`.
    ///
    /// # Errors
    /// The freshness histogram cannot be created.
    pub fn new(config: &Config, parts: Parts) -> Result<Self, hdrhistogram::CreationError> {
        let Parts { redis, producer, consumer, shared, replicas, epoch, shutdown } = parts;
        Ok(Self {
            redis,
            dead_letters: DeadLetters::new(
                producer,
                config.dlq_topic.clone(),
                config.topic.clone(),
                config.dead_letter_limits(),
            ),
            consumer,
            shared,
            topic: config.topic.clone(),
            retry: Retry::new(config.backoff_min, config.backoff_max, shutdown, config.drain_timeout),
            replicas,
            freshness: Histogram::new_with_bounds(1, 3_600_000, 3)?,
            clock: config.store.clock,
            opened: HashSet::new(),
            closed: HashSet::new(),
            epoch,
            replay: config.replay.clone(),
            players_version: None,
        })
    }
}

/// The writer's Redis: the router it writes through, and what it takes to
/// open a new connection (after a failover) or start over (after a loss).
pub struct Connection {
    router: Router,
    target: RedisTarget,
    store_options: StoreOptions,
    router_options: RouterOptions,
}

impl Connection {
    /// Writes through `router`; reconnects to `target` with `store_options`,
    /// and rebuilds the router with `router_options`.
    pub fn new(
        router: Router,
        target: RedisTarget,
        store_options: StoreOptions,
        router_options: RouterOptions,
    ) -> Self {
        Self { router, target, store_options, router_options }
    }

    /// Opens a new connection (which finds the current primary); keeps the
    /// old one, which reconnects by itself, when Redis is not reachable yet.
    async fn reconnect(&mut self) {
        match Store::connect(&self.target, self.store_options).await {
            Ok(store) => {
                self.router = Router::new(store, self.router.spec().clone(), self.router_options);
                info!("redis: reconnected");
            }
            Err(e) => info!(error = %apply::refusal(&e), "redis: not reachable yet"),
        }
    }

    /// A new router on the same connection: forgets the board records it read.
    fn forget_records(&mut self) {
        self.router = Router::new(self.router.store().clone(), self.router.spec().clone(), self.router_options);
    }
}

/// The step was given up at shutdown.
struct Abandoned;
