//! Where a player stands across the store: their all-time standing on every
//! board they have a score on, with a stated bound on the boards looked at.

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::Standing;

use crate::layout::record;
use crate::layout::router::{Router, RouterOptions};
use crate::{Result, Store};

/// Most boards looked at, in name order: each costs a record read and a standing read.
pub const MAX_BOARDS_LOOKED_AT: usize = 1000;

/// A player's standing on one board.
#[derive(Debug, Clone, PartialEq)]
pub struct OnBoard {
    /// The board.
    pub board: BoardId,
    /// The player's standing there.
    pub standing: Standing,
}

/// A player's standings across the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Standings {
    /// The boards they have a score on, in name order.
    pub boards: Vec<OnBoard>,
    /// Whether the store has more boards than [`MAX_BOARDS_LOOKED_AT`] (the rest were not looked at).
    pub truncated: bool,
}

/// `player`'s standing on every board (the first [`MAX_BOARDS_LOOKED_AT`]), each read with the
/// layout the board is recorded with.
///
/// # Errors
/// [`crate::Error::Redis`] when Redis fails; [`crate::Error::Corrupt`] for an unreadable record.
pub async fn everywhere(store: &Store, player: &PlayerId) -> Result<Standings> {
    let names = record::boards(store).await?;
    let truncated = names.len() > MAX_BOARDS_LOOKED_AT;
    let mut boards = Vec::new();
    for board in names.into_iter().take(MAX_BOARDS_LOOKED_AT) {
        let Some((router, _)) = Router::for_board(store, &board, RouterOptions::default()).await? else { continue };
        if let Some(standing) = router.standing(&board, player).await? {
            boards.push(OnBoard { board, standing });
        }
    }
    Ok(Standings { boards, truncated })
}
