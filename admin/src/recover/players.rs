//! Giving a store being recovered the erasures and bans the players log
//! keeps (`leaderboard_players_log`), and for `restore` those the snapshot
//! file holds, before anything is loaded or replayed:
//! a wiped or rolled-back store lost its registry with its data, and without
//! it a replay would apply an erased player's records again and a restore
//! would load their rows. Then, once the boards exist and before the replay,
//! the `manual` boards' resets the log keeps ([`give_back_resets`]): without
//! them a replay would put the events after a reset the snapshot predates in
//! the season that reset ended.

use anyhow::Context as _;
use serde::Serialize;

use super::KafkaArgs;
use crate::board::player_router;
use crate::players_log::players_log;
use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_store::Store;
use leaderboard_store::board::manual::SeasonStart;
use leaderboard_store::marker::registry::PlayerMarks;

/// What the players log gave the store.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PlayersGivenBack {
    /// The log's topic.
    pub topic: String,
    /// Whether the topic exists (a deployment without the log has none).
    pub found: bool,
    /// Players the log names.
    pub players: u64,
    /// `restore`: players the snapshot file's registry names (given back before the log's).
    pub in_file: u64,
    /// Erasures the store lacked, given back from the file or the log (the players taken out again).
    pub erasures: u64,
    /// Bans the store lacked, given back (the players taken off the boards again).
    pub bans: u64,
    /// `manual` boards the log has resets of.
    pub manual_boards: u64,
    /// Season starts those boards lacked, given back ([`give_back_resets`]).
    pub season_starts: u64,
    /// The resets the log keeps, until [`give_back_resets`] gives them back.
    #[serde(skip)]
    resets: Vec<(BoardId, Vec<SeasonStart>)>,
}

/// Gives `store` what its registry lacks of `in_file` (a snapshot file's registry), then of the
/// players log, read whole.
///
/// # Errors
/// The broker failing, a record this service did not write, or Redis failing.
pub(super) async fn give_back(
    store: &Store,
    kafka: &KafkaArgs,
    in_file: &[(PlayerId, PlayerMarks)],
) -> anyhow::Result<PlayersGivenBack> {
    let router = player_router(store);
    let log = players_log(&kafka.brokers, &kafka.kafka, &kafka.players_log);
    let mut report = PlayersGivenBack {
        topic: log.topic().to_string(),
        in_file: in_file.len() as u64,
        ..PlayersGivenBack::default()
    };
    let from_file = router.give_back_registry(in_file).await.context("giving the file's registry back")?;
    report.erasures = from_file.erasures;
    report.bans = from_file.bans;
    let Some(contents) = log.read_contents().await.context("reading the players log")? else { return Ok(report) };
    report.found = true;
    report.players = contents.players.len() as u64;
    report.manual_boards = contents.resets.len() as u64;
    report.resets = contents.resets;
    let from_log = router.give_back_registry(&contents.players).await.context("giving the log's registry back")?;
    report.erasures += from_log.erasures;
    report.bans += from_log.bans;
    Ok(report)
}

/// Gives each `manual` board of the store the season starts it lacks of those
/// the log kept ([`give_back`] read them): call it once the boards exist (a
/// restore deletes and re-creates them) and before the replay. Boards the
/// store does not have, or that are not `manual` there, are left alone.
///
/// # Errors
/// Redis failing.
pub(super) async fn give_back_resets(store: &Store, report: &mut PlayersGivenBack) -> anyhow::Result<()> {
    for (board, starts) in std::mem::take(&mut report.resets) {
        let Some((router, record)) =
            leaderboard_store::Router::for_board(store, &board, leaderboard_store::RouterOptions::default()).await?
        else {
            continue;
        };
        if record.rules.reset.is_some_and(|r| r.is_manual()) {
            let added = router.give_back_resets(&board, &starts).await.with_context(|| format!("board {board}"))?;
            report.season_starts += added as u64;
        }
    }
    Ok(())
}
