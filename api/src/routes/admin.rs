//! The admin routes about boards (`/v1/admin/boards`): list boards, delete one,
//! set its rules; and what every admin route shares (players: [`super::players`]).
//!
//! Each checks the bearer token first and writes what it did, or why it was
//! refused, to the audit log ([`crate::admin`]); the writes go to the primary
//! through the admin connection, each change in a task of its own
//! ([`Admin::detach`]) that finishes even when its request is cut off.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use leaderboard_contract::BoardId;
use leaderboard_semantics::Rules;
use leaderboard_store::{Router, RouterOptions, layout::record};
use serde::de::DeserializeOwned;

use crate::admin::{Admin, status_code};
use crate::dto::{AdminBoard, AdminBoards, RulesRequest};
use crate::error::{AdminErrors, ApiError, ErrorBody};
use crate::extract::BoardPath;
use crate::state::AppState;

/// Most boards `GET /v1/admin/boards` lists (in name order).
pub const MAX_LISTED_BOARDS: usize = 1000;

/// The admin side, or 401 when no token is configured (the routes exist, nobody may use them).
pub(crate) fn admin(s: &AppState) -> Result<&Arc<Admin>, ApiError> {
    s.admin.as_ref().ok_or(ApiError::Unauthorized)
}

pub(crate) fn failed(e: &leaderboard_store::Error) -> ApiError {
    ApiError::from_router(e)
}

/// What the audit log records of a request: `ok`, or its status code.
pub(crate) fn outcome<T>(result: &Result<T, ApiError>) -> String {
    result.as_ref().map_or_else(status_code, |_| "ok".into())
}

/// Every board with its layout and total.
#[utoipa::path(get, path = "/v1/admin/boards", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The boards", body = AdminBoards), AdminErrors))]
pub async fn list_boards(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<AdminBoards>, ApiError> {
    let admin = admin(&s)?;
    let who = admin.authorize(&headers, "list_boards", "").await?;
    let result = async {
        let names = record::boards(admin.store()).await.map_err(|e| failed(&e))?;
        let truncated = names.len() > MAX_LISTED_BOARDS;
        let mut boards = Vec::new();
        for board in names.into_iter().take(MAX_LISTED_BOARDS) {
            // A board deleted meanwhile is left out.
            boards.extend(describe(admin, &board).await?);
        }
        Ok(AdminBoards { boards, truncated })
    }
    .await;
    admin.audit(&who, "list_boards", "", &outcome(&result)).await;
    result.map(Json)
}

/// Removes a board: every key of every layout it uses, and its record.
#[utoipa::path(delete, path = "/v1/admin/boards/{board}", tag = "admin", security(("bearer" = [])),
    params(("board" = String, Path, description = "Board name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such board", body = ErrorBody),
        AdminErrors))]
pub async fn delete_board(
    State(s): State<AppState>,
    BoardPath(board): BoardPath,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let admin = admin(&s)?.clone();
    let who = admin.authorize(&headers, "delete_board", board.as_str()).await?;
    let change = {
        let (s, admin, who, board) = (s.clone(), admin.clone(), who.clone(), board.clone());
        async move {
            let result = match delete(&admin, &board).await {
                // A `manual` board's resets leave the players log too (a tombstone).
                Ok(true) => admin.keep_resets(&board).await,
                Ok(false) => Ok(()),
                Err(e) => Err(e),
            };
            s.forget(&board);
            admin.audit(&who, "delete_board", board.as_str(), &outcome(&result)).await;
            result
        }
    };
    admin.detach(&who, "delete_board", board.as_str(), change).await.map(|()| StatusCode::NO_CONTENT)
}

/// Largest `PUT /v1/admin/boards/{board}` body.
pub const MAX_RULES_BODY_BYTES: usize = 4 * 1024;

/// `parsed` (a request's body, read after its token), writing its refusal to the audit log when it is one.
pub(crate) async fn audit_refusal<T>(
    admin: &Admin,
    who: &str,
    action: &str,
    target: &str,
    parsed: Result<T, ApiError>,
) -> Result<T, ApiError> {
    if let Err(e) = &parsed {
        admin.audit(who, action, target, &status_code(e)).await;
    }
    parsed
}

/// An admin route's JSON object body, read after the token (an
/// unauthenticated request learns nothing about bodies). Rejections are 400 JSON.
pub(crate) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| ApiError::bad_request("body_too_large", e.body_text()))?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !json {
        return Err(ApiError::bad_request("invalid_content_type", "expected Content-Type: application/json"));
    }
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    crate::extract::object_body(object)
}

/// The body of `PUT /v1/admin/boards/{board}`, validated.
fn parse_rules(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Rules, ApiError> {
    let request: RulesRequest = json_body(headers, body)?;
    let rules = request.rules().map_err(|e| ApiError::bad_request("invalid_rules", e))?;
    rules.validate().map_err(|e| ApiError::bad_request("invalid_rules", e.to_string()))?;
    Ok(rules)
}

/// Sets a board's rules, creating the board (with this api's layout) when it does not exist.
///
/// Order and ties are fixed once a board exists (they decide how it is
/// stored): changing them answers 409 `rules_fixed`. A reset schedule may be
/// added to a board without one (its seasons start with the current one), and
/// is then fixed (409 `reset_fixed`); a `manual` board's first season starts
/// when its schedule is set. Bounds, `keep_seasons` and `late_grace`
/// may change at any time; ingest applies them within a second.
#[utoipa::path(put, path = "/v1/admin/boards/{board}", tag = "admin", security(("bearer" = [])),
    params(("board" = String, Path, description = "Board name")),
    request_body(content = RulesRequest, description = "The board's rules; absent fields take their defaults; at most 4 KiB"),
    responses(
        (status = 200, description = "The board with its rules now", body = AdminBoard),
        (status = 400, description = "Invalid body or bounds", body = ErrorBody),
        (status = 409, description = "Order or ties differ from the existing board's (`rules_fixed`), or its reset schedule (`reset_fixed`)", body = ErrorBody),
        AdminErrors))]
pub async fn put_rules(
    State(s): State<AppState>,
    BoardPath(board): BoardPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AdminBoard>, ApiError> {
    let admin = admin(&s)?.clone();
    let who = admin.authorize(&headers, "set_rules", board.as_str()).await?;
    let rules = audit_refusal(&admin, &who, "set_rules", board.as_str(), parse_rules(&headers, body)).await?;
    let change = {
        let (s, admin, who, board) = (s.clone(), admin.clone(), who.clone(), board.clone());
        async move {
            let result = set_rules(&s, &admin, &board, rules).await;
            let outcome = result.as_ref().map_or_else(status_code, |_| format!("ok: {rules}"));
            admin.audit(&who, "set_rules", board.as_str(), &outcome).await;
            result
        }
    };
    admin.detach(&who, "set_rules", board.as_str(), change).await.map(Json)
}

/// Sets `board`'s rules through the primary and describes the board as it is then.
async fn set_rules(s: &AppState, admin: &Admin, board: &BoardId, rules: Rules) -> Result<AdminBoard, ApiError> {
    let writer = Router::new(admin.store().clone(), s.backend.router().spec().clone(), RouterOptions::default());
    let record = writer.set_rules(board, rules).await.map_err(|e| match e {
        leaderboard_store::Error::RulesFixed { .. } => {
            ApiError::Conflict { code: "rules_fixed", message: e.to_string() }
        }
        leaderboard_store::Error::ResetFixed { .. } => {
            ApiError::Conflict { code: "reset_fixed", message: e.to_string() }
        }
        leaderboard_store::Error::OperatorLayout { .. } => {
            ApiError::Conflict { code: "operator_layout", message: e.to_string() }
        }
        other => failed(&other),
    })?;
    if record.rules.reset.is_some_and(|r| r.is_manual())
        && writer.start_manual(board, s.clock.now_ms()).await.map_err(|e| failed(&e))?.is_some()
    {
        // The first season starts now (a board that has seasons keeps them).
        admin.keep_resets(board).await?;
    }
    s.forget(board);
    let described = describe(admin, board).await?;
    described.map(|line| AdminBoard { rules: record.rules.into(), ..line }).ok_or_else(|| ApiError::Conflict {
        code: "board_deleted",
        message: format!("board {board} was deleted meanwhile"),
    })
}

/// A board as the admin routes show it; `None` when it has no record (deleted).
async fn describe(admin: &Admin, board: &BoardId) -> Result<Option<AdminBoard>, ApiError> {
    let Some((router, _)) =
        Router::for_board(admin.store(), board, RouterOptions::default()).await.map_err(|e| failed(&e))?
    else {
        return Ok(None);
    };
    let stats = router.stats(board).await.map_err(|e| failed(&e))?;
    Ok(Some(AdminBoard {
        board: board.to_string(),
        layout: stats.layout,
        migrating_to: stats.migrating_to,
        total: stats.total,
        rules: stats.rules.into(),
    }))
}

/// Deletes `board`; whether it was a `manual` board (whose resets the players log keeps).
async fn delete(admin: &Admin, board: &BoardId) -> Result<bool, ApiError> {
    let Some((router, record)) =
        Router::for_board(admin.store(), board, RouterOptions::default()).await.map_err(|e| failed(&e))?
    else {
        return Err(ApiError::NotFound { code: "board_not_found", message: format!("board {board} does not exist") });
    };
    router.delete_board(board).await.map_err(|e| failed(&e))?;
    Ok(record.rules.reset.is_some_and(|r| r.is_manual()))
}
