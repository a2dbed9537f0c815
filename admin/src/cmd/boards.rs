//! `lb-admin boards`: every board with its recorded layout, total, each shard's score range and
//! size, and the rebalance or migration it is in.

use std::io::Write;

use leaderboard_contract::BoardId;
use leaderboard_semantics::BoardStats;
use leaderboard_store::layout::record;
use leaderboard_store::{Router, RouterOptions, Store};
use serde::Serialize;

use super::Context;
use crate::output::Output;

/// One board, as `boards` reports it.
#[derive(Debug, Serialize)]
struct BoardLine {
    board: String,
    /// The recorded layout (`range` boards: with their current boundaries).
    layout: String,
    #[serde(flatten)]
    stats: Option<BoardStats>,
}

/// Lists every board.
pub(crate) async fn run(ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for board in record::boards(ctx.store).await? {
        lines.extend(describe(ctx.store, &board).await?);
    }
    if out.json {
        out.document(&lines)?;
    } else {
        for line in &lines {
            print_board(out, line)?;
        }
    }
    Ok(())
}

/// The board's line; `None` when it was deleted after the list of boards was read.
async fn describe(store: &Store, board: &BoardId) -> anyhow::Result<Option<BoardLine>> {
    let Some((router, _)) = Router::for_board(store, board, RouterOptions::default()).await? else { return Ok(None) };
    let stats = router.stats(board).await?;
    Ok(Some(BoardLine { board: board.to_string(), layout: stats.layout.clone(), stats: Some(stats) }))
}

fn print_board(out: &mut impl Write, line: &BoardLine) -> std::io::Result<()> {
    let Some(stats) = &line.stats else { return writeln!(out, "{}  {}", line.board, line.layout) };
    let state = match (&stats.migrating_to, stats.rebalancing) {
        (Some(to), _) => format!("  (migrating to {to})"),
        (None, Some(true)) => "  (rebalancing)".into(),
        _ => String::new(),
    };
    writeln!(out, "{}  {}  {} players{state}  {}", line.board, line.layout, stats.total, stats.rules)?;
    for shard in &stats.shards {
        let range = match (shard.min_score, shard.max_score) {
            (Some(min), Some(max)) => format!("{min}..={max}"),
            (Some(min), None) => format!("{min}.."),
            _ => "-".into(),
        };
        writeln!(out, "  shard {:>3}  {:>14}  {:>12} players", shard.index, range, shard.size)?;
    }
    Ok(())
}
