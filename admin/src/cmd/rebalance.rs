//! `lb-admin rebalance <board> (--boundaries a,b,.. | --shards N)`: moves a `range` board to new
//! boundaries online with a progress bar, resuming the same rebalance if one was interrupted;
//! `--only-if-skewed R` does nothing unless the largest shard holds more than `R` times the mean.

use std::io::Write;

use leaderboard_semantics::BoardStats;

use super::Context;
use crate::board::{board_id, range_router};
use crate::output::Output;
use crate::progress::{self, Tuning};

/// The arguments of `rebalance`.
#[derive(Debug, clap::Args)]
pub struct Rebalance {
    /// The board.
    pub(super) board: String,
    /// The new boundaries (lower bounds of shards 1..), comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "shards", required_unless_present = "shards")]
    boundaries: Vec<u64>,
    /// Or: equal-population boundaries for this many shards.
    #[arg(long)]
    shards: Option<usize>,
    /// Do nothing unless the largest shard holds more than this many times the mean.
    #[arg(long)]
    only_if_skewed: Option<f64>,
    /// Chunk size and grace period.
    #[command(flatten)]
    tuning: Tuning,
}

/// Runs (or resumes) the rebalance.
pub(crate) async fn run(args: Rebalance, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let board = board_id(&args.board)?;
    let router = range_router(ctx.store, &board).await?;
    if let Some(ratio) = args.only_if_skewed {
        let stats = router.stats(&board).await?;
        let skew = skew(&stats);
        if skew <= ratio {
            out.report(&board, &format!("not skewed: largest shard {skew:.2}x the mean"))?;
            return Ok(());
        }
    }
    let boundaries = match args.shards {
        Some(n) => router.propose_boundaries(&board, n).await?,
        None => args.boundaries,
    };
    let outcome = progress::rebalance(&router, &board, boundaries, &args.tuning, out.json).await?;
    out.report(&board, &outcome)?;
    Ok(())
}

/// The largest shard's size over the mean size.
fn skew(stats: &BoardStats) -> f64 {
    let largest = stats.shards.iter().map(|s| s.size).max().unwrap_or(0);
    let mean = stats.total as f64 / stats.shards.len().max(1) as f64;
    if mean == 0.0 { 0.0 } else { largest as f64 / mean }
}
