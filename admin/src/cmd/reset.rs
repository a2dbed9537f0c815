//! `lb-admin reset <board> [--ending m<k>] [--clock C]`: ends a `manual` board's season now and
//! opens the next, as `POST /v1/admin/boards/{board}/seasons:reset` does
//! (`docs/seasons.md#manual-seasons`).

use std::io::Write;

use anyhow::bail;
use leaderboard_semantics::season::{OPEN_END_MS, Season};
use leaderboard_semantics::season_result::rfc3339_ms;
use leaderboard_store::board::manual::ResetOutcome;
use serde::Serialize;

use super::Context;
use crate::board::{board_id, router_for};
use crate::output::Output;

/// The arguments of `reset`.
#[derive(Debug, clap::Args)]
pub struct Reset {
    /// The board (its reset schedule must be `manual`).
    pub(super) board: String,
    /// Only if this is the open season (`m3`): run again after a failure, it
    /// prints the reset that ended it and resets nothing.
    #[arg(long)]
    ending: Option<String>,
    /// The clock the reset is dated by, as every process of the deployment reads it.
    #[command(flatten)]
    clock: ClockArg,
    /// Where the players log is (it keeps the board's resets for recovery).
    #[command(flatten)]
    keep: crate::players_log::KeepArgs,
}

/// `--clock`: the season clock of a command that dates seasons (`rules` of a
/// `manual` board starts its first season, `reset` ends one).
#[derive(Debug, Clone, clap::Args)]
pub struct ClockArg {
    /// `system`; for tests and demos `offset:<ms>` or `sim:<anchor_ms>:<start_ms>:<speed>`,
    /// the clock the api and ingest run with.
    #[arg(long, env = "LB_CLOCK", default_value = "system")]
    pub(super) clock: leaderboard_semantics::Clock,
}

/// A season as `reset` prints it.
#[derive(Debug, Serialize)]
struct Span {
    id: String,
    start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
}

impl From<&Season> for Span {
    fn from(s: &Season) -> Self {
        Self {
            id: s.id.clone(),
            start: rfc3339_ms(s.start_ms),
            end: (s.end_ms != OPEN_END_MS).then(|| rfc3339_ms(s.end_ms)),
        }
    }
}

/// What `reset` did.
#[derive(Debug, Serialize)]
struct Report {
    board: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended: Option<Span>,
    current: Span,
}

/// Resets the board.
pub(crate) async fn run(args: Reset, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let board = board_id(&args.board)?;
    let router = router_for(ctx.store, &board).await?;
    if let Some(ending) = args.ending.as_deref().filter(|e| leaderboard_semantics::season::manual_index(e).is_none()) {
        bail!("--ending takes a manual season id (m1, m2, ...), got {ending:?}");
    }
    let report = match router.reset_season(&board, args.clock.clock.now_ms(), args.ending.as_deref()).await? {
        ResetOutcome::Ended { ended, opened } => {
            Report { board: board.to_string(), ended: Some(Span::from(&ended)), current: Span::from(&opened) }
        }
        ResetOutcome::First(opened) => Report { board: board.to_string(), ended: None, current: Span::from(&opened) },
    };
    args.keep.keep_resets(ctx.store, &board).await?;
    if out.json {
        return out.document(&report);
    }
    if let Some(ended) = &report.ended {
        writeln!(out, "{board}: season {} ended at {}", ended.id, ended.end.as_deref().unwrap_or_default())?;
    }
    writeln!(out, "{board}: season {} is current from {}", report.current.id, report.current.start)?;
    Ok(())
}
