//! `lb-admin resume <board>`: finishes the interrupted rebalance or migration, to the target it
//! was started with.

use std::io::Write;

use anyhow::bail;
use leaderboard_store::LayoutSpec;
use leaderboard_store::layout::record::RecordedLayout;

use super::Context;
use crate::board::{board_id, router_and_record};
use crate::output::Output;
use crate::progress::{self, Tuning};

/// The arguments of `resume`.
#[derive(Debug, clap::Args)]
pub struct Resume {
    /// The board.
    pub(super) board: String,
    /// Chunk size and grace period.
    #[command(flatten)]
    tuning: Tuning,
}

/// Finishes the operation in progress; an error when there is none.
pub(crate) async fn run(args: Resume, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let board = board_id(&args.board)?;
    let (router, record) = router_and_record(ctx.store, &board).await?;
    let outcome = if let Some(migration) = record.migration {
        let to = match migration.to {
            // The target's boundaries are in its metadata already: these are not used.
            RecordedLayout::Range => LayoutSpec::Range { boundaries: Vec::new() },
            other => other.to_string().parse()?,
        };
        progress::migrate(&router, &board, &to, &args.tuning, out.json).await?
    } else if record.layout == RecordedLayout::Range
        && let Some(migration) = router.range_meta(&board).await?.migration
    {
        progress::rebalance(&router, &board, migration.target.boundaries, &args.tuning, out.json).await?
    } else {
        bail!("board {board} has no rebalance or migration in progress");
    };
    out.report(&board, &outcome)?;
    Ok(())
}
