//! Writing a player's marks, or a `manual` board's resets, to the log after a change.

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_store::Store;
use leaderboard_store::board::manual::{self, SeasonStart};
use leaderboard_store::marker::registry::{self, PlayerMarks};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use serde::{Deserialize, Serialize};

use crate::{Error, PlayersLog, Result};

/// Writes before giving up when other erasers keep changing the same player.
const ATTEMPTS: usize = 5;

/// The newest season starts of a `manual` board the log keeps: every season a
/// board can keep (1,000 closed) and the ones not closed yet, with room to spare.
pub const LOGGED_STARTS: usize = 1_100;

/// The value of a `manual` board's record (`resets/<board>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptResets {
    /// The board's newest season starts, oldest first.
    pub starts: Vec<SeasonStart>,
}

/// The log's producer (one per process: it keeps connections to the brokers).
#[derive(Clone)]
pub struct Publisher {
    log: PlayersLog,
    producer: FutureProducer,
    /// Set once the topic is known to exist.
    topic_ready: std::sync::Arc<tokio::sync::OnceCell<()>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("topic", &self.log.topic).finish_non_exhaustive()
    }
}

impl PlayersLog {
    /// The producer that writes to this log.
    ///
    /// # Errors
    /// [`Error::Kafka`] when the client cannot be created (bad settings).
    pub fn publisher(&self) -> Result<Publisher> {
        let mut config = self.client();
        config.set("message.timeout.ms", self.timeout.as_millis().to_string());
        // Set last, so no shared option weakens them: a change is acknowledged only once every
        // in-sync replica holds it, and a retry never writes it twice out of order.
        config.set("acks", "all").set("enable.idempotence", "true");
        let producer = config.create().map_err(|e| self.kafka(e))?;
        Ok(Publisher { log: self.clone(), producer, topic_ready: std::sync::Arc::default() })
    }
}

impl Publisher {
    /// Writes `player`'s marks as `store`'s registry holds them now, and
    /// checks they did not change meanwhile: two erasers writing one player
    /// at once could otherwise leave the older marks last in the topic, which
    /// is what compaction keeps. When they changed, it writes them again.
    ///
    /// # Errors
    /// [`Error::Kafka`] when the broker does not acknowledge within
    /// the log's timeout; [`Error::Store`] when Redis fails; [`Error::Changing`]
    /// when the marks changed at every one of a few attempts.
    pub async fn publish(&self, store: &Store, player: &PlayerId) -> Result<()> {
        let read = || async { Ok(registry::status(store, player).await?.marks()) };
        self.keep_settled(player.as_str(), read, |marks: &PlayerMarks| {
            (!marks.is_empty()).then(|| self.encode(marks)).transpose()
        })
        .await
    }

    /// Writes the `manual` board `board`'s newest season starts as `store`
    /// holds them now under `resets/<board>` (a tombstone when it has none: a
    /// deleted board), checking they did not change meanwhile, as
    /// [`Publisher::publish`] does for a player.
    ///
    /// # Errors
    /// As [`Publisher::publish`].
    pub async fn publish_resets(&self, store: &Store, board: &BoardId) -> Result<()> {
        let key = format!("{}{board}", crate::RESETS_PREFIX);
        let read = || async { Ok(KeptResets { starts: manual::starts(store, board, LOGGED_STARTS).await? }) };
        self.keep_settled(&key, read, |kept: &KeptResets| {
            (!kept.starts.is_empty()).then(|| self.encode(kept)).transpose()
        })
        .await
    }

    /// Writes under `key` the value `read` gives (`payload` encodes it; `None`:
    /// a tombstone), then reads it again and writes again while it changed.
    async fn keep_settled<T, F, Fut>(
        &self,
        key: &str,
        read: F,
        payload: impl Fn(&T) -> Result<Option<Vec<u8>>>,
    ) -> Result<()>
    where
        T: PartialEq,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.topic_ready.get_or_try_init(|| self.topic()).await?;
        let mut held = read().await?;
        for _ in 0..ATTEMPTS {
            self.write(key, payload(&held)?.as_deref()).await?;
            let now = read().await?;
            if now == held {
                return Ok(());
            }
            held = now;
        }
        Err(Error::Changing)
    }

    fn encode(&self, value: &impl Serialize) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| Error::Corrupt {
            topic: self.log.topic.clone(),
            partition: -1,
            offset: -1,
            reason: format!("a value that cannot be written: {e}"),
        })
    }

    /// Makes sure the topic exists: asked on the producer's own connection
    /// first (a short-lived `lb-admin` pays for no second client), created
    /// when the broker does not know it.
    async fn topic(&self) -> Result<()> {
        let (producer, topic, timeout) = (self.producer.clone(), self.log.topic.clone(), self.log.timeout);
        let known = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map(|m| m.topics().iter().any(|t| t.error().is_none() && !t.partitions().is_empty()))
        })
        .await?
        .map_err(|e| self.log.kafka(e))?;
        if known { Ok(()) } else { self.log.ensure_topic().await }
    }

    /// One record under `key`: `payload`, or a tombstone.
    async fn write(&self, key: &str, payload: Option<&[u8]>) -> Result<()> {
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.log.topic).key(key);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Timeout::After(self.log.timeout))
            .await
            .map(|_| ())
            .map_err(|(e, _)| self.log.kafka(e))
    }
}
