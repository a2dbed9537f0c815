//! `lb-admin erase <player>`: erases a player (a GDPR request): their scores
//! leave every board and season, closed ones included, and their records
//! stamped before now are never applied again (`docs/players.md`).

use std::io::Write;

use leaderboard_contract::PlayerId;
use leaderboard_store::players::remove::Removed;
use serde::Serialize;

use super::Context;
use crate::board::player_router;
use crate::output::Output;

/// The arguments of `erase`.
#[derive(Debug, clap::Args)]
pub struct Erase {
    /// The player.
    pub(super) player: String,
    /// Where the players log is.
    #[command(flatten)]
    keep: crate::players_log::KeepArgs,
}

/// What `erase` and `ban` took a player out of, as they print it.
#[derive(Debug, Serialize)]
pub(super) struct RemovedReport {
    /// The player.
    pub(super) player: String,
    /// When the player was erased (`erase`), in milliseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) erased_at_ms: Option<i64>,
    /// Boards and seasons the player was taken out of.
    pub(super) boards: Vec<String>,
    /// Closed seasons among them, now amended.
    pub(super) amended: Vec<String>,
}

impl RemovedReport {
    pub(super) fn new(player: &PlayerId, removed: &Removed, erased_at_ms: Option<i64>) -> Self {
        Self {
            player: player.to_string(),
            erased_at_ms,
            boards: removed.boards.iter().map(ToString::to_string).collect(),
            amended: removed.amended.iter().map(ToString::to_string).collect(),
        }
    }

    /// Prints the report: one JSON document, or lines of text.
    pub(super) fn print(&self, what: &str, out: &mut Output<impl Write>) -> anyhow::Result<()> {
        if out.json {
            return out.document(self);
        }
        writeln!(out, "{}: {what}, out of {} boards and seasons", self.player, self.boards.len())?;
        for board in &self.boards {
            let amended = if self.amended.contains(board) { " (closed: amended)" } else { "" };
            writeln!(out, "  {board}{amended}")?;
        }
        Ok(())
    }
}

/// Erases the player.
pub(crate) async fn run(args: Erase, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let player = PlayerId::new(args.player)?;
    let erased = player_router(ctx.store).erase_player(&player).await?;
    args.keep.keep(ctx.store, &player).await?;
    RemovedReport::new(&player, &erased.removed, Some(erased.at_ms)).print("erased", out)
}
