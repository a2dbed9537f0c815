//! The write stage's loop: each batch written into the store the worker
//! knows, then its offsets stored.

use hdrhistogram::Histogram;
use leaderboard_store::Failure;
use leaderboard_store::failpoint::hold_here;
use leaderboard_store::marker::applied::{self, Mark};
use rdkafka::consumer::Consumer;
use tokio::sync::mpsc;
use tracing::warn;

use super::{Abandoned, Writer};
use crate::batch::Batch;
use crate::health::Step;
use crate::loss::{Check, Epoch, Guard};
use crate::shared::Counter;

impl Writer {
    /// Writes batches until the input closes or shutdown's drain deadline passes.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Batch>) -> Histogram<u64> {
        // Present from the start, so an alert on its increase sees the first one.
        metrics::counter!("ingest_unwritable_board_lookups_total").increment(0);
        while let Some(batch) = rx.recv().await {
            if self.write_confirmed(&batch).await.is_err() {
                warn!("shutdown: abandoned an unfinished batch; its records will be redelivered");
                self.shared.partitions.complete(&batch.spans, |_, _| {});
                while let Some(rest) = rx.recv().await {
                    self.shared.partitions.complete(&rest.spans, |_, _| {});
                }
                break;
            }
            // Fault tests stop the worker here: in Redis, offsets not yet stored.
            hold_here("ingest::after_redis_write");
            let (consumer, topic, epoch) = (&self.consumer, self.topic.as_str(), &self.epoch);
            self.shared.partitions.complete(&batch.spans, |partition, offset| {
                // Stores offset + 1 for the next commit.
                if let Err(e) = consumer.store_offset(topic, partition, offset) {
                    warn!(error = %e, partition, "offset not stored");
                }
                if let Epoch::Guarded(guard) = epoch {
                    guard.stored(partition, offset + 1);
                }
            });
            self.shared.counters.add(Counter::Batches, 1);
            self.shared.health.progress();
        }
        self.freshness
    }

    /// Writes `batch` into the store the worker knows: waits while it is lost,
    /// and writes the batch again when the epoch after the write says the
    /// store was lost (the batch may have gone into the wiped store) or recovered meanwhile.
    async fn write_confirmed(&mut self, batch: &Batch) -> Result<(), Abandoned> {
        let marks = marks(batch);
        let guard = match &self.epoch {
            Epoch::Guarded(guard) => guard.clone(),
            Epoch::Replay => return self.write_replayed(batch, &marks).await,
        };
        loop {
            self.wait_while_lost(&guard).await?;
            let recoveries = guard.recoveries();
            // The effects, confirmed by the replicas ([`Writer::apply`]).
            self.write(batch).await?;
            // Then the applied offsets, raised in the round trip that checks the epoch and
            // confirmed by the replicas too, before the offsets are stored ([`crate::loss`]).
            loop {
                match guard.confirm(self.redis.router.store(), &marks).await {
                    Ok(Check::Same) if guard.recoveries() == recoveries => match self.replicated().await {
                        Ok(()) => return Ok(()),
                        Err(unreplicated) => self.unreplicated(&unreplicated).await?,
                    },
                    Ok(_) => {
                        // Lost or recovered meanwhile: the batch may have gone into the old store.
                        self.forget_store_state();
                        break;
                    }
                    Err(e) => self.retry_after(&e).await?,
                }
            }
        }
    }

    /// A recovery's replay into a lost store: no epoch to hold to, only the
    /// applied offsets to raise (and the replicas to confirm them).
    async fn write_replayed(&mut self, batch: &Batch, marks: &[Mark]) -> Result<(), Abandoned> {
        self.write(batch).await?;
        loop {
            match applied::advance(self.redis.router.store(), &self.topic, marks, None).await {
                Ok(_) => match self.replicated().await {
                    Ok(()) => return Ok(()),
                    Err(unreplicated) => self.unreplicated(&unreplicated).await?,
                },
                Err(e) => self.retry_after(&e).await?,
            }
        }
    }

    /// Waits while the store is lost (nothing is written into it until recovery).
    async fn wait_while_lost(&mut self, guard: &Guard) -> Result<(), Abandoned> {
        while guard.is_lost() {
            if !self.retry.wait(&self.shared.health, Step::StoreLost, Failure::StoreBlocked, &"store lost").await {
                return Err(Abandoned);
            }
            if let Err(e) = guard.check().await {
                self.retry_after(&e).await?;
            }
        }
        Ok(())
    }

    /// Forgets everything learnt from a store that was lost or recovered.
    fn forget_store_state(&mut self) {
        self.redis.forget_records();
        self.opened.clear();
        self.closed.clear();
        self.shared.cache.clear();
    }
}

/// The applied offsets a batch reaches: per partition, the offset after its last record.
fn marks(batch: &Batch) -> Vec<Mark> {
    batch.spans.iter().map(|(&partition, span)| Mark { partition, next: span.last_offset + 1, floor: None }).collect()
}
