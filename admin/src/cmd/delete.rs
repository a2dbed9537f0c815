//! `lb-admin delete <board>`: removes a board: every key of every layout it uses, and its record.

use std::io::Write;

use super::Context;
use crate::board::{board_id, router_and_record};
use crate::output::Output;

/// The arguments of `delete`.
#[derive(Debug, clap::Args)]
pub struct Delete {
    /// The board.
    pub(super) board: String,
    /// Where the players log is (a `manual` board's resets leave it too).
    #[command(flatten)]
    keep: crate::players_log::KeepArgs,
}

/// Deletes the board.
pub(crate) async fn run(args: Delete, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let board = board_id(&args.board)?;
    let (router, record) = router_and_record(ctx.store, &board).await?;
    router.delete_board(&board).await?;
    if record.rules.reset.is_some_and(|r| r.is_manual()) {
        args.keep.keep_resets(ctx.store, &board).await?;
    }
    out.report(&board, "deleted: every key of every layout, and its record")?;
    Ok(())
}
