//! Giving a store being recovered the erasures and bans the players log
//! keeps (`leaderboard_players_log`), before anything is loaded or replayed:
//! a wiped or rolled-back store lost its registry with its data, and without
//! it a replay would apply an erased player's records again and a restore
//! would load their rows.

use anyhow::Context as _;
use serde::Serialize;

use super::KafkaArgs;
use crate::board::player_router;
use crate::players_log::players_log;
use leaderboard_store::Store;

/// What the players log gave the store.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PlayersGivenBack {
    /// The log's topic.
    pub topic: String,
    /// Whether the topic exists (a deployment without the log has none).
    pub found: bool,
    /// Players the log names.
    pub players: u64,
    /// Erasures the store lacked, given back (the players taken out again).
    pub erasures: u64,
    /// Bans the store lacked, given back (the players taken off the boards again).
    pub bans: u64,
}

/// Reads the players log whole and gives `store` what its registry lacks.
///
/// # Errors
/// The broker failing, a record this service did not write, or Redis failing.
pub(super) async fn give_back(store: &Store, kafka: &KafkaArgs) -> anyhow::Result<PlayersGivenBack> {
    let log = players_log(&kafka.brokers, &kafka.kafka_options, &kafka.players_log)?;
    let mut report = PlayersGivenBack { topic: log.topic().to_string(), ..PlayersGivenBack::default() };
    let Some(marks) = log.read_all().await.context("reading the players log")? else { return Ok(report) };
    report.found = true;
    report.players = marks.len() as u64;
    let gave = player_router(store).give_back_registry(&marks).await.context("giving the registry back")?;
    report.erasures = gave.erasures;
    report.bans = gave.bans;
    Ok(report)
}
