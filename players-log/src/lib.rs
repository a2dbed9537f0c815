//! The player registry kept outside Redis (docs/contract.md#players-erasure-and-bans:
//! erasures and bans survive restore and rebuild).
//!
//! The registry lives in Redis (`leaderboard_store::marker::registry`), where
//! writers read it with every batch. A store can lose it with its data: a
//! wipe, a node restarted from an older file. So every change is also kept in
//! a **compacted** Kafka topic (`scores.players` by default), one record per
//! change, keyed by the player id, whose value is the player's marks after
//! the change (`{"erased_at_ms": ..., "ban": {...}}`; a tombstone when a
//! lifted ban leaves nothing). Compaction keeps the newest record per player,
//! so the topic stays as large as the registry.
//!
//! - [`publish`]: after an erasure, a ban or a lifted ban, the eraser (the
//!   api's admin route, `lb-admin`) writes the player's marks as Redis holds
//!   them, and the change is acknowledged only once the broker has them on
//!   every in-sync replica.
//! - [`read`]: recovery (`lb-admin restore`, `rebuild`, `catch-up`) reads the
//!   whole topic back and gives the store what its registry lacks
//!   ([`leaderboard_store::Router::give_back_registry`]) before it loads or
//!   replays anything.
//!
//! - [`PlayersLog::ensure_topic`]: the topic, created compacted when missing.
//!
//! A `manual` board's resets are kept there too, under `resets/<board>` (no
//! player id nor board name holds a `/`): its newest season starts after each
//! reset ([`publish::Publisher::publish_resets`]), a tombstone once the board
//! is deleted, so a restore or a rebuild knows where its seasons end
//! ([`leaderboard_store::board::manual`]).
//!
//! The topic holds ids, times and ban reasons, never a score or `meta`. Its
//! flags (`--players-topic`, `--players-log-timeout`) are
//! `leaderboard_runtime::PlayersLogArgs`, shared by the api and `lb-admin`.

pub mod publish;
pub mod read;
mod topic;

use std::time::Duration;

use rdkafka::ClientConfig;

/// The key prefix of a `manual` board's resets in the log.
pub const RESETS_PREFIX: &str = "resets/";

/// How long a write to the log may take, by default, before the change is reported as not kept.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the players log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker refused or did not answer in time.
    #[error("players log {topic}: {source}")]
    Kafka {
        /// The topic.
        topic: String,
        /// What the client said.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Redis failed while the marks were read or given back.
    #[error(transparent)]
    Store(#[from] leaderboard_store::Error),
    /// The player's marks kept changing while they were written (other erasers at work).
    #[error("players log: the marks of a player kept changing while they were written; run it again")]
    Changing,
    /// A record of the log is not what this service writes.
    #[error("players log {topic}: partition {partition} offset {offset}: {reason}")]
    Corrupt {
        /// The topic.
        topic: String,
        /// Where.
        partition: i32,
        /// Where.
        offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// A blocking Kafka call's thread failed.
    #[error("players log: a Kafka call's thread failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Results of the players log.
pub type Result<T> = std::result::Result<T, Error>;

/// The log: a topic on some brokers, with the client settings every Kafka client of the process uses.
#[derive(Debug, Clone)]
pub struct PlayersLog {
    brokers: String,
    settings: Vec<(String, String)>,
    topic: String,
    timeout: Duration,
}

impl PlayersLog {
    /// The log on `topic` at `brokers`, with extra librdkafka `settings` (TLS, SASL).
    pub fn new(brokers: impl Into<String>, settings: Vec<(String, String)>, topic: impl Into<String>) -> Self {
        Self { brokers: brokers.into(), settings, topic: topic.into(), timeout: PUBLISH_TIMEOUT }
    }

    /// The log with a write timeout other than [`PUBLISH_TIMEOUT`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// A client configuration with the process's settings.
    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.settings {
            config.set(k, v);
        }
        config
    }

    fn kafka(&self, source: rdkafka::error::KafkaError) -> Error {
        Error::Kafka { topic: self.topic.clone(), source }
    }
}
