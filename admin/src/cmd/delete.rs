//! `lb-admin delete <board>`: removes a board: every key of every layout it uses, and its record.

use std::io::Write;

use super::Context;
use crate::board::{board_id, router_for};
use crate::output::Output;

/// The arguments of `delete`.
#[derive(Debug, clap::Args)]
pub struct Delete {
    /// The board.
    pub(super) board: String,
}

/// Deletes the board.
pub(crate) async fn run(args: Delete, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let board = board_id(&args.board)?;
    let router = router_for(ctx.store, &board).await?;
    router.delete_board(&board).await?;
    out.report(&board, "deleted: every key of every layout, and its record")?;
    Ok(())
}
