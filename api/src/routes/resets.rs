//! `POST /v1/admin/boards/{board}/seasons:reset`: ends a `manual` board's
//! season now and opens the next (docs/contract.md#seasons).
//!
//! The reset's time is this api's season clock, or just after the latest
//! event time a writer has already put in the season, whichever is later
//! ([`leaderboard_store::board::manual`] says why): the answer gives the
//! times the store recorded. Kept in the players log too, when this api has
//! one (503 `players_log_unavailable` when the log does not take it: the
//! reset is in effect; retried with `?ending=<the season it ended>`, the call
//! answers that reset again and writes the log, resetting nothing). Audited,
//! and run in a task of its own, as every admin change.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use leaderboard_contract::BoardId;
use leaderboard_semantics::season::{OPEN_END_MS, Season, manual_index};
use leaderboard_store::board::manual::ResetOutcome;
use leaderboard_store::{Router, RouterOptions};

use crate::clock::rfc3339;
use crate::dto::{SeasonReset, SeasonSpan};
use crate::error::{AdminErrors, ApiError, ErrorBody};
use crate::extract::BoardPath;
use crate::routes::admin::{admin, audit_refusal, failed, outcome};
use crate::season::time_of;
use crate::state::AppState;

/// `?ending=` of a reset.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResetParams {
    /// Only if this is the open season (`m3`): a retried reset (after a timeout or a 503) then
    /// answers the reset that ended it, and resets nothing.
    #[param(pattern = "^m[1-9][0-9]{0,13}$")]
    pub ending: Option<String>,
}

/// Ends the current season of a `manual` board and opens the next.
#[utoipa::path(post, path = "/v1/admin/boards/{board}/seasons:reset", tag = "admin", security(("bearer" = [])),
    params(("board" = String, Path, description = "Board name"), ResetParams),
    responses(
        (status = 200, description = "The season ended and the one opened", body = SeasonReset),
        (status = 400, description = "`ending` is not a manual season id (`invalid_season`)", body = ErrorBody),
        (status = 404, description = "No such board (`board_not_found`)", body = ErrorBody),
        (status = 409, description = "The board's schedule is not `manual` (`not_manual`), 16 of its seasons \
            are not closed yet (`too_many_open_seasons`: retry once the closer has closed some), or `ending` is \
            neither the open season nor one a reset ended (`season_not_open`)", body = ErrorBody),
        AdminErrors))]
pub async fn reset(
    State(s): State<AppState>,
    BoardPath(board): BoardPath,
    params: Result<Query<ResetParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<SeasonReset>, ApiError> {
    let admin = admin(&s)?.clone();
    let who = admin.authorize(&headers, "reset_season", board.as_str()).await?;
    let parsed =
        params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text())).and_then(|Query(p)| match p.ending {
            Some(e) if manual_index(&e).is_none() || e.len() > crate::season::SEASON_MAX_BYTES => {
                Err(ApiError::bad_request(
                    "invalid_season",
                    format!("ending must be a manual season id (m1, m2, ...), got {e:?}"),
                ))
            }
            ending => Ok(ending),
        });
    let ending = audit_refusal(&admin, &who, "reset_season", board.as_str(), parsed).await?;
    let change = {
        let (s, admin, who, board) = (s.clone(), admin.clone(), who.clone(), board.clone());
        async move {
            let result = match reset_now(&s, admin.store(), &board, ending.as_deref()).await {
                Ok(answer) => admin.keep_resets(&board).await.map(|()| answer),
                Err(e) => Err(e),
            };
            s.forget(&board);
            let audited = match &result {
                Ok(answer) => format!("ok: {} from {}", answer.current.id, answer.current.start),
                Err(_) => outcome(&result),
            };
            admin.audit(&who, "reset_season", board.as_str(), &audited).await;
            result
        }
    };
    admin.detach(&who, "reset_season", board.as_str(), change).await.map(Json)
}

/// Resets `board` through the primary at this api's season clock.
async fn reset_now(
    s: &AppState,
    store: &leaderboard_store::Store,
    board: &BoardId,
    ending: Option<&str>,
) -> Result<SeasonReset, ApiError> {
    // The store refuses a board without a record or a manual schedule (404, 409 below).
    let router = Router::new(store.clone(), s.backend.router().spec().clone(), RouterOptions::default());
    let outcome = router.reset_season(board, s.clock.now_ms(), ending).await.map_err(|e| match e {
        leaderboard_store::Error::TooManyUnclosed { .. } => {
            ApiError::Conflict { code: "too_many_open_seasons", message: e.to_string() }
        }
        leaderboard_store::Error::NotCurrent { .. } => {
            ApiError::Conflict { code: "season_not_open", message: e.to_string() }
        }
        leaderboard_store::Error::NotManual { .. } => ApiError::Conflict { code: "not_manual", message: e.to_string() },
        leaderboard_store::Error::UnknownBoard(_) => {
            ApiError::NotFound { code: "board_not_found", message: format!("board {board} does not exist") }
        }
        other => failed(&other),
    })?;
    let (ended, current) = match outcome {
        ResetOutcome::Ended { ended, opened } => (Some(span(&ended)), span(&opened)),
        ResetOutcome::First(opened) => (None, span(&opened)),
    };
    Ok(SeasonReset { board: board.to_string(), ended, current })
}

/// A season's interval as the answer shows it.
fn span(season: &Season) -> SeasonSpan {
    SeasonSpan {
        id: season.id.clone(),
        start: rfc3339(time_of(season.start_ms)),
        end: (season.end_ms != OPEN_END_MS).then(|| rfc3339(time_of(season.end_ms))),
    }
}
