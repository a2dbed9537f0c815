//! `lb-admin migrate <board> --to <layout> [--shards N]`: moves a board to another layout
//! (`single`, `hash:N`, `range:a,b,..`; `--to range --shards N` picks equal-population
//! boundaries) online, with a progress bar.

use std::io::Write;

use anyhow::bail;
use leaderboard_store::LayoutSpec;

use super::Context;
use crate::board::{board_id, router_for};
use crate::output::Output;
use crate::progress::{self, Tuning};

/// The arguments of `migrate`.
#[derive(Debug, clap::Args)]
pub struct Migrate {
    /// The board.
    pub(super) board: String,
    /// The target layout: `single`, `hash:N`, `range:a,b,..` (or `range` with `--shards`).
    #[arg(long)]
    to: String,
    /// For a `range` target: equal-population boundaries for this many shards.
    #[arg(long)]
    shards: Option<usize>,
    /// Chunk size and grace period.
    #[command(flatten)]
    tuning: Tuning,
}

/// Runs (or resumes) the migration.
pub(crate) async fn run(args: Migrate, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let board = board_id(&args.board)?;
    let router = router_for(ctx.store, &board).await?;
    let to: LayoutSpec = match (args.to.as_str(), args.shards) {
        ("range", Some(n)) => LayoutSpec::Range { boundaries: router.propose_boundaries(&board, n).await? },
        (_, Some(_)) => bail!("--shards goes with --to range"),
        (spec, None) => spec.parse()?,
    };
    let outcome = progress::migrate(&router, &board, &to, &args.tuning, out.json).await?;
    out.report(&board, &outcome)?;
    Ok(())
}
