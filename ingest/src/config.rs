//! Configuration of an ingest worker, from flags and environment variables.
//!
//! # Memory bound
//! A worker's resident memory is bounded by the sum of:
//! - `--max-buffered-bytes` (64 MiB): records between the consumer and the
//!   end of their batch, each charged its key, value and 128 bytes;
//! - `--kafka-queue-bytes` (32 MiB): librdkafka's prefetched records;
//! - `--kafka-fetch-bytes` (16 MiB): one fetch response being received (a
//!   single record batch larger than that still arrives whole, so the topic's
//!   `max.message.bytes`, 1 MiB by default, is the floor);
//! - `--dlq-queue-bytes` (32 MiB): dead letters waiting in the producer;
//! - the best-score cache: `--cache-capacity` entries of about 150 bytes
//!   (2,000,000 by default: ~300 MB; 0 turns it off);
//! - the process itself: runtime, TLS, metrics, allocator slack (~50 MB).
//!
//! So about 200 MB without the cache, whatever the records' sizes: the fault
//! tests hold a worker fed 900 KB records under 512 MB.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use leaderboard_runtime::KafkaOption;
use leaderboard_store::{LayoutSpec, RedisTarget};

/// An ingest worker: consumes score events from Kafka and applies them to Redis.
#[derive(Debug, Clone, Parser)]
#[command(name = "ingest", version, about)]
pub struct Config {
    /// Kafka bootstrap servers.
    #[arg(long, env = "LB_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic carrying score events.
    #[arg(long, env = "LB_TOPIC", default_value = leaderboard_contract::SCORES_TOPIC)]
    pub topic: String,
    /// Topic receiving malformed records.
    #[arg(long, env = "LB_DLQ_TOPIC", default_value = leaderboard_contract::DEAD_LETTER_TOPIC)]
    pub dlq_topic: String,
    /// Consumer group shared by all ingest workers.
    #[arg(long, env = "LB_INGEST_GROUP", default_value = "leaderboard-ingest")]
    pub group: String,
    /// Redis, the layout of boards, and the size refresh of `range` boards.
    #[command(flatten)]
    pub store: leaderboard_runtime::StoreArgs,
    /// Most events per Redis write batch.
    #[arg(long, env = "LB_INGEST_BATCH_SIZE", default_value_t = 5000)]
    pub batch_size: usize,
    /// Longest wait for a batch to fill before it is written anyway.
    #[arg(long, env = "LB_INGEST_LINGER", default_value = "10ms", value_parser = humantime::parse_duration)]
    pub linger: Duration,
    /// How long shutdown and partition revocation wait for in-flight batches.
    #[arg(long, env = "LB_INGEST_DRAIN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Kafka consumer session timeout; must exceed the drain timeout.
    #[arg(long, env = "LB_INGEST_SESSION_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub session_timeout: Duration,
    /// How long consumption may stay blocked by a slow Redis before partitions are
    /// paused (polling then continues, keeping group membership through long outages).
    #[arg(long, env = "LB_INGEST_PAUSE_AFTER", default_value = "5s", value_parser = humantime::parse_duration)]
    pub pause_after: Duration,
    /// (board, player) entries whose best score is cached to skip non-improving events
    /// (0 disables the cache). Cold entries are evicted when it is full.
    #[arg(long, env = "LB_INGEST_CACHE_CAPACITY", default_value_t = 2_000_000)]
    pub cache_capacity: usize,
    /// How long a cached best score is trusted: bounds how long a loss of data in Redis
    /// that this worker cannot see (a failover, a flush) keeps scores from being restored.
    #[arg(long, env = "LB_INGEST_CACHE_TTL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub cache_ttl: Duration,
    /// The signature policy.
    #[command(flatten)]
    pub signatures: Signatures,
    /// Bytes of records between the consumer and the end of their batch (the pipeline's budget).
    #[arg(long, env = "LB_INGEST_MAX_BUFFERED_BYTES", default_value_t = 64 << 20)]
    pub max_buffered_bytes: usize,
    /// Bytes of records librdkafka may prefetch (`queued.max.messages.kbytes`).
    #[arg(long, env = "LB_INGEST_KAFKA_QUEUE_BYTES", default_value_t = 32 << 20)]
    pub kafka_queue_bytes: usize,
    /// Largest fetch response (`fetch.max.bytes`); one record larger than this still arrives.
    #[arg(long, env = "LB_INGEST_KAFKA_FETCH_BYTES", default_value_t = 16 << 20)]
    pub kafka_fetch_bytes: usize,
    /// Largest dead letter sent whole; larger ones keep prefixes of key and value.
    /// Keep it at or below the dead-letter topic's `max.message.bytes`.
    #[arg(long, env = "LB_DLQ_MAX_BYTES", default_value_t = 1_000_000)]
    pub dlq_max_bytes: usize,
    /// Bytes of key and of value a cut dead letter keeps.
    #[arg(long, env = "LB_DLQ_PREFIX_BYTES", default_value_t = 64 * 1024)]
    pub dlq_prefix_bytes: usize,
    /// Bytes of dead letters waiting in the producer (`queue.buffering.max.kbytes`).
    #[arg(long, env = "LB_DLQ_QUEUE_BYTES", default_value_t = 32 << 20)]
    pub dlq_queue_bytes: usize,
    /// Replicas that must acknowledge a batch (`WAIT`) before its offsets are stored: `all`
    /// (every replica connected to the primary at that moment, 0 without replicas), or a
    /// number (always that many: writes block, visibly, while fewer are connected).
    #[arg(long, env = "LB_INGEST_WAIT_REPLICAS", default_value = "all")]
    pub wait_replicas: WaitReplicas,
    /// The fewest replicas a batch must reach, whatever `--wait-replicas` counts (Kafka's
    /// `min.insync.replicas` to its `acks=all`). With `all` and 0, a primary whose replicas are
    /// all disconnected acknowledges alone, and a failover to one of them loses those batches;
    /// 1 makes writes wait, visibly, until a replica is back instead.
    #[arg(long, env = "LB_INGEST_MIN_REPLICAS", default_value_t = 0)]
    pub min_replicas: u32,
    /// Longest `WAIT` for the replicas; a batch not acknowledged in time is written and waited for again.
    #[arg(long, env = "LB_INGEST_WAIT_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub wait_timeout: Duration,
    /// How often the worker checks every board with a reset for seasons to close.
    #[arg(long, env = "LB_SEASON_CHECK", default_value = "1s", value_parser = humantime::parse_duration)]
    pub season_check: Duration,
    /// Topic a closed season's result is produced to (docs/contract.md#season-results).
    #[arg(long, env = "LB_SEASON_RESULTS_TOPIC", default_value = leaderboard_contract::SEASON_RESULTS_TOPIC)]
    pub season_results_topic: String,
    /// Rows of a season's result (1..=1000).
    #[arg(long, env = "LB_SEASON_RESULTS_TOP", default_value_t = leaderboard_semantics::season_result::DEFAULT_RESULT_TOP)]
    pub season_results_top: usize,
    /// How often the worker publishes what it has applied (the watermark behind the api's `as_of`).
    #[arg(long, env = "LB_WATERMARK_INTERVAL", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub watermark_interval: Duration,
    /// How late a record may reach the broker after its timestamp (producer batching, retries,
    /// clock skew). Claims are this much older than what the worker has seen, so a record that
    /// arrives later than this may be missing from answers dated after its timestamp.
    #[arg(long, env = "LB_WATERMARK_LATENESS", default_value = "1s", value_parser = humantime::parse_duration)]
    pub watermark_lateness: Duration,
    /// A worker with work that made no progress for this long is stalled:
    /// `/readyz` fails, and `/healthz` too unless a failing dependency explains it.
    #[arg(long, env = "LB_INGEST_STALL_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub stall_timeout: Duration,
    /// First retry delay after a failed Redis or dead-letter write.
    #[arg(long, env = "LB_INGEST_BACKOFF_MIN", default_value = "50ms", value_parser = humantime::parse_duration)]
    pub backoff_min: Duration,
    /// Longest retry delay.
    #[arg(long, env = "LB_INGEST_BACKOFF_MAX", default_value = "5s", value_parser = humantime::parse_duration)]
    pub backoff_max: Duration,
    /// Address of the Prometheus `/metrics` and `/healthz` endpoint.
    #[arg(long, env = "LB_INGEST_METRICS_ADDR", default_value = "127.0.0.1:9101")]
    pub metrics_addr: SocketAddr,
    /// How often an idle worker checks that Redis still holds its data (the store's epoch,
    /// see `ingest::loss`); a busy worker checks after every batch as well.
    #[arg(long, env = "LB_LOSS_CHECK", default_value = "1s", value_parser = humantime::parse_duration)]
    pub loss_check: Duration,
    /// Set by `lb-admin` when it runs the pipeline as a recovery's replay, never by a flag.
    #[arg(skip)]
    pub replay: Option<Replay>,
    /// Extra librdkafka settings as `key=value`, repeatable (e.g. `security.protocol=SASL_SSL`).
    /// From the environment: comma-separated.
    #[arg(long = "kafka-options", alias = "kafka-option", env = "LB_KAFKA_OPTIONS", value_delimiter = ',', value_parser = KafkaOption::parse, hide_env_values = true)]
    pub kafka_options: Vec<KafkaOption>,
}

/// The signature policy of signed events (docs/contract.md#signed-events): the
/// same flags and variables for ingest and for `lb-admin`'s replays, which
/// must judge records as the live workers did.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Signatures {
    /// Producer keys whose signatures ingest accepts, as `key-id:hex-secret`, comma-separated
    /// (several at once, to rotate). With keys, a record that carries signature headers must
    /// verify (else dead letter `bad_signature`); see `--require-signatures`.
    #[arg(long, env = "LB_PRODUCER_KEYS", value_delimiter = ',', hide_env_values = true,
          value_parser = leaderboard_contract::signature::ProducerKey::parse)]
    pub producer_keys: Vec<leaderboard_contract::signature::ProducerKey>,
    /// Refuse records without signature headers (dead letter `unsigned`); needs `--producer-keys`.
    #[arg(long, env = "LB_REQUIRE_SIGNATURES")]
    pub require_signatures: bool,
}

impl Signatures {
    /// The verifier of this policy; a replay's refuses what it cannot judge
    /// ([`leaderboard_contract::signature::Verifier::for_replay`]).
    ///
    /// # Errors
    /// Signing required without a key, or two keys with one id.
    pub fn verifier(&self, replay: bool) -> Result<leaderboard_contract::signature::Verifier, String> {
        let verifier =
            leaderboard_contract::signature::Verifier::new(self.producer_keys.clone(), self.require_signatures)?;
        Ok(if replay { verifier.for_replay() } else { verifier })
    }
}

/// A recovery's replay (`lb-admin restore` and `rebuild`): the pipeline
/// re-applies events into a store being recovered. It writes no dead letters
/// (the live workers wrote them when the records first came), publishes no
/// watermark, closes no season, does not check the store's epoch (recovery
/// installs it when done), judges seasons' lateness by arrival
/// ([`crate::prepare::prepare`]) as the live workers do, and verifies
/// signatures as they did: a record signed with a key the replay lacks is
/// refused and counted ([`crate::Report::unverifiable`]), and the recovery fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    /// The boards whose events are applied; every board when empty.
    pub boards: std::collections::HashSet<leaderboard_contract::BoardId>,
}

impl Replay {
    /// Whether `board`'s events are applied.
    pub fn covers(&self, board: &leaderboard_contract::BoardId) -> bool {
        self.boards.is_empty() || self.boards.contains(board)
    }
}

/// How many replicas must acknowledge a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReplicas {
    /// Every replica connected to the primary at the time of the write.
    All,
    /// Exactly this many.
    Count(u32),
}

impl std::str::FromStr for WaitReplicas {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        s.parse().map(Self::Count).map_err(|_| format!("expected `all` or a number of replicas, got {s:?}"))
    }
}

/// A configuration rule that does not hold.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layout does not parse.
    #[error("--layout: {0}")]
    Layout(#[from] leaderboard_store::Error),
    /// A cross-field or range rule.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Checks the rules that span fields and returns the parsed layout and Redis target.
    ///
    /// # Errors
    /// [`ConfigError`] naming the broken rule.
    pub fn validate(&self) -> Result<(LayoutSpec, RedisTarget), ConfigError> {
        let layout: LayoutSpec = self.store.layout()?;
        let target = self.store.target()?;
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return Err(ConfigError::Invalid("--batch-size must be 1..=100000".into()));
        }
        self.signatures.verifier(false).map_err(ConfigError::Invalid)?;
        if self.drain_timeout >= self.session_timeout {
            return Err(ConfigError::Invalid(format!(
                "--drain-timeout ({}) must be shorter than --session-timeout ({}), or a slow drain \
                 during a rebalance would get this worker evicted from the group",
                humantime::format_duration(self.drain_timeout),
                humantime::format_duration(self.session_timeout)
            )));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(60)).contains(&self.season_check) {
            return Err(ConfigError::Invalid("--season-check must be 10ms..=60s".into()));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(10)).contains(&self.watermark_interval) {
            return Err(ConfigError::Invalid("--watermark-interval must be 10ms..=10s".into()));
        }
        if self.watermark_lateness > Duration::from_secs(3600) {
            return Err(ConfigError::Invalid("--watermark-lateness must be at most 1h".into()));
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return Err(ConfigError::Invalid("--backoff-min must be > 0 and <= --backoff-max".into()));
        }
        if !(1 << 20..=1 << 31).contains(&self.max_buffered_bytes) {
            return Err(ConfigError::Invalid("--max-buffered-bytes must be 1 MiB..=2 GiB".into()));
        }
        if self.kafka_queue_bytes < 1 << 20 || self.kafka_fetch_bytes < 1 << 20 || self.dlq_queue_bytes < 1 << 20 {
            return Err(ConfigError::Invalid(
                "--kafka-queue-bytes, --kafka-fetch-bytes and --dlq-queue-bytes must be at least 1 MiB".into(),
            ));
        }
        let top = self.season_results_top;
        if !(1..=leaderboard_semantics::season_result::MAX_RESULT_TOP).contains(&top) {
            return Err(ConfigError::Invalid("--season-results-top must be 1..=1000".into()));
        }
        // Results go through the dead-letter producer: its largest message must hold one.
        if leaderboard_semantics::season_result::max_bytes(top) > self.dlq_max_bytes + 64 * 1024 {
            return Err(ConfigError::Invalid(format!(
                "--dlq-max-bytes + 64 KiB must hold a season result of --season-results-top {top} rows ({} bytes)",
                leaderboard_semantics::season_result::max_bytes(top)
            )));
        }
        if self.dlq_prefix_bytes * 2 + 64 * 1024 > self.dlq_max_bytes {
            return Err(ConfigError::Invalid(
                "--dlq-prefix-bytes must leave room in --dlq-max-bytes for two prefixes and the headers \
                 (2 x prefix + 64 KiB <= max)"
                    .into(),
            ));
        }
        if self.stall_timeout <= self.drain_timeout {
            return Err(ConfigError::Invalid("--stall-timeout must be longer than --drain-timeout".into()));
        }
        if self.topic == self.dlq_topic {
            return Err(ConfigError::Invalid("--topic and --dlq-topic must differ".into()));
        }
        for (key, _) in self.kafka_settings() {
            if PROTECTED_KAFKA_KEYS.contains(&key) {
                return Err(ConfigError::Invalid(format!(
                    "--kafka-options {key} is set by ingest itself (it guards at-least-once delivery)"
                )));
            }
        }
        Ok((layout, target))
    }
}

impl Config {
    /// Whether the consumer group uses the KIP-848 protocol (`group.protocol=consumer`).
    pub fn uses_consumer_protocol(&self) -> bool {
        self.kafka_settings().any(|(k, v)| k == "group.protocol" && v.eq_ignore_ascii_case("consumer"))
    }

    /// The dead letters' size limits.
    pub fn dead_letter_limits(&self) -> crate::dead_letter::Limits {
        crate::dead_letter::Limits { max_record_bytes: self.dlq_max_bytes, prefix_bytes: self.dlq_prefix_bytes }
    }

    /// The extra librdkafka settings, without empty items.
    pub fn kafka_settings(&self) -> impl Iterator<Item = (&str, &str)> {
        KafkaOption::settings(&self.kafka_options)
    }
}

/// librdkafka settings that ingest owns: overriding them would break at-least-once delivery.
pub const PROTECTED_KAFKA_KEYS: [&str; 4] =
    ["enable.auto.offset.store", "group.id", "enable.auto.commit", "isolation.level"];

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("ingest").chain(args.iter().copied())).expect("parses")
    }

    #[test]
    fn defaults_are_valid() {
        let (layout, _) = parse(&[]).validate().expect("valid");
        assert_eq!(layout, LayoutSpec::Single);
    }

    #[test]
    fn drain_must_be_shorter_than_session() {
        let err = parse(&["--drain-timeout", "40s"]).validate().expect_err("invalid");
        assert!(err.to_string().contains("--drain-timeout"), "{err}");
    }

    #[test]
    fn rejects_bad_values() {
        assert!(parse(&["--layout", "hash:0"]).validate().is_err());
        assert!(parse(&["--batch-size", "0"]).validate().is_err());
        assert!(parse(&["--dlq-topic", "scores"]).validate().is_err());
        assert!(parse(&["--kafka-option", "enable.auto.offset.store=true"]).validate().is_err());
        assert!(parse(&["--dlq-prefix-bytes", "600000"]).validate().is_err());
        assert!(parse(&["--max-buffered-bytes", "1000"]).validate().is_err());
        assert!(parse(&["--stall-timeout", "5s"]).validate().is_err());
        assert!(parse(&["--kafka-option", "group.protocol=consumer"]).uses_consumer_protocol());
        assert_eq!(parse(&["--wait-replicas", "2"]).wait_replicas, WaitReplicas::Count(2));
        assert_eq!(parse(&[]).wait_replicas, WaitReplicas::All);
        assert_eq!(parse(&[]).min_replicas, 0);
        assert_eq!(parse(&["--min-replicas", "1"]).min_replicas, 1);
        assert!(Config::try_parse_from(["ingest", "--wait-replicas", "many"]).is_err());
        assert!(Config::try_parse_from(["ingest", "--kafka-option", "novalue"]).is_err());
        assert!(Config::try_parse_from(["ingest", "--linger", "soon"]).is_err());
    }

    #[test]
    fn passes_kafka_options_through() {
        let c = parse(&["--kafka-option", "security.protocol=SASL_SSL", "--kafka-option", "sasl.mechanism=PLAIN"]);
        let settings: Vec<(&str, &str)> = c.kafka_settings().collect();
        assert_eq!(settings, [("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN")]);
        assert_eq!(parse(&["--kafka-option", ""]).kafka_settings().count(), 0, "empty means none");
        // `--kafka-options` is the name (as LB_KAFKA_OPTIONS); `--kafka-option` stays as an alias.
        let c = parse(&["--kafka-options", "security.protocol=SSL"]);
        assert_eq!(c.kafka_settings().collect::<Vec<_>>(), [("security.protocol", "SSL")]);
    }
}
