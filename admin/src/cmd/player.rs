//! `lb-admin player <player>`: where a player stands: erased or not, banned or
//! not, and their standing on every board (all-time) they have a score on.

use std::io::Write;

use leaderboard_contract::PlayerId;
use leaderboard_store::marker::registry::{self, Ban, BanScope};
use leaderboard_store::players::standings;
use serde::Serialize;

use super::Context;
use crate::output::Output;

/// The arguments of `player`.
#[derive(Debug, clap::Args)]
pub struct Player {
    /// The player.
    pub(super) player: String,
}

/// `player`'s report.
#[derive(Debug, Serialize)]
struct Status {
    player: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    erased_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    erasure_unfinished: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ban: Option<Ban>,
    boards: Vec<OnBoard>,
}

/// A standing on one board.
#[derive(Debug, Serialize)]
struct OnBoard {
    board: String,
    score: u64,
    rank: u64,
}

/// Prints where the player stands.
pub(crate) async fn run(args: Player, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let player = PlayerId::new(args.player)?;
    let marks = registry::status(ctx.store, &player).await?;
    let boards = standings::everywhere(ctx.store, &player)
        .await?
        .boards
        .into_iter()
        .map(|b| OnBoard { board: b.board.to_string(), score: b.standing.score, rank: b.standing.rank })
        .collect();
    let status = Status {
        player: player.to_string(),
        erased_at_ms: marks.erased_at_ms,
        erasure_unfinished: marks.erasure_unfinished,
        ban: marks.ban,
        boards,
    };
    if out.json {
        return out.document(&status);
    }
    match status.erased_at_ms {
        Some(at) if status.erasure_unfinished => {
            writeln!(out, "{player}: erased at {at} ms, but the removal did not finish: run `lb-admin erase` again")?;
        }
        Some(at) => writeln!(out, "{player}: erased at {at} ms (records stamped before are never applied)")?,
        None => writeln!(out, "{player}: not erased")?,
    }
    match &status.ban {
        Some(ban) => {
            let boards = match &ban.boards {
                BanScope::All(_) => "every board".to_string(),
                BanScope::Boards(boards) => boards.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            };
            let closed = if ban.closed_seasons { ", closed seasons too" } else { "" };
            writeln!(out, "banned from {boards}{closed}: {:?}", ban.reason)?;
        }
        None => writeln!(out, "not banned")?,
    }
    for b in &status.boards {
        writeln!(out, "  {}: score {}, rank {}", b.board, b.score, b.rank)?;
    }
    Ok(())
}
