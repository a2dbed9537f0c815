//! `lb-admin propose <board> --shards N`: equal-population boundaries from the board's current
//! scores (any layout), to give `rebalance` or `migrate`.

use std::io::Write;

use super::Context;
use crate::board::{board_id, router_for};
use crate::output::{Output, join};

/// The arguments of `propose`.
#[derive(Debug, clap::Args)]
pub struct Propose {
    /// The board.
    board: String,
    /// How many shards.
    #[arg(long)]
    shards: usize,
}

/// Prints the boundaries.
pub(crate) async fn run(args: Propose, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let board = board_id(&args.board)?;
    let router = router_for(ctx.store, &board).await?;
    let boundaries = router.propose_boundaries(&board, args.shards).await?;
    if out.json {
        writeln!(out, "{}", serde_json::json!({ "board": board.as_str(), "boundaries": boundaries }))?;
    } else {
        writeln!(out, "{}", join(&boundaries))?;
    }
    Ok(())
}
