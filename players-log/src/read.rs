//! Reading the whole log back, for recovery.
//!
//! Memory: every player the log names is held at once (the id, a time, a ban
//! of at most 100 boards and a 256-character reason; about 100 bytes for an
//! erasure), so a log of a million erasures takes about 100 MB while it is
//! given back; and each `manual` board's newest season starts (at most
//! [`crate::publish::LOGGED_STARTS`], about 40 bytes each).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_store::board::manual::SeasonStart;
use leaderboard_store::marker::registry::PlayerMarks;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::{Error, PlayersLog, RESETS_PREFIX, Result};

/// Everything the log keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// Every player the log marks, with their newest marks.
    pub players: Vec<(PlayerId, PlayerMarks)>,
    /// Every `manual` board the log has resets of, with its newest season starts, oldest first.
    pub resets: Vec<(BoardId, Vec<SeasonStart>)>,
}

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
        Ok(self.read_contents().await?.map(|contents| contents.players))
    }

    /// Everything the log keeps: the players' marks and the `manual` boards'
    /// resets; `None` when the topic does not exist.
    ///
    /// # Errors
    /// As [`PlayersLog::read_all`].
    pub async fn read_contents(&self) -> Result<Option<Contents>> {
        let log = self.clone();
        tokio::task::spawn_blocking(move || log.read_blocking()).await?
    }

    fn read_blocking(&self) -> Result<Option<Contents>> {
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
        let mut resets: BTreeMap<BoardId, Vec<SeasonStart>> = BTreeMap::new();
        if ends.is_empty() {
            return Ok(Some(Contents::default()));
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
            let key = std::str::from_utf8(key).map_err(|_| corrupt("a key that is not UTF-8".into()))?;
            if let Some(board) = key.strip_prefix(RESETS_PREFIX) {
                let board = BoardId::new(board).map_err(|_| corrupt("a resets key that names no board".into()))?;
                match message.payload() {
                    None => {
                        resets.remove(&board);
                    }
                    Some(value) => {
                        let kept: crate::publish::KeptResets =
                            serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
                        resets.insert(board, kept.starts);
                    }
                }
            } else {
                let player = PlayerId::new(key).map_err(|_| corrupt("a key that is not a player id".into()))?;
                match message.payload() {
                    None => {
                        marks.remove(&player);
                    }
                    Some(value) => {
                        let m: PlayerMarks = serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
                        marks.insert(player, m);
                    }
                }
            }
            if ends.get(&partition).is_some_and(|&end| offset + 1 >= end) {
                ends.remove(&partition);
            }
        }
        Ok(Some(Contents { players: marks.into_iter().collect(), resets: resets.into_iter().collect() }))
    }
}
