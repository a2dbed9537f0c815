//! Noticing a Redis that lost its data ([`shard_router::epoch`]).
//!
//! A worker learns the store's epoch when it starts. With no epoch in Redis,
//! the consumer group decides: no committed offset means a new deployment
//! (the worker creates the epoch), committed offsets mean the data those
//! offsets stand for is gone (the store is *lost*).
//!
//! The writer checks the epoch after every batch, before storing the batch's
//! offsets, and a watcher every second while the pipeline is idle. While the
//! store is lost, nothing is written and no offset is stored, `/readyz` fails
//! (`blocked: store_lost`) and `ingest_store_lost` is 1; the records wait in
//! Kafka. When recovery installs a new epoch (`lb-admin restore`, `rebuild`
//! or `epoch adopt`), the worker forgets its cached scores, writes the batch
//! it holds again (a batch that may have reached the wiped store) and goes on
//! from its committed offsets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use shard_router::epoch::{self, Known, State, Verdict};
use shard_router::{Failure, Store};
use tracing::{error, info};

use crate::health::Step;
use crate::poll::IngestConsumer;
use crate::replicas::ReplicaAck;
use crate::shared::Shared;

/// Longest wait for the broker's answer about the group's offsets.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The store is the one the worker knew.
    Same,
    /// Recovery installed a new epoch; cached state is forgotten.
    Recovered,
    /// The store lost its data.
    Lost,
}

/// The epoch a worker knows and whether the store is lost.
#[derive(Debug)]
pub struct Guard {
    store: Store,
    shared: Arc<Shared>,
    known: Known,
    lost: AtomicBool,
    recoveries: AtomicU64,
}

impl Guard {
    /// Reads the store's epoch at start: for a new deployment (its group has
    /// committed nothing) creates it and waits until the replicas `replicas`
    /// asks for have it; otherwise starts lost when it is not intact (see the
    /// module docs).
    ///
    /// # Errors
    /// When Redis or the broker does not answer.
    pub async fn start(
        store: Store,
        consumer: Arc<IngestConsumer>,
        topic: &str,
        shared: Arc<Shared>,
        replicas: &ReplicaAck,
    ) -> anyhow::Result<Self> {
        let state = if has_committed(consumer, topic.to_string()).await? {
            epoch::read(&store).await?
        } else {
            // Nothing was ever applied: a new deployment. Its epoch is made here (or its
            // creation, cut short, finished) and must be on the replicas before the first batch,
            // as each batch is: a failover must not take it away from under acknowledged writes
            // (the store would look lost). Waited for even when this start found it intact: the
            // start before may have made it and then fallen short of the replicas. When the wait
            // falls short, the caller starts again.
            let state = epoch::create_new(&store).await?;
            if matches!(state, State::Intact(_)) {
                let required = replicas.required().await?;
                let acked = store.wait_for_replicas(required, replicas.timeout).await?;
                anyhow::ensure!(acked >= required, "the store's new epoch reached {acked} of {required} replicas");
            }
            state
        };
        let guard = Self {
            store,
            shared,
            // With none known, only a recovery's epoch is taken (see the module docs).
            known: Known::new(state.epoch().cloned(), false),
            lost: AtomicBool::new(false),
            recoveries: AtomicU64::new(0),
        };
        match &state {
            State::Intact(e) => info!(epoch = %e.id, origin = ?e.origin, "store epoch"),
            _ => guard.mark_lost(),
        }
        Ok(guard)
    }

    /// Whether the store is lost (as of the last check).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// How many recoveries this worker has followed: a writer that sees this
    /// change writes the batch it holds again, with fresh state.
    pub fn recoveries(&self) -> u64 {
        self.recoveries.load(Ordering::Relaxed)
    }

    /// Reads the epoch and judges it.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn check(&self) -> shard_router::Result<Check> {
        let now = epoch::read(&self.store).await?;
        let verdict = self.known.judge(&now);
        Ok(match verdict {
            Verdict::Same => {
                // The epoch this worker knows is intact: a loss seen before was a misread (a
                // copy unreadable while a Cluster primary failed over), never a wipe, since
                // epoch ids are random. Writing goes on; the held batch is written again anyway.
                if self.lost.swap(false, Ordering::Relaxed) {
                    info!("the store's epoch is intact again: it was not lost");
                    metrics::gauge!("ingest_store_lost").set(0.0);
                    self.shared.health.succeed(Step::StoreLost);
                }
                Check::Same
            }
            Verdict::Lost => {
                self.mark_lost();
                Check::Lost
            }
            Verdict::Recovered(e) => {
                info!(epoch = %e.id, origin = ?e.origin, "the store was recovered; resuming");
                self.shared.cache.clear();
                self.recoveries.fetch_add(1, Ordering::Relaxed);
                self.lost.store(false, Ordering::Relaxed);
                metrics::gauge!("ingest_store_lost").set(0.0);
                self.shared.health.succeed(Step::StoreLost);
                Check::Recovered
            }
        })
    }

    fn mark_lost(&self) {
        if !self.lost.swap(true, Ordering::Relaxed) {
            error!(
                "the store lost its data (its epoch is gone or changed): writes and offsets stop until \
                 `lb-admin restore`, `lb-admin rebuild` or `lb-admin epoch adopt`"
            );
        }
        metrics::gauge!("ingest_store_lost").set(1.0);
        self.shared.health.fail(Step::StoreLost, Failure::StoreBlocked);
    }

    /// Checks every `interval` until `stop`, so an idle worker notices a loss
    /// (and a recovery) too.
    pub async fn watch(self: Arc<Self>, interval: Duration, stop: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stop.cancelled() => return,
            }
            if let Err(e) = self.check().await {
                tracing::debug!(class = e.failure().as_str(), "epoch check failed");
            }
        }
    }
}

/// Whether the group has committed an offset for any partition of `topic`.
async fn has_committed(consumer: Arc<IngestConsumer>, topic: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
        let metadata = consumer.fetch_metadata(Some(&topic), KAFKA_TIMEOUT)?;
        let mut list = TopicPartitionList::new();
        for partition in metadata.topics().iter().flat_map(rdkafka::metadata::MetadataTopic::partitions) {
            list.add_partition(&topic, partition.id());
        }
        if list.count() == 0 {
            return Ok(false);
        }
        let committed = consumer.committed_offsets(list, KAFKA_TIMEOUT)?;
        Ok(committed.elements().iter().any(|e| matches!(e.offset(), Offset::Offset(_))))
    })
    .await?
}
