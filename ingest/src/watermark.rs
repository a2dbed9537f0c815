//! Publishing what this worker has applied: the watermark behind every `as_of`.
//!
//! Every `--watermark-interval`, the worker asks the broker where each of its
//! partitions' logs ends, asks the partition table what it has seen
//! ([`crate::partitions::Partitions::claims`]), moves that back by
//! `--watermark-lateness` (a record stamped at `T` may reach the broker a little
//! after `T`: producer batching, retries, clock skew), and writes the claims into
//! Redis beside the data ([`leaderboard_store::marker::watermark`]). A claim is computed
//! from records whose writes were already acknowledged (and replicated, per
//! `--wait-replicas`), and written after them, so any node holding the claim
//! holds the data it covers.
//!
//! The broker is asked on a blocking thread (librdkafka's calls block), at
//! most one partition at a time, each bounded by [`END_TIMEOUT`]. A failed
//! round publishes nothing: the claims already in Redis stay true, only older.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leaderboard_store::Store;
use leaderboard_store::marker::watermark::{self, Claim};
use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::partitions::LogEnd;
use crate::poll::IngestConsumer;
use crate::shared::Shared;

/// Longest wait for the broker to say where one partition ends, or how many partitions the topic has.
pub const END_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the topic's partition count is trusted before it is asked again.
const PARTITION_COUNT_TTL: Duration = Duration::from_secs(10);

/// The publisher's inputs.
pub struct Publisher {
    /// The worker's consumer (log ends and positions).
    pub consumer: Arc<IngestConsumer>,
    /// The partition table.
    pub shared: Arc<Shared>,
    /// A connection of its own: writes on the writer's or the replica probe's
    /// connection would change what their `WAIT` counts.
    pub store: Store,
    /// The source topic.
    pub topic: String,
    /// How often to publish.
    pub interval: Duration,
    /// How late a record may reach the broker after its timestamp: claims are this much older.
    pub lateness: Duration,
}

impl Publisher {
    /// Publishes every `interval` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut partition_count: Option<(u32, Instant)> = None;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            if let Err(e) = self.publish_once(&mut partition_count).await {
                metrics::counter!("ingest_watermark_failures_total").increment(1);
                debug!(error = %e, "watermark not published this round");
            }
        }
    }

    async fn publish_once(&self, partition_count: &mut Option<(u32, Instant)>) -> anyhow::Result<()> {
        let owned = self.shared.partitions.owned();
        if owned.is_empty() {
            return Ok(());
        }
        let lateness_ms = i64::try_from(self.lateness.as_millis()).unwrap_or(i64::MAX);
        let known = partition_count.filter(|(_, at)| at.elapsed() < PARTITION_COUNT_TTL).map(|(n, _)| n);
        let (consumer, topic) = (self.consumer.clone(), self.topic.clone());
        let (count, ends) = tokio::task::spawn_blocking(move || -> anyhow::Result<(u32, Vec<LogEnd>)> {
            let count = match known {
                Some(n) => n,
                None => count_partitions(&consumer, &topic)?,
            };
            Ok((count, log_ends(&consumer, &topic, &owned)?))
        })
        .await??;
        if known.is_none() {
            *partition_count = Some((count, Instant::now()));
        }
        let claims: Vec<Claim> = self
            .shared
            .partitions
            .claims(&ends)
            .into_iter()
            .map(|(partition, seen_before_ms)| Claim { partition, applied_before_ms: seen_before_ms - lateness_ms })
            .collect();
        watermark::publish(&self.store, &self.topic, count, &claims).await?;
        if let Some(oldest) = claims.iter().map(|c| c.applied_before_ms).min() {
            let behind_ms = now_ms().saturating_sub(oldest).max(0);
            metrics::gauge!("ingest_watermark_delay_seconds").set(behind_ms as f64 / 1000.0);
        }
        Ok(())
    }
}

/// How many partitions the topic has (blocking).
fn count_partitions(consumer: &IngestConsumer, topic: &str) -> anyhow::Result<u32> {
    let metadata = consumer.fetch_metadata(Some(topic), END_TIMEOUT)?;
    let partitions = metadata.topics().iter().find(|t| t.name() == topic).map_or(0, |t| t.partitions().len());
    anyhow::ensure!(partitions > 0, "topic {topic} has no partitions in the broker's metadata");
    Ok(u32::try_from(partitions)?)
}

/// Where each partition's log ends and where the consumer stands (blocking).
fn log_ends(consumer: &IngestConsumer, topic: &str, partitions: &[i32]) -> anyhow::Result<Vec<LogEnd>> {
    let positions = consumer.position()?;
    partitions
        .iter()
        .map(|&partition| {
            let asked_at_ms = now_ms();
            let (_, end_offset) = consumer.fetch_watermarks(topic, partition, END_TIMEOUT)?;
            let position = positions.find_partition(topic, partition).and_then(|tp| match tp.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
            Ok(LogEnd { partition, end_offset, position, asked_at_ms })
        })
        .collect()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
