//! `lb-admin unban <player>`: lifts a player's ban for future events (what it
//! removed stays removed).

use std::io::Write;

use leaderboard_contract::PlayerId;
use leaderboard_store::marker::registry;

use super::Context;
use crate::output::Output;

/// The arguments of `unban`.
#[derive(Debug, clap::Args)]
pub struct Unban {
    /// The player.
    pub(super) player: String,
    /// Where the players log is.
    #[command(flatten)]
    keep: crate::players_log::KeepArgs,
}

/// Lifts the ban; an error when the player is not banned.
pub(crate) async fn run(args: Unban, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let player = PlayerId::new(args.player)?;
    let lifted = registry::unban(ctx.store, &player).await?;
    // Kept even when there was no ban: a run again after a lift the log did not take must bring
    // the log up to date.
    args.keep.keep(ctx.store, &player).await?;
    anyhow::ensure!(lifted, "player {player} is not banned");
    if out.json {
        out.document(&serde_json::json!({ "player": player.as_str(), "result": "unbanned" }))
    } else {
        writeln!(out, "{player}: unbanned (for future events)")?;
        Ok(())
    }
}
