//! The poll stage: a dedicated thread that owns the Kafka consumer.
//!
//! librdkafka runs rebalance callbacks inside `poll`, and a revocation must
//! wait (bounded) for in-flight records of the revoked partitions before their
//! offsets are committed. Polling on a thread of its own means that wait never
//! blocks a Tokio worker, whatever the runtime's flavour.
//!
//! Backpressure is counted in bytes: a record enters the pipeline only with a
//! share of the byte budget ([`crate::record::OwnedRecord::charge`]), released
//! when its batch is done. While the budget or the channel is full the thread
//! stops polling (librdkafka keeps prefetching up to
//! `queued.max.messages.kbytes`, so a short hiccup costs nothing). If the
//! pipeline stays full for `pause_after` (Redis down or very slow), it pauses
//! every assigned partition and goes back to polling, so the worker keeps its
//! group membership however long the outage lasts; partitions resume when the
//! record at the head gets in. (Pausing is not the everyday tool because
//! librdkafka drops prefetched data on pause and must fetch it again.)

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use tokio::runtime::Handle;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::batch::Received;
use crate::config::Config;
use crate::record::OwnedRecord;
use crate::shared::{Counter, Shared};

/// The consumer's context: partition bookkeeping on rebalance, lag and broker state from statistics.
pub struct IngestContext {
    shared: Arc<Shared>,
    drain_timeout: Duration,
    /// The partitions whose lag the last statistics report set.
    lag_reported: std::sync::Mutex<BTreeSet<i32>>,
}

/// The lag gauges to set from one statistics report: each partition whose lag
/// is known (this worker's), and 0 for those reported before and not now (no
/// longer this worker's: left as they were, they would count stale lag in the
/// group's sum after a rebalance). `reported` becomes the partitions set now.
fn lag_gauges(reported: &mut BTreeSet<i32>, lags: impl IntoIterator<Item = (i32, i64)>) -> Vec<(i32, f64)> {
    let now: BTreeMap<i32, i64> = lags.into_iter().filter(|&(p, lag)| p >= 0 && lag >= 0).collect();
    let mut gauges: Vec<(i32, f64)> = reported.iter().filter(|p| !now.contains_key(p)).map(|&p| (p, 0.0)).collect();
    gauges.extend(now.iter().map(|(&p, &lag)| (p, lag as f64)));
    *reported = now.into_keys().collect();
    gauges
}

impl ClientContext for IngestContext {
    fn stats(&self, statistics: Statistics) {
        let lags = statistics.topics.values().flat_map(|t| t.partitions.iter().map(|(&p, s)| (p, s.consumer_lag)));
        let gauges = {
            let mut reported = self.lag_reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            lag_gauges(&mut reported, lags)
        };
        for (partition, lag) in gauges {
            metrics::gauge!("ingest_consumer_lag", "partition" => partition.to_string()).set(lag);
        }
        let up = statistics.brokers.values().any(|b| b.nodeid >= 0 && b.state == "UP");
        self.shared.health.set_broker_up(up);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error, KafkaError::Global(RDKafkaErrorCode::AllBrokersDown)) {
            self.shared.health.set_broker_up(false);
        }
        warn!(error = %error, reason, "kafka client error");
    }
}

fn partitions_of(list: &TopicPartitionList) -> Vec<i32> {
    list.elements().iter().map(rdkafka::topic_partition_list::TopicPartitionListElem::partition).collect()
}

impl ConsumerContext for IngestContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let partitions = partitions_of(list);
                // A lost assignment (session expired) belongs to someone else already: commit nothing.
                let lost = consumer.assignment_lost();
                let drain = if lost { Duration::ZERO } else { self.drain_timeout };
                let drained = self.shared.partitions.revoke(&partitions, drain);
                if !drained && !lost {
                    warn!(
                        ?partitions,
                        "revocation: in-flight records did not finish in time; they will be redelivered"
                    );
                }
                if !lost {
                    match consumer.commit_consumer_state(CommitMode::Sync) {
                        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                        Err(e) => warn!(error = %e, "commit on revocation failed"),
                    }
                }
                // Another worker may own these players now: when in doubt, write.
                self.shared.cache.clear();
                self.shared.counters.add(Counter::Revocations, 1);
                info!(?partitions, drained, lost, "partitions revoked");
            }
            Rebalance::Assign(list) => {
                let partitions = partitions_of(list);
                self.shared.partitions.assign(&partitions);
                info!(?partitions, "partitions assigned");
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // librdkafka keeps a partition's pause flag across revoke and assign:
        // a partition paused for backpressure, revoked, then assigned again
        // would never be fetched. A fresh assignment starts resumed (the poll
        // thread pauses it again if the pipeline is still full).
        if let Rebalance::Assign(list) = rebalance
            && let Err(e) = consumer.resume(list)
        {
            warn!(error = %e, "could not resume newly assigned partitions");
        }
    }
}

/// The consumer type ingest uses.
pub type IngestConsumer = BaseConsumer<IngestContext>;

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
        .set("statistics.interval.ms", "1000")
        // Memory: librdkafka's own share of the documented bound (see `crate::config`).
        .set("queued.max.messages.kbytes", (config.kafka_queue_bytes / 1024).to_string())
        // A record batch larger than this still arrives whole (up to the topic's
        // `max.message.bytes`): `receive.message.max.bytes` stays at librdkafka's 100 MB, as
        // a response above it would be refetched forever and wedge the partition.
        .set("fetch.max.bytes", config.kafka_fetch_bytes.to_string())
        // A broker may hold an empty fetch for a fixed share of this wait
        // before it looks again (nisshi: half of it) instead of answering as
        // data arrives; 100 ms rather than librdkafka's 500 ms cut the demo's
        // produce-to-visible p50 from 259 ms to 61 ms. Idle partitions cost a
        // few more empty fetches per second.
        .set("fetch.wait.max.ms", "100");
    if !config.uses_consumer_protocol() {
        // KIP-848 groups take their session timeout from the broker.
        client.set("session.timeout.ms", config.session_timeout.as_millis().to_string());
    }
    for (k, v) in config.kafka_settings() {
        client.set(k, v);
    }
    let consumer: IngestConsumer = client.create_with_context(IngestContext {
        shared,
        drain_timeout: config.drain_timeout,
        lag_reported: std::sync::Mutex::default(),
    })?;
    consumer.subscribe(&[&config.topic])?;
    Ok(consumer)
}

/// How long one `poll` waits for a record.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How long a blocked thread waits for room before it polls again or checks for a stall.
const ROOM_WAIT: Duration = Duration::from_millis(100);

/// The poll thread's inputs.
pub struct Poller {
    /// The consumer (the thread drops the last handle, so closing runs here too).
    pub consumer: Arc<IngestConsumer>,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Where admitted records go.
    pub tx: mpsc::Sender<Received>,
    /// The byte budget of records in the pipeline.
    pub budget: Arc<Semaphore>,
    /// The budget's size in bytes.
    pub budget_bytes: u32,
    /// How long the pipeline may stay full before partitions are paused.
    pub pause_after: Duration,
    /// Stop taking records.
    pub shutdown: CancellationToken,
    /// The rest of the pipeline has finished: commit and leave the group.
    pub finished: CancellationToken,
    /// The runtime whose semaphore and channel the thread waits on.
    pub runtime: Handle,
    /// Checks each record's signature (on this thread, beside the batch task).
    pub verifier: Arc<leaderboard_contract::signature::Verifier>,
}

impl Poller {
    /// Starts the thread; the receiver completes when it has committed and closed the consumer.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn spawn(self) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new().name("ingest-poll".into()).spawn(move || {
            self.run();
            let _ = done_tx.send(());
        })?;
        Ok(done_rx)
    }

    fn run(self) {
        let Self { consumer, shared, tx, budget, budget_bytes, pause_after, shutdown, finished, runtime, verifier } =
            self;
        let intake =
            Intake { consumer: &consumer, shared: &shared, budget: &budget, budget_bytes, verifier: &verifier };
        let mut pending: VecDeque<(u64, OwnedRecord)> = VecDeque::new();
        let mut paused = false;
        let mut blocked_since: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            if intake.forward(&mut pending, &tx).is_err() {
                break; // the pipeline is gone
            }
            if pending.is_empty() {
                blocked_since = None;
                if paused {
                    paused = !set_paused(&consumer, false);
                }
                // Nothing polled and nothing in flight: nothing to do is not a stall. (Asked
                // only when the poll came back empty, not on every record.)
                if !intake.poll(&mut pending, POLL_WAIT) && shared.partitions.in_flight() == 0 {
                    shared.health.progress();
                }
                continue;
            }
            let since = *blocked_since.get_or_insert_with(Instant::now);
            if !paused && since.elapsed() >= pause_after {
                paused = set_paused(&consumer, true);
                if paused {
                    shared.counters.add(Counter::Pauses, 1);
                }
            }
            if paused {
                // Keep polling to keep membership; paused partitions return nothing, but a
                // partition assigned since the pause may: pause the whole assignment again.
                if intake.poll(&mut pending, POLL_WAIT) {
                    set_paused(&consumer, true);
                }
            } else {
                let charge = intake.charge(&pending[0].1);
                runtime.block_on(async {
                    let _ = tokio::time::timeout(ROOM_WAIT, async {
                        let _bytes = budget.acquire_many(charge).await;
                        let _slot = tx.reserve().await;
                    })
                    .await;
                });
            }
        }
        // Shutdown: nothing more enters; keep serving rebalance callbacks until
        // the pipeline has finished, then commit what it stored and leave.
        drop(tx);
        drop(pending);
        while !finished.is_cancelled() {
            // A record polled now is not admitted, so never stored: redelivered to the next owner.
            let _ = consumer.poll(POLL_WAIT);
        }
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => info!("final offsets committed"),
            Err(e) => info!(error = %e, "final commit: nothing to commit or commit failed"),
        }
        consumer.unsubscribe();
    }
}

/// Moving records from the consumer into the pipeline.
struct Intake<'a> {
    consumer: &'a IngestConsumer,
    shared: &'a Shared,
    budget: &'a Arc<Semaphore>,
    budget_bytes: u32,
    verifier: &'a leaderboard_contract::signature::Verifier,
}

impl Intake<'_> {
    /// Polls once; returns whether a record arrived (it goes to `pending`).
    fn poll(&self, pending: &mut VecDeque<(u64, OwnedRecord)>, wait: Duration) -> bool {
        match self.consumer.poll(wait) {
            Some(Ok(message)) => {
                self.shared.counters.add(Counter::Consumed, 1);
                let record = OwnedRecord::from_message(&message, self.verifier);
                if let Some(generation) = self.shared.partitions.polled(record.partition, record.offset) {
                    pending.push_back((generation, record));
                }
                true
            }
            Some(Err(e)) => {
                warn!(error = %e, "kafka consume error");
                false
            }
            None => false,
        }
    }

    /// A record's charge against the budget (a record larger than the whole budget takes all of it).
    fn charge(&self, record: &OwnedRecord) -> u32 {
        u32::try_from(record.charge()).unwrap_or(u32::MAX).min(self.budget_bytes)
    }

    /// Admits pending records while the budget and the channel have room;
    /// drops those whose partition was revoked since. Errs when the channel is closed.
    fn forward(&self, pending: &mut VecDeque<(u64, OwnedRecord)>, tx: &mpsc::Sender<Received>) -> Result<(), ()> {
        // From each record's producer stamp to this hand-over: the producer's linger, the broker's
        // append and the fetch (the first stage of freshness). One clock read and one handle per
        // call, not per record: the records of one call are handed over within microseconds.
        let fetch_delay = metrics::histogram!("ingest_fetch_delay_seconds");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        while let Some((_, front)) = pending.front() {
            let slot = match tx.try_reserve() {
                Ok(slot) => slot,
                Err(TrySendError::Full(())) => return Ok(()),
                Err(TrySendError::Closed(())) => return Err(()),
            };
            let Ok(permit) = self.budget.clone().try_acquire_many_owned(self.charge(front)) else { return Ok(()) };
            let Some((generation, record)) = pending.pop_front() else { return Ok(()) };
            let timestamp_ms = record.timestamp_ms.unwrap_or(0);
            if timestamp_ms > 0 {
                fetch_delay.record(now_ms.saturating_sub(timestamp_ms).max(0) as f64 / 1000.0);
            }
            if self.shared.partitions.admit(record.partition, generation, record.offset, timestamp_ms) {
                slot.send(Received { generation, record, permit });
            }
        }
        Ok(())
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_no_longer_reported_has_its_lag_set_to_zero() {
        let mut reported = BTreeSet::new();
        assert_eq!(lag_gauges(&mut reported, [(0, 10), (1, 20), (2, -1), (-1, 5)]), [(0, 10.0), (1, 20.0)]);
        // Partition 1 revoked: librdkafka reports it without a lag (or not at all).
        assert_eq!(lag_gauges(&mut reported, [(0, 4), (1, -1)]), [(1, 0.0), (0, 4.0)]);
        assert_eq!(lag_gauges(&mut reported, [(0, 3)]), [(0, 3.0)], "zeroed once, then left alone");
    }
}
