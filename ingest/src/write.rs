//! The write stage: dead letters, then Redis, then offsets, in that order.
//!
//! A batch's offsets are stored only after its malformed records are in the
//! dead-letter topic and its updates are acknowledged by Redis. Failures are
//! retried with exponential backoff and jitter, for as long as it takes; the
//! consume stage pauses meanwhile. At shutdown, retries stop after the drain
//! timeout and the unfinished batch is abandoned without storing its offsets,
//! so its records are redelivered to the next owner.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use shard_router::Router;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::backoff::Backoff;
use crate::batch::Batch;
use crate::consume::IngestConsumer;
use crate::shared::{Counters, Shared};

/// Everything the writer needs.
pub struct Writer {
    /// Leaderboard writes.
    pub router: Router,
    /// Dead-letter producer.
    pub producer: FutureProducer,
    /// Where offsets are stored.
    pub consumer: Arc<IngestConsumer>,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Source topic (for storing offsets).
    pub topic: String,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Retry delays.
    pub backoff: Backoff,
    /// How long retries continue after shutdown began.
    pub drain_timeout: Duration,
    /// Freshness (event time to applied), in milliseconds.
    pub freshness: Histogram<u64>,
}

/// Whether a step finished or was given up at shutdown.
enum Outcome {
    Done,
    Abandoned,
}

impl Writer {
    /// Writes batches until the input closes or shutdown's drain deadline passes.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Batch>, shutdown: CancellationToken) -> Histogram<u64> {
        let mut deadline: Option<Instant> = None;
        while let Some(batch) = rx.recv().await {
            let records = batch.records;
            let outcome = self.write(batch, &shutdown, &mut deadline).await;
            self.shared.in_flight.done(records);
            if matches!(outcome, Outcome::Abandoned) {
                warn!("shutdown: abandoned an unfinished batch; its records will be redelivered");
                while let Some(rest) = rx.recv().await {
                    self.shared.in_flight.done(rest.records);
                }
                break;
            }
        }
        self.freshness
    }

    async fn write(&mut self, batch: Batch, shutdown: &CancellationToken, deadline: &mut Option<Instant>) -> Outcome {
        metrics::histogram!("ingest_batch_events").record(batch.records as f64);
        if !batch.rejects.is_empty() {
            let producer = self.producer.clone();
            let dlq = self.dlq_topic.clone();
            let rejects = &batch.rejects;
            let step = || dead_letter(&producer, &dlq, rejects);
            if let Outcome::Abandoned =
                retry(&mut self.backoff, shutdown, deadline, self.drain_timeout, "dead-letter", step).await
            {
                return Outcome::Abandoned;
            }
            Counters::add(&self.shared.counters.dead_lettered, rejects.len() as u64);
            for (_, r) in rejects {
                metrics::counter!("ingest_events_dead_lettered_total", "reason" => r.code.as_str()).increment(1);
            }
        }
        if !batch.updates.is_empty() {
            let router = self.router.clone();
            let shared = self.shared.clone();
            let updates = &batch.updates;
            let step = || async {
                let started = Instant::now();
                let result = router.apply(updates).await;
                metrics::histogram!("ingest_redis_write_seconds").record(started.elapsed().as_secs_f64());
                if result.is_err() {
                    // Redis may have restarted and lost data: the cache may be ahead of it now.
                    shared.cache.clear();
                    Counters::add(&shared.counters.redis_errors, 1);
                    metrics::counter!("ingest_redis_write_errors_total").increment(1);
                }
                result
            };
            if let Outcome::Abandoned =
                retry(&mut self.backoff, shutdown, deadline, self.drain_timeout, "redis", step).await
            {
                return Outcome::Abandoned;
            }
            for u in updates {
                self.shared.cache.record(&u.board, &u.player, u.score);
            }
            Counters::add(&self.shared.counters.applied, updates.len() as u64);
        }
        self.record_freshness(&batch.event_times);
        if batch.epoch == self.shared.epoch() {
            for (&partition, &offset) in &batch.offsets {
                // Stores offset + 1 for the next commit.
                if let Err(e) = self.consumer.store_offset(&self.topic, partition, offset) {
                    debug!(error = %e, partition, "offset not stored (partition no longer assigned)");
                }
            }
        }
        Counters::add(&self.shared.counters.batches, 1);
        Outcome::Done
    }

    fn record_freshness(&mut self, event_times: &[u64]) {
        if event_times.is_empty() {
            return;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        for &ts in event_times {
            // Clock skew can put producers ahead of us; count that as fresh.
            let _ = self.freshness.record(now.saturating_sub(ts).max(1));
        }
        for (label, q) in [("0.5", 0.5), ("0.99", 0.99), ("0.999", 0.999)] {
            metrics::gauge!("ingest_freshness_seconds", "quantile" => label)
                .set(self.freshness.value_at_quantile(q) as f64 / 1000.0);
        }
    }
}

/// Runs `step` until it succeeds, backing off between attempts; gives up only
/// when shutdown began more than `drain_timeout` ago.
async fn retry<F, Fut, E>(
    backoff: &mut Backoff,
    shutdown: &CancellationToken,
    deadline: &mut Option<Instant>,
    drain_timeout: Duration,
    what: &str,
    mut step: F,
) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    loop {
        match step().await {
            Ok(()) => {
                backoff.reset();
                return Outcome::Done;
            }
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(error = %e, attempt = backoff.attempts(), retry_in = ?delay, "{what} write failed");
                if shutdown.is_cancelled() {
                    let end = *deadline.get_or_insert_with(|| Instant::now() + drain_timeout);
                    if Instant::now() + delay >= end {
                        return Outcome::Abandoned;
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled(), if deadline.is_none() => {
                        deadline.get_or_insert_with(|| Instant::now() + drain_timeout);
                    }
                }
            }
        }
    }
}

/// Sends malformed records to the dead-letter topic and waits for every acknowledgement.
async fn dead_letter(
    producer: &FutureProducer,
    topic: &str,
    rejects: &[(crate::record::OwnedRecord, leaderboard_contract::Rejection)],
) -> Result<(), rdkafka::error::KafkaError> {
    let sends = rejects.iter().map(|(record, rejection)| {
        let reason = rejection.header_value();
        let partition = record.partition.to_string();
        let offset = record.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: leaderboard_contract::ERROR_HEADER, value: Some(reason.as_bytes()) })
            .insert(Header { key: "error.code", value: Some(rejection.code.as_str().as_bytes()) })
            .insert(Header { key: "source.partition", value: Some(partition.as_bytes()) })
            .insert(Header { key: "source.offset", value: Some(offset.as_bytes()) });
        let mut out: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(k) = &record.key {
            out = out.key(k.as_slice());
        }
        if let Some(v) = &record.value {
            out = out.payload(v.as_slice());
        }
        producer.send(out, Duration::from_secs(10))
    });
    for result in futures::future::join_all(sends).await {
        result.map_err(|(e, _)| e)?;
    }
    Ok(())
}
