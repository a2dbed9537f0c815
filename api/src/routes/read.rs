//! The one read path of the read routes: resolve `?season=` → is the season
//! closed? → read through the breaker → date the answer.
//!
//! A read route extracts its parameters, calls [`read`] (or [`standing`],
//! the same path shared by identical concurrent lookups) with the call to make
//! on the stored board, and builds its response from the [`Answer`]. How an
//! answer is dated is decided here only: by the season's end when the season
//! was closed before the read ([`crate::season`]), else by the watermark the
//! read node held ([`crate::freshness`]). `/top` resolves first and may answer
//! from the cache instead ([`resolve`], then [`answer`]).

use std::future::Future;
use std::time::SystemTime;

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::Standing;
use leaderboard_store::Router;

use crate::backend::Dated;
use crate::error::ApiError;
use crate::season::{SeasonParams, Target};
use crate::state::AppState;

/// What a read route answers from.
#[derive(Debug)]
pub struct Answer<T> {
    /// What the request is about: the board named, the board read, the season.
    pub target: Target,
    /// What was read.
    pub value: T,
    /// Its date (`as_of`).
    pub as_of: SystemTime,
}

/// The read path in one call: resolves `?season=` for `board`, then reads with
/// `call` (given the router and the stored board, `<board>@<season>` for a
/// season) and dates the answer.
///
/// `call` takes the stored board by value: a future borrowing it would have to
/// be `Send` for every lifetime, which the compiler cannot prove of a handler's
/// future (`async` closures hit the same wall).
///
/// # Errors
/// As [`resolve`], then as every read (503 unavailable, 409 layout mismatch, 500).
pub async fn read<T, F, Fut>(
    s: &AppState,
    board: BoardId,
    season: &SeasonParams,
    call: F,
) -> Result<Answer<T>, ApiError>
where
    F: Fn(Router, BoardId) -> Fut,
    Fut: Future<Output = leaderboard_store::Result<T>>,
{
    answer(s, resolve(s, board, season).await?, call).await
}

/// [`read`] for a player's standing: identical concurrent lookups of a
/// player share one read (single flight, [`crate::coalesce`]), within one
/// generation of the cache: a lookup asked after the cached answers were
/// dropped (an erasure, a ban, a recovered store) never shares a read begun
/// before, which may show what was dropped.
///
/// # Errors
/// As [`read`].
pub async fn standing(
    s: &AppState,
    board: BoardId,
    season: &SeasonParams,
    player: &PlayerId,
) -> Result<Answer<Option<Standing>>, ApiError> {
    let target = resolve(s, board, season).await?;
    let stored = &target.stored;
    let read = || async move {
        let answer = dated(s, stored, |r, b| async move { r.standing(&b, player).await }).await;
        #[cfg(feature = "testing")]
        crate::testing::lookup_read(stored, player).await;
        answer
    };
    let key = (s.cache.generation(), stored.clone(), player.clone());
    let Dated { value, as_of } = s.lookups.run(key, read).await?;
    Ok(Answer { target, value, as_of })
}

/// The first half of [`read`]: which stored board `?season=` names.
///
/// # Errors
/// As [`crate::season::resolve`].
pub async fn resolve(s: &AppState, board: BoardId, season: &SeasonParams) -> Result<Target, ApiError> {
    crate::season::resolve(&s.backend, s.clock, board, season).await
}

/// The second half of [`read`]: reads `target` with `call` and dates the answer.
///
/// # Errors
/// As every read.
pub async fn answer<T, F, Fut>(s: &AppState, target: Target, call: F) -> Result<Answer<T>, ApiError>
where
    F: Fn(Router, BoardId) -> Fut,
    Fut: Future<Output = leaderboard_store::Result<T>>,
{
    let Dated { value, as_of } = dated(s, &target.stored, call).await?;
    Ok(Answer { target, value, as_of })
}

/// Reads `stored` with `call`, dated by the season's end when the season was
/// closed before the read (read first, see [`crate::season`]), else by the watermark.
async fn dated<T, F, Fut>(s: &AppState, stored: &BoardId, call: F) -> Result<Dated<T>, ApiError>
where
    F: Fn(Router, BoardId) -> Fut,
    Fut: Future<Output = leaderboard_store::Result<T>>,
{
    let frozen = s.seasons.frozen_at(&s.backend, stored).await?;
    let Dated { value, as_of } = s.backend.read(|r| call(r, stored.clone())).await?;
    Ok(Dated { value, as_of: frozen.unwrap_or(as_of) })
}

/// 404 `board_not_found` when the board (or season) read holds no players.
///
/// # Errors
/// That 404, when `total` is 0.
pub fn ensure_players(total: u64, stored: &BoardId) -> Result<(), ApiError> {
    if total == 0 { Err(board_not_found(stored)) } else { Ok(()) }
}

/// 404 for a board (or a season, by its stored name) without players.
pub fn board_not_found(stored: &BoardId) -> ApiError {
    let message = match crate::season::names(stored) {
        (board, Some(season)) => format!("season {season} of board {board} has no players"),
        (board, None) => format!("board {board} has no players"),
    };
    ApiError::NotFound { code: "board_not_found", message }
}
