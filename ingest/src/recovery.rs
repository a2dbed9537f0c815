//! Replaying the topic into a store being recovered (`lb-admin restore` and `rebuild`).
//!
//! A replay is this crate's own pipeline ([`crate::run`]) in replay mode
//! ([`Replay`]), under a consumer group of its own, so it drains at full
//! speed with the live workers' validation, rules and seasons, and leaves the
//! live group's offsets alone. It starts from given offsets (a snapshot's) or
//! from the earliest retained ones, and stops once its group has committed
//! the end offsets read when it started: the live workers, paused while the
//! store is lost, resume from their own committed offsets, which are no
//! further than those ends, so together nothing is missed (best-score writes
//! make the overlap harmless).
//!
//! A replay from the earliest offsets is only complete if no event ever
//! expired: [`require_retained`] refuses when a partition no longer starts at
//! the offset a replay needs, instead of building a silently partial board.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Replay};

/// Offsets by partition.
pub type Offsets = BTreeMap<i32, i64>;

/// Longest wait for one answer of the broker.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a replay's progress is read.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Where a replay starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The earliest retained offset of every partition (a rebuild).
    Earliest,
    /// These offsets (a snapshot's); partitions not listed start at the earliest.
    At(Offsets),
}

/// A partition's retained range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retained {
    /// The earliest offset still in the log.
    pub low: i64,
    /// The offset the next record will get.
    pub high: i64,
}

/// How far a replay got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Records behind the replay's committed offsets, since it started.
    pub done: u64,
    /// Records between the start and the end offsets.
    pub total: u64,
}

fn consumer(config: &Config, group: &str) -> anyhow::Result<BaseConsumer> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.brokers).set("group.id", group).set("enable.auto.commit", "false");
    for (k, v) in config.kafka_settings() {
        client.set(k, v);
    }
    client.create().context("creating a kafka client")
}

/// Runs a blocking librdkafka call off the runtime's worker threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await.context("kafka call")?
}

/// The retained range of every partition of the topic.
///
/// # Errors
/// When the broker does not answer or the topic does not exist.
pub async fn retained(config: &Config) -> anyhow::Result<BTreeMap<i32, Retained>> {
    let (client, topic) = (consumer(config, &config.group)?, config.topic.clone());
    blocking(move || {
        let partitions = partitions_of(&client, &topic)?;
        if partitions.is_empty() {
            bail!("topic {topic} has no partitions (does it exist?)");
        }
        let mut ranges = BTreeMap::new();
        for partition in partitions {
            let (low, high) = client.fetch_watermarks(&topic, partition, KAFKA_TIMEOUT)?;
            ranges.insert(partition, Retained { low, high });
        }
        Ok(ranges)
    })
    .await
}

/// The partitions of `topic` (none when it does not exist), as the broker's metadata says.
/// Blocking: call it off the runtime's worker threads.
///
/// # Errors
/// When the broker does not answer.
pub(crate) fn partitions_of<C: ConsumerContext, K: Consumer<C>>(client: &K, topic: &str) -> KafkaResult<Vec<i32>> {
    let metadata = client.fetch_metadata(Some(topic), KAFKA_TIMEOUT)?;
    Ok(metadata
        .topics()
        .iter()
        .flat_map(rdkafka::metadata::MetadataTopic::partitions)
        .map(rdkafka::metadata::MetadataPartition::id)
        .collect())
}

/// The offsets `group` has committed on the topic (partitions without one are absent).
///
/// # Errors
/// When the broker does not answer.
pub async fn committed(config: &Config, group: &str) -> anyhow::Result<Offsets> {
    let partitions: Vec<i32> = retained(config).await?.into_keys().collect();
    committed_in(config, group, partitions).await
}

/// The offsets `group` has committed on `partitions` of the topic (those without one are absent).
async fn committed_in(config: &Config, group: &str, partitions: Vec<i32>) -> anyhow::Result<Offsets> {
    let (client, topic) = (consumer(config, group)?, config.topic.clone());
    blocking(move || Ok(committed_on(&client, &topic, &partitions)?)).await
}

/// The offsets `client`'s group has committed on `partitions` of `topic`
/// (those without one are absent). Blocking: call it off the runtime's worker threads.
///
/// # Errors
/// When the broker does not answer.
pub(crate) fn committed_on<C: ConsumerContext, K: Consumer<C>>(
    client: &K,
    topic: &str,
    partitions: &[i32],
) -> KafkaResult<Offsets> {
    let mut list = TopicPartitionList::new();
    for &p in partitions {
        list.add_partition(topic, p);
    }
    let committed = client.committed_offsets(list, KAFKA_TIMEOUT)?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}

/// Refuses a replay that would need records the topic no longer has: every
/// partition must still start at or before where the replay starts.
///
/// # Errors
/// Naming each partition whose earliest retained offset is past the start.
pub fn require_retained(retained: &BTreeMap<i32, Retained>, start: &Start) -> anyhow::Result<()> {
    let mut expired = Vec::new();
    for (partition, range) in retained {
        let needed = match start {
            Start::Earliest => 0,
            Start::At(offsets) => offsets.get(partition).copied().unwrap_or(0),
        };
        if range.low > needed {
            expired.push(format!("partition {partition} starts at offset {} but offset {needed} is needed", range.low));
        }
    }
    if !expired.is_empty() {
        bail!(
            "events this replay needs have expired from the topic ({}); replaying would build a partial store. \
             Restore a snapshot whose offsets are still retained instead (lb-admin restore), and keep the topic's \
             retention longer than the interval between snapshots",
            expired.join("; ")
        );
    }
    Ok(())
}

/// Replays the topic into the store `config` points at, under the consumer
/// group `config.group` (a new one: its committed offsets are overwritten),
/// from `start` until every partition reaches `until`; reports progress to
/// `progress` meanwhile.
///
/// # Errors
/// When the broker or Redis fails for good, or the pipeline does.
pub async fn replay(
    mut config: Config,
    replay: Replay,
    start: Start,
    until: Offsets,
    progress: impl Fn(Progress),
) -> anyhow::Result<crate::Report> {
    let retained = retained(&config).await?;
    require_retained(&retained, &start)?;
    let from: Offsets = retained
        .iter()
        .map(|(p, r)| {
            let at = match &start {
                Start::Earliest => r.low,
                Start::At(offsets) => offsets.get(p).copied().unwrap_or(r.low),
            };
            (*p, at)
        })
        .collect();
    commit(&config, &from).await?;
    let total: u64 =
        until.iter().map(|(p, end)| end.saturating_sub(from.get(p).copied().unwrap_or(0)).max(0) as u64).sum();
    config.replay = Some(replay);
    let group = config.group.clone();
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the replay's metrics port")?;
    let lookup = config.clone();
    let mut pipeline = tokio::spawn(crate::run(config, listener, shutdown.clone()));
    let watch = async {
        loop {
            // The partitions are known: only the offsets are read again.
            let now = committed_in(&lookup, &group, until.keys().copied().collect()).await?;
            let done: u64 = until
                .iter()
                .map(|(p, end)| {
                    let start = from.get(p).copied().unwrap_or(0);
                    (now.get(p).copied().unwrap_or(start).min(*end) - start).max(0) as u64
                })
                .sum();
            progress(Progress { done, total });
            if until.iter().all(|(p, end)| now.get(p).copied().unwrap_or(from.get(p).copied().unwrap_or(0)) >= *end) {
                return anyhow::Ok(());
            }
            tokio::time::sleep(PROGRESS_EVERY).await;
        }
    };
    let watched = tokio::select! {
        r = watch => r,
        ended = &mut pipeline => {
            ended.context("replay pipeline")??;
            bail!("the replay pipeline stopped before it reached the end offsets");
        }
    };
    shutdown.cancel();
    let report = pipeline.await.context("replay pipeline")??;
    watched?;
    Ok(report)
}

/// Commits `offsets` for `config.group` (a group with no member: its start).
async fn commit(config: &Config, offsets: &Offsets) -> anyhow::Result<()> {
    let (client, topic, offsets) = (Arc::new(consumer(config, &config.group)?), config.topic.clone(), offsets.clone());
    blocking(move || {
        let mut list = TopicPartitionList::new();
        for (p, o) in &offsets {
            list.add_partition_offset(&topic, *p, Offset::Offset(*o))?;
        }
        client.commit(&list, CommitMode::Sync).context("committing the replay's start offsets")?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_needing_expired_records_is_refused() {
        let retained: BTreeMap<i32, Retained> =
            [(0, Retained { low: 0, high: 10 }), (1, Retained { low: 5, high: 9 })].into_iter().collect();
        let err = require_retained(&retained, &Start::Earliest).expect_err("partition 1 lost records");
        assert!(err.to_string().contains("partition 1 starts at offset 5"), "{err}");
        assert!(require_retained(&retained, &Start::At([(0, 0), (1, 5)].into_iter().collect())).is_ok());
        assert!(require_retained(&retained, &Start::At([(1, 4)].into_iter().collect())).is_err());
    }
}
