//! Finding a board: its name checked, and a router with the layout it is recorded with
//! (or, for work across boards, one that reads each board's record).

use anyhow::{Context as _, bail};
use leaderboard_contract::BoardId;
use leaderboard_store::layout::record::BoardRecord;
use leaderboard_store::{LayoutSpec, Router, RouterOptions, Store};

/// The board named `name`.
pub(crate) fn board_id(name: &str) -> anyhow::Result<BoardId> {
    BoardId::new(name.to_string()).map_err(|e| anyhow::anyhow!("invalid board name {name:?}: {e}"))
}

/// The boards named `names` (a repeated `--board`).
pub(crate) fn board_ids(names: &[String]) -> anyhow::Result<Vec<BoardId>> {
    names.iter().map(|n| board_id(n)).collect()
}

/// A router for `board` with the layout it is recorded with, and the record.
pub(crate) async fn router_and_record(store: &Store, board: &BoardId) -> anyhow::Result<(Router, BoardRecord)> {
    Router::for_board(store, board, RouterOptions::default()).await?.with_context(|| {
        format!("board {board} has no recorded layout (it does not exist, or predates layout records)")
    })
}

/// A router for `board` with the layout it is recorded with.
pub(crate) async fn router_for(store: &Store, board: &BoardId) -> anyhow::Result<Router> {
    Ok(router_and_record(store, board).await?.0)
}

/// A router for `board`, which must be a `range` board (the only layout that rebalances).
pub(crate) async fn range_router(store: &Store, board: &BoardId) -> anyhow::Result<Router> {
    let router = router_for(store, board).await?;
    if !matches!(router.spec(), LayoutSpec::Range { .. }) {
        bail!("board {board} uses layout {}, not range: only range boards rebalance (see `migrate`)", router.spec());
    }
    Ok(router)
}

/// A router for work across boards (erasing, banning): it reads each board's
/// own record, so the layout it is made with is never used to create one.
pub(crate) fn player_router(store: &Store) -> Router {
    Router::new(store.clone(), LayoutSpec::Single, RouterOptions::default())
}
