//! The consume stage: polls Kafka, hands records to the batcher, applies backpressure.
//!
//! Backpressure has two levels. When the batcher falls behind (the bounded
//! channel is full), records wait in a bounded local queue, and once that
//! queue is full the stage simply stops polling: librdkafka keeps prefetching
//! up to `queued.max.messages.kbytes`, so a short hiccup costs nothing. If the
//! stage stays blocked for `pause_after` (Redis down or very slow), it pauses
//! every assigned partition and goes back to polling, so the worker keeps its
//! group membership however long the outage lasts; partitions resume when the
//! queue has drained to half. (Pausing is not the everyday tool because
//! librdkafka drops prefetched data on pause and must fetch it again.)

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::record::OwnedRecord;
use crate::shared::{Counters, Shared};

/// The consumer's context: drains and commits on revocation, exports lag.
pub struct IngestContext {
    shared: Arc<Shared>,
    drain_timeout: Duration,
}

impl ClientContext for IngestContext {
    fn stats(&self, statistics: Statistics) {
        for topic in statistics.topics.values() {
            for (partition, p) in &topic.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    metrics::gauge!("ingest_consumer_lag", "partition" => partition.to_string())
                        .set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for IngestContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                let drained = self.shared.in_flight.wait_idle(self.drain_timeout);
                if !drained {
                    warn!(
                        in_flight = self.shared.in_flight.get(),
                        "revocation: in-flight batches did not finish in time; their records will be redelivered"
                    );
                }
                // Offsets of work from before this point must not be stored any more.
                self.shared.bump_epoch();
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
                    Err(e) => warn!(error = %e, "commit on revocation failed"),
                }
                // Another worker may own these players now: when in doubt, write.
                self.shared.cache.clear();
                Counters::add(&self.shared.counters.revocations, 1);
                info!(partitions = partitions.count(), drained, "partitions revoked");
            }
            Rebalance::Assign(partitions) => info!(partitions = partitions.count(), "partitions assigned"),
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }
}

/// The consumer type ingest uses.
pub type IngestConsumer = StreamConsumer<IngestContext>;

/// Creates the consumer and subscribes it.
///
/// # Errors
/// When librdkafka rejects the configuration.
pub fn create_consumer(config: &Config, shared: Arc<Shared>) -> Result<IngestConsumer, KafkaError> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        // Offsets are stored by the writer only after Redis acknowledged the batch.
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", config.session_timeout.as_millis().to_string())
        .set("statistics.interval.ms", "5000")
        .set("queued.max.messages.kbytes", "65536")
        // A broker may hold an empty fetch for a fixed share of this wait
        // before it looks again (nisshi: half of it) instead of answering as
        // data arrives; 100 ms rather than librdkafka's 500 ms cut the demo's
        // produce-to-visible p50 from 259 ms to 61 ms. Idle partitions cost a
        // few more empty fetches per second.
        .set("fetch.wait.max.ms", "100");
    for (k, v) in config.kafka_settings() {
        client.set(k, v);
    }
    let consumer: IngestConsumer =
        client.create_with_context(IngestContext { shared, drain_timeout: config.drain_timeout })?;
    consumer.subscribe(&[&config.topic])?;
    Ok(consumer)
}

/// A record and the assignment epoch it was received in.
pub type Received = (u64, OwnedRecord);

/// Polls until `shutdown`, sending records to `tx`; returns when the channel closes or on shutdown.
pub async fn run(
    consumer: Arc<IngestConsumer>,
    tx: mpsc::Sender<Received>,
    shared: Arc<Shared>,
    high_water: usize,
    pause_after: Duration,
    shutdown: CancellationToken,
) {
    let mut queue: VecDeque<Received> = VecDeque::with_capacity(high_water);
    let mut paused = false;
    let mut blocked_since: Option<Instant> = None;
    let mut epoch = shared.epoch();
    loop {
        let room = queue.len() < high_water;
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            permit = tx.reserve(), if !queue.is_empty() => match permit {
                Ok(permit) => {
                    if let Some(r) = queue.pop_front() {
                        shared.in_flight.add(1);
                        permit.send(r);
                    }
                }
                Err(_) => break,
            },
            // Polled while there is room, and always while paused (to keep membership).
            message = consumer.recv(), if room || paused => match message {
                Ok(m) => {
                    Counters::add(&shared.counters.consumed, 1);
                    queue.push_back((shared.epoch(), OwnedRecord::from_message(&m)));
                }
                Err(e) => warn!(error = %e, "kafka consume error"),
            },
            () = tokio::time::sleep(STALL_CHECK), if !room && !paused => {}
        }
        if shared.epoch() != epoch {
            // Revoked: queued records may belong to another worker now; they were
            // not stored, so their owner receives them again.
            epoch = shared.epoch();
            queue.retain(|(e, _)| *e == epoch);
            paused = false;
        }
        blocked_since = if queue.len() >= high_water { blocked_since.or_else(|| Some(Instant::now())) } else { None };
        if !paused && blocked_since.is_some_and(|t| t.elapsed() >= pause_after) {
            paused = set_paused(&consumer, true);
            if paused {
                Counters::add(&shared.counters.pauses, 1);
            }
        } else if paused && queue.len() <= high_water / 2 {
            paused = !set_paused(&consumer, false);
        }
    }
}

/// How often a blocked stage checks whether it has been blocked too long.
const STALL_CHECK: Duration = Duration::from_millis(250);

/// Pauses or resumes every assigned partition; returns whether it succeeded.
fn set_paused(consumer: &IngestConsumer, pause: bool) -> bool {
    let result = consumer.assignment().and_then(|a| if pause { consumer.pause(&a) } else { consumer.resume(&a) });
    match result {
        Ok(()) => {
            metrics::gauge!("ingest_paused").set(if pause { 1.0 } else { 0.0 });
            info!(pause, "backpressure: consumption {}", if pause { "paused" } else { "resumed" });
            true
        }
        Err(e) => {
            warn!(error = %e, pause, "could not change partition pause state");
            false
        }
    }
}
