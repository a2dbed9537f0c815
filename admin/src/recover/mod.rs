//! Disaster recovery: snapshots, restore, rebuilding from Kafka, and the store's epoch.
//!
//! - `snapshot` reads the ingest group's committed offsets, then scans the
//!   boards into a file ([`crate::snapshot`]).
//! - `restore` loads a file into boards that do not exist (any layout), then
//!   replays the topic from the file's offsets to the end offsets it reads
//!   when the load is done ([`ingest::recovery`]); on a lost store it finally
//!   installs a new epoch, and the paused workers and apis carry on.
//! - `rebuild` replays every retained event into a lost store, refusing if
//!   any has expired, then installs a new epoch.
//! - `catch-up` replays, into a store that went back in time (a rollback,
//!   [`leaderboard_store::marker::applied`]), the topic from the store's own applied
//!   offsets to the end offsets it reads when it starts, then installs a new epoch.
//! - `epoch` shows the store's epoch (and why it was marked lost);
//!   `epoch --adopt` accepts the store as it is (after an upgrade from a
//!   version without epochs, or to give up on lost data knowingly).
//!
//! Each installs its epoch on every copy and returns only once every replica
//! connected at that moment has it (`WAIT`, at most 10 s; otherwise it fails
//! and says so), so a failover right after recovery finds it.
//!
//! The runbook is `docs/operations.md`.
//!
//! # Layout
//! One file per operation: `snapshot`, `restore`, `rebuild`, `catch_up`,
//! `epoch` (also the new epoch every recovery installs and waits for the
//! replicas to take); `replay` holds what restore, rebuild and catch-up share:
//! the replay's pipeline settings, the replay with its progress bar, and the
//! report; `players` gives the store back the erasures and bans the players
//! log keeps, which each of them does before it loads or replays anything.
//! The flags of where the events are ([`KafkaArgs`]) are here.

mod catch_up;
mod epoch;
mod players;
mod rebuild;
mod replay;
mod restore;
mod snapshot;

use std::time::{SystemTime, UNIX_EPOCH};

use leaderboard_store::LayoutSpec;
use leaderboard_store::layout::record::RecordedLayout;

pub use self::catch_up::catch_up;
pub use self::epoch::{EpochReport, epoch_command};
pub use self::rebuild::{RebuildOptions, rebuild};
pub use self::replay::RestoreReport;
pub use self::restore::{RestoreOptions, restore};
pub use self::snapshot::{SnapshotReport, snapshot};
use crate::snapshot::Section;

/// Where the events are: the same flags and environment variables as ingest's.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "LB_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic carrying score events.
    #[arg(long, env = "LB_TOPIC", default_value = leaderboard_contract::SCORES_TOPIC)]
    pub topic: String,
    /// The live ingest workers' consumer group.
    #[arg(long, env = "LB_INGEST_GROUP", default_value = "leaderboard-ingest")]
    pub group: String,
    /// Extra librdkafka settings (TLS, SASL).
    #[command(flatten)]
    pub kafka: leaderboard_runtime::KafkaOptionsArgs,
    /// The players log, whose erasures and bans a recovery gives the store back first.
    #[command(flatten)]
    pub players_log: leaderboard_runtime::PlayersLogArgs,
    /// How the live workers judge signed events, for a replay to judge them alike.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// The live workers' signature policy (the same flags and variables as
/// ingest's), plus the keys retired since records still retained were signed:
/// a replay verifies every record as the live workers did when it came, and
/// fails rather than pass or drop one signed with a key it lacks.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// The live policy: `--producer-keys` (`LB_PRODUCER_KEYS`), `--require-signatures`.
    #[command(flatten)]
    pub signatures: ingest::config::Signatures,
    /// Keys no longer accepted live that signed records the topic still retains, as
    /// `key-id:hex-secret`, comma-separated: keep them here until retention has removed those records.
    #[arg(long, env = "LB_RETIRED_PRODUCER_KEYS", value_delimiter = ',', hide_env_values = true,
          value_parser = leaderboard_contract::signature::ProducerKey::parse)]
    pub retired_producer_keys: Vec<leaderboard_contract::signature::ProducerKey>,
}

impl PolicyArgs {
    /// The policy a replay runs with: every key, current and retired.
    fn for_replay(&self) -> ingest::config::Signatures {
        let mut keys = self.signatures.producer_keys.clone();
        keys.extend(self.retired_producer_keys.iter().cloned());
        ingest::config::Signatures { producer_keys: keys, require_signatures: self.signatures.require_signatures }
    }
}

/// The layout a section's board is restored with: `layout` if given, else the one it had.
fn layout_of(section: &Section, layout: Option<&LayoutSpec>) -> LayoutSpec {
    if let Some(spec) = layout {
        return spec.clone();
    }
    match section.record.layout {
        RecordedLayout::Single => LayoutSpec::Single,
        RecordedLayout::Hash { shards } => LayoutSpec::Hash { shards },
        RecordedLayout::Range => LayoutSpec::Range { boundaries: section.boundaries.clone() },
    }
}

/// Now, in milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
