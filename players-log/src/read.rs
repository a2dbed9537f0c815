//! Reading the whole log back, for recovery.
//!
//! Memory: every player the log names is held at once (the id, a time, a ban
//! of at most 100 boards and a 256-character reason; about 100 bytes for an
//! erasure), so a log of a million erasures takes about 100 MB while it is
//! given back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use leaderboard_contract::PlayerId;
use leaderboard_store::marker::registry::PlayerMarks;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::{Error, PlayersLog, Result};

/// How long one broker request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the read may go without a record before it gives up.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

impl PlayersLog {
    /// Every player the log marks, with their newest marks; `None` when the
    /// topic does not exist (a deployment that does not keep the log).
    ///
    /// # Errors
    /// [`Error::Kafka`] when the broker fails or stalls; [`Error::Corrupt`] for a record this
    /// service did not write.
    pub async fn read_all(&self) -> Result<Option<Vec<(PlayerId, PlayerMarks)>>> {
        let log = self.clone();
        tokio::task::spawn_blocking(move || log.read_blocking()).await?
    }

    fn read_blocking(&self) -> Result<Option<Vec<(PlayerId, PlayerMarks)>>> {
        let mut config = self.client();
        // No offsets are committed: the group id only satisfies the client.
        config.set("group.id", format!("players-log-reader.{}", std::process::id())).set("enable.auto.commit", "false");
        let consumer: BaseConsumer = config.create().map_err(|e| self.kafka(e))?;
        let metadata = consumer.fetch_metadata(Some(&self.topic), REQUEST_TIMEOUT).map_err(|e| self.kafka(e))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .flat_map(rdkafka::metadata::MetadataTopic::partitions)
            .map(rdkafka::metadata::MetadataPartition::id)
            .collect();
        if partitions.is_empty() {
            return Ok(None);
        }
        // Read each partition from its start to the end it has now.
        let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for partition in partitions {
            let (low, high) =
                consumer.fetch_watermarks(&self.topic, partition, REQUEST_TIMEOUT).map_err(|e| self.kafka(e))?;
            if high > low {
                ends.insert(partition, high);
                assignment
                    .add_partition_offset(&self.topic, partition, Offset::Beginning)
                    .map_err(|e| self.kafka(e))?;
            }
        }
        let mut marks: BTreeMap<PlayerId, PlayerMarks> = BTreeMap::new();
        if ends.is_empty() {
            return Ok(Some(Vec::new()));
        }
        consumer.assign(&assignment).map_err(|e| self.kafka(e))?;
        let mut last_progress = Instant::now();
        while !ends.is_empty() {
            let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                if last_progress.elapsed() > STALL_TIMEOUT {
                    return Err(self.kafka(rdkafka::error::KafkaError::MessageConsumption(
                        rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                    )));
                }
                continue;
            };
            let message = message.map_err(|e| self.kafka(e))?;
            last_progress = Instant::now();
            let (partition, offset) = (message.partition(), message.offset());
            let corrupt = |reason: String| Error::Corrupt { topic: self.topic.clone(), partition, offset, reason };
            let key = message.key().ok_or_else(|| corrupt("a record without a key".into()))?;
            let player = std::str::from_utf8(key)
                .ok()
                .and_then(|k| PlayerId::new(k).ok())
                .ok_or_else(|| corrupt("a key that is not a player id".into()))?;
            match message.payload() {
                None => {
                    marks.remove(&player);
                }
                Some(value) => {
                    let m: PlayerMarks = serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
                    marks.insert(player, m);
                }
            }
            if ends.get(&partition).is_some_and(|&end| offset + 1 >= end) {
                ends.remove(&partition);
            }
        }
        Ok(Some(marks.into_iter().collect()))
    }
}
