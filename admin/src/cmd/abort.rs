//! `lb-admin abort <board>`: abandons the rebalance or migration in progress; its half-built
//! target is deleted after the grace period.

use std::io::Write;
use std::time::Duration;

use leaderboard_store::layout::record::RecordedLayout;

use super::Context;
use crate::board::{board_id, router_and_record};
use crate::output::Output;

/// The arguments of `abort`.
#[derive(Debug, clap::Args)]
pub struct Abort {
    /// The board.
    pub(super) board: String,
    /// How long the half-built generation is kept before deletion (reads in flight).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    grace: Duration,
}

/// Abandons the operation in progress, if any.
pub(crate) async fn run(args: Abort, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let board = board_id(&args.board)?;
    let (router, record) = router_and_record(ctx.store, &board).await?;
    let what = if record.migration.is_some() {
        router.abort_layout_migration(&board, args.grace).await?;
        "migration abandoned; its target deleted"
    } else if record.layout == RecordedLayout::Range && router.abort_rebalance(&board, args.grace).await? {
        "rebalance abandoned; its generation deleted"
    } else {
        "no rebalance or migration in progress"
    };
    out.report(&board, what)?;
    Ok(())
}
