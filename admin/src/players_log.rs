//! The players log from `lb-admin`: the commands that change the registry
//! (`erase`, `ban`, `unban`) keep each change there as the api does, and the
//! recovery commands give a store that lost its registry what the log holds
//! (`leaderboard_players_log`, docs/players.md).

use anyhow::Context as _;
use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_players_log::PlayersLog;
use leaderboard_runtime::{KafkaOptionsArgs, PlayersLogArgs};
use leaderboard_store::Store;

/// Where the players log is, for `erase`, `ban` and `unban`: the same flags and variables as the api's.
#[derive(Debug, Clone, clap::Args)]
pub struct KeepArgs {
    /// Kafka bootstrap servers of the players log. Unset: the change is kept in Redis only, and a
    /// store that loses its data forgets it (said on stderr).
    #[arg(long, env = "LB_KAFKA_BROKERS")]
    brokers: Option<String>,
    /// Extra librdkafka settings (TLS, SASL).
    #[command(flatten)]
    kafka: leaderboard_runtime::KafkaOptionsArgs,
    /// The players log's topic.
    #[command(flatten)]
    log: PlayersLogArgs,
}

impl KeepArgs {
    /// Writes `player`'s marks, as `store` holds them now, to the players log (when one is given).
    ///
    /// # Errors
    /// The log not taking them: the change is in effect, and running the command again keeps it.
    pub(crate) async fn keep(&self, store: &Store, player: &PlayerId) -> anyhow::Result<()> {
        let Some(brokers) = &self.brokers else {
            eprintln!(
                "warning: no --brokers (LB_KAFKA_BROKERS): the change is kept in Redis only, and a store that loses \
                 its data forgets it"
            );
            return Ok(());
        };
        let log = players_log(brokers, &self.kafka, &self.log);
        log.publisher()?.publish(store, player).await.with_context(|| {
            format!(
                "the change is in effect, but the players log ({}) did not keep it: run the command again",
                log.topic()
            )
        })
    }
}

impl KeepArgs {
    /// Writes the `manual` board `board`'s resets, as `store` holds them now, to the players log
    /// (when one is given; a tombstone once the board has none).
    ///
    /// # Errors
    /// The log not taking them: the change is in effect, and the next reset writes them whole.
    pub(crate) async fn keep_resets(&self, store: &Store, board: &BoardId) -> anyhow::Result<()> {
        let Some(brokers) = &self.brokers else {
            eprintln!(
                "warning: no --brokers (LB_KAFKA_BROKERS): the resets are kept in Redis only, and a store that loses \
                 its data forgets those its snapshots predate"
            );
            return Ok(());
        };
        let log = players_log(brokers, &self.kafka, &self.log);
        log.publisher()?.publish_resets(store, board).await.with_context(|| {
            format!(
                "the change is in effect, but the players log ({}) did not keep the board's resets: run `lb-admin reset \
                 {board} --ending <the season it ended>` to write them",
                log.topic()
            )
        })
    }
}

/// The players log at `brokers` with the `--kafka-options` settings.
pub(crate) fn players_log(brokers: &str, kafka: &KafkaOptionsArgs, args: &PlayersLogArgs) -> PlayersLog {
    let settings = kafka.settings().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    PlayersLog::new(brokers, settings, args.players_topic.clone()).with_timeout(args.players_log_timeout)
}
