//! Noticing a Redis that lost its data ([`leaderboard_store::marker::epoch`]).
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
//!
//! A store that went back in time keeps its epoch, so the worker also keeps
//! the store's applied offsets ([`leaderboard_store::marker::applied`]): after each batch
//! (in the same round trip as the epoch check) it raises them, refusing when
//! a node's is below an offset known applied (one this worker stored, or the
//! group committed), and the watcher compares them with the group's committed
//! offsets every interval, and so does a start. A node behind is a rollback:
//! the worker marks the store lost for every process
//! ([`leaderboard_store::marker::loss::mark_lost`]), `ingest_rollbacks_total` counts it,
//! and `lb-admin catch-up` replays what the store forgot.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use leaderboard_store::marker::applied::{self, Advanced, Behind, Mark, Offsets};
use leaderboard_store::marker::epoch::{self, Known, State, Verdict};
use leaderboard_store::marker::loss::{self, Loss};
use leaderboard_store::{Failure, Store};
use tracing::{error, info};

use crate::health::Step;
use crate::poll::IngestConsumer;
use crate::replicas::ReplicaAck;
use crate::shared::Shared;

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

/// What a worker holds the store to before it stores a batch's offsets.
#[derive(Debug, Clone)]
pub enum Epoch {
    /// A live worker: the store's epoch, checked after every batch ([`Guard`]).
    Guarded(Arc<Guard>),
    /// A recovery's replay ([`crate::recovery`]): it writes into a store being
    /// recovered, which has no epoch to hold to yet.
    Replay,
}

/// The epoch a worker knows and whether the store is lost.
pub struct Guard {
    store: Store,
    shared: Arc<Shared>,
    consumer: Arc<IngestConsumer>,
    topic: String,
    known: Known,
    lost: AtomicBool,
    recoveries: AtomicU64,
    /// Per partition, an offset known applied in the known epoch: stored by
    /// this worker, or committed by the group. An intact store's applied
    /// offsets are never below it.
    floors: Mutex<BTreeMap<i32, i64>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("topic", &self.topic).field("known", &self.known).finish_non_exhaustive()
    }
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
        // Present from the start, so an alert on its increase sees the first detection.
        metrics::counter!("ingest_rollbacks_total").increment(0);
        let group = group_offsets(Arc::clone(&consumer), topic.to_string()).await?;
        let state = if group.committed.is_empty() {
            // Nothing was ever applied: a new deployment. Its epoch is made here (or its
            // creation, cut short, finished) and must be on the replicas before the first batch,
            // as each batch is: a failover must not take it away from under acknowledged writes
            // (the store would look lost). Waited for even when this start found it intact: the
            // start before may have made it and then fallen short of the replicas. When the wait
            // falls short, the caller starts again.
            let state = epoch::create_new(&store).await?;
            if matches!(state, State::Intact(_)) {
                let required = replicas.required().await?;
                // Nothing applied yet on any partition: a rollback to before the first batch
                // is then noticed too ([`applied::init`]).
                applied::init(&store, topic, &group.partitions).await?;
                let acked = store.wait_for_replicas(required, replicas.timeout).await?;
                anyhow::ensure!(acked >= required, "the store's new epoch reached {acked} of {required} replicas");
            }
            state
        } else {
            epoch::read(&store).await?
        };
        let guard = Self {
            store,
            shared,
            consumer,
            topic: topic.to_string(),
            // With none known, only a recovery's epoch is taken (see the module docs).
            known: Known::new(state.epoch().cloned(), false),
            lost: AtomicBool::new(false),
            recoveries: AtomicU64::new(0),
            floors: Mutex::new(group.committed.clone()),
        };
        match &state {
            State::Intact(e) => {
                info!(epoch = %e.id, origin = ?e.origin, "store epoch");
                guard.compare_applied(&group.committed).await?;
            }
            _ => guard.mark_lost(),
        }
        Ok(guard)
    }

    /// Records that this worker stored `next` for `partition` (after its
    /// batch's applied offsets were raised): a floor for later checks.
    pub fn stored(&self, partition: i32, next: i64) {
        self.raise_floors([(partition, next)]);
    }

    /// Raises the floors to `offsets`, each known applied in the known epoch.
    fn raise_floors(&self, offsets: impl IntoIterator<Item = (i32, i64)>) {
        let mut floors = self.floors.lock().unwrap_or_else(PoisonError::into_inner);
        for (partition, offset) in offsets {
            let floor = floors.entry(partition).or_insert(offset);
            *floor = (*floor).max(offset);
        }
    }

    fn floor(&self, partition: i32) -> Option<i64> {
        self.floors.lock().unwrap_or_else(PoisonError::into_inner).get(&partition).copied()
    }

    /// After a batch's effects: raises the store's applied offsets to `marks`
    /// (each with this worker's floor) where the store holds the known epoch,
    /// and judges the store as [`Guard::check`] does; a node behind a floor is
    /// a rollback. Written through `writer`, the connection that wrote the
    /// effects, so that its `WAIT` covers them too.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn confirm(&self, writer: &Store, marks: &[Mark]) -> leaderboard_store::Result<Check> {
        let Some(known) = self.known.get() else { return self.check().await };
        let marks: Vec<Mark> = marks.iter().map(|m| Mark { floor: self.floor(m.partition), ..*m }).collect();
        match applied::advance(writer, &self.topic, &marks, Some(&known.id)).await? {
            Advanced::Recorded => Ok(self.judged(Verdict::Same)),
            Advanced::OtherEpoch => self.check().await,
            Advanced::Behind(behind) => {
                self.rolled_back(behind).await?;
                Ok(Check::Lost)
            }
        }
    }

    /// Compares the store's applied offsets with the group's committed ones
    /// (read first: applied offsets only grow, so a later read cannot make
    /// an intact store look behind).
    ///
    /// # Errors
    /// When the broker or Redis fails.
    pub async fn compare_with_group(&self) -> anyhow::Result<Check> {
        let group = group_offsets(Arc::clone(&self.consumer), self.topic.clone()).await?;
        let check = self.check().await?;
        if check != Check::Same {
            return Ok(check);
        }
        self.raise_floors(group.committed.iter().map(|(&p, &o)| (p, o)));
        Ok(self.compare_applied(&group.committed).await?)
    }

    /// Marks the store lost when a node's applied offsets are below `committed`.
    async fn compare_applied(&self, committed: &Offsets) -> leaderboard_store::Result<Check> {
        let nodes = applied::read(&self.store, &self.topic).await?;
        match applied::first_behind(&nodes, committed) {
            Some(behind) => {
                self.rolled_back(behind).await?;
                Ok(Check::Lost)
            }
            None => Ok(Check::Same),
        }
    }

    /// A node is behind: marks the store lost for every process.
    async fn rolled_back(&self, behind: Behind) -> leaderboard_store::Result<()> {
        error!(
            partition = behind.partition,
            applied = behind.applied,
            committed = behind.expected,
            "the store went back in time: a node's applied offset is below what was applied and committed \
             (a Redis restarted from an older state, or a replica promoted without the last writes); run \
             `lb-admin catch-up` to replay what it forgot"
        );
        metrics::counter!("ingest_rollbacks_total").increment(1);
        if let Some(known) = self.known.get() {
            loss::mark_lost(&self.store, &known, &Loss::rollback(&self.topic, behind)).await?;
        }
        self.mark_lost();
        Ok(())
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
    pub async fn check(&self) -> leaderboard_store::Result<Check> {
        let now = epoch::read(&self.store).await?;
        Ok(self.judged(self.known.judge(&now)))
    }

    /// Acts on a verdict about the store's epoch.
    fn judged(&self, verdict: Verdict) -> Check {
        match verdict {
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
                // The recovery's applied offsets are the truth now.
                self.floors.lock().unwrap_or_else(PoisonError::into_inner).clear();
                self.recoveries.fetch_add(1, Ordering::Relaxed);
                self.lost.store(false, Ordering::Relaxed);
                metrics::gauge!("ingest_store_lost").set(0.0);
                self.shared.health.succeed(Step::StoreLost);
                Check::Recovered
            }
        }
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

    /// Checks every `interval` until `stop`, so an idle worker notices a loss,
    /// a rollback (against the group's committed offsets) and a recovery too.
    pub async fn watch(self: Arc<Self>, interval: Duration, stop: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stop.cancelled() => return,
            }
            if let Err(e) = self.compare_with_group().await {
                tracing::debug!(error = %e, "epoch check failed");
            }
        }
    }
}

/// The topic's partitions and the group's committed offsets on them.
struct GroupOffsets {
    partitions: Vec<i32>,
    /// Partitions without a committed offset are absent.
    committed: Offsets,
}

/// Reads the topic's partitions and the group's committed offsets (off the runtime's threads).
async fn group_offsets(consumer: Arc<IngestConsumer>, topic: String) -> anyhow::Result<GroupOffsets> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<GroupOffsets> {
        let partitions = crate::recovery::partitions_of(&*consumer, &topic)?;
        let committed = if partitions.is_empty() {
            Offsets::new()
        } else {
            crate::recovery::committed_on(&*consumer, &topic, &partitions)?
        };
        Ok(GroupOffsets { partitions, committed })
    })
    .await?
}
