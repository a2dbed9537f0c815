//! `lb-admin watch <board>`: follows a rebalance or migration another process runs, until it ends.

use std::io::Write;

use super::Context;
use crate::board::{board_id, router_for};
use crate::output::Output;
use crate::progress;

/// The arguments of `watch`.
#[derive(Debug, clap::Args)]
pub struct Watch {
    /// The board.
    board: String,
}

/// Shows the operation's progress until none is in progress.
pub(crate) async fn run(args: Watch, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let board = board_id(&args.board)?;
    let router = router_for(ctx.store, &board).await?;
    progress::watch(&router, &board, out.json).await?;
    out.report(&board, "no rebalance or migration in progress")?;
    Ok(())
}
