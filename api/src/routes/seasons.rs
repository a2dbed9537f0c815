//! `GET /v1/boards/{board}/seasons`: a board's seasons and its next reset.

use axum::Json;
use axum::extract::State;
use futures::{StreamExt as _, TryStreamExt as _};
use leaderboard_semantics::season::OPEN_END_MS;

use crate::backend::Dated;
use crate::clock::rfc3339;
use crate::dto::{ResetDto, SeasonDto, SeasonsResponse};
use crate::error::{ApiError, ReadErrors};
use crate::extract::BoardPath;
use crate::season::time_of;
use crate::state::AppState;

/// Most seasons one answer lists (a board keeps up to 1,000).
pub const MAX_LISTED_SEASONS: usize = 100;

/// Season totals read at once.
const TOTALS_CONCURRENCY: usize = 8;

/// The board's seasons, newest first: the current one (also before its first
/// event), then the kept ones; with the next reset time (none on a `manual`
/// board). Closed seasons'
/// totals come from memory after their first read ([`crate::season::SeasonStates::total`]).
#[utoipa::path(get, path = "/v1/boards/{board}/seasons", tag = "boards",
    params(("board" = String, Path, description = "Board name, 1-64 bytes of [A-Za-z0-9_.-]")),
    responses((status = 200, description = "The seasons", body = SeasonsResponse), ReadErrors))]
pub async fn seasons(
    State(s): State<AppState>,
    BoardPath(board): BoardPath,
) -> Result<Json<SeasonsResponse>, ApiError> {
    let b = &board;
    let rules = s.backend.call(|r| async move { r.rules(b).await }).await?;
    let Some(reset) = rules.reset else {
        return Err(ApiError::NotFound {
            code: "no_seasons",
            message: format!("board {board} has no reset schedule, so no seasons"),
        });
    };
    let invalid =
        |e: leaderboard_semantics::season::SeasonError| ApiError::bad_request("invalid_season", e.to_string());
    let now = s.clock.now_ms();
    let (current, next_reset_ms) = if reset.is_manual() {
        // Its current season lasts until an admin resets it: there is no next reset to count down to.
        let view = s.backend.call(|r| async move { r.view_manual(b, now, now, false).await }).await?;
        (view.at_and_before(now).0.or_else(|| view.seasons.first()).cloned(), None)
    } else {
        // Before a span's first season there is no current one: the next reset is its start.
        match reset.season_at(now) {
            Ok(current) => {
                let end = current.end_ms;
                (Some(current), Some(end))
            }
            Err(leaderboard_semantics::season::SeasonError::NotStarted(start_ms)) => (None, Some(start_ms)),
            Err(e) => return Err(invalid(e)),
        }
    };
    let Dated { value: mut entries, as_of } = s.backend.read(|r| async move { r.seasons(b).await }).await?;
    if let Some(current) = &current
        && !entries.iter().any(|e| e.id == current.id)
    {
        entries.push(leaderboard_store::board::seasons::SeasonEntry::of(current));
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.start_ms));
    let truncated = entries.len() > MAX_LISTED_SEASONS;
    entries.truncate(MAX_LISTED_SEASONS);
    let seasons: Vec<SeasonDto> = futures::stream::iter(entries)
        .map(|entry| {
            let s = &s;
            let stored = board.season(&entry.id);
            async move {
                // A closed season's total is read once: a request costs Redis only the open ones'.
                let frozen_at = entry.closed_at_ms.map(|closed| entry.amended_at_ms.unwrap_or(closed));
                let total = s.seasons.total(&s.backend, &stored, frozen_at).await?;
                Ok::<_, ApiError>(SeasonDto {
                    start: rfc3339(time_of(entry.start_ms)),
                    end: (entry.end_ms != OPEN_END_MS).then(|| rfc3339(time_of(entry.end_ms))),
                    state: if entry.closed() { "closed" } else { "open" }.to_string(),
                    total,
                    amended_at: entry.amended_at_ms.map(|at| rfc3339(time_of(at))),
                    id: entry.id,
                })
            }
        })
        .buffered(TOTALS_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(Json(SeasonsResponse {
        board: board.to_string(),
        as_of: rfc3339(as_of),
        reset: ResetDto::from(reset),
        next_reset: next_reset_ms.map(|ms| rfc3339(time_of(ms))),
        now: rfc3339(time_of(now)),
        seasons,
        truncated,
    }))
}
