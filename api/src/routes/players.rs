//! The admin routes about players (`/v1/admin/players/`): erase one, ban one
//! or lift the ban, and say where one stands
//! (docs/contract.md#players-erasure-and-bans).
//!
//! Every change is kept in the players log too, when this api has one
//! (`--brokers`): the call answers only once the log has it, and answers 503
//! `players_log_unavailable` (retry: every call is idempotent) otherwise.
//!
//! Erasing and banning change what every route answers, so after the store
//! is changed this api drops every cached page and closed-season total
//! before it answers, and no later player lookup shares one in flight; other
//! api processes do the same when they next read the registry's version
//! (every `--watermark-refresh`). Each request is audited, as every admin route.
//!
//! Each change runs in a task of its own ([`Admin::detach`]): an erasure or a ban walks every
//! board of the store, and one cut short by `--admin-timeout` or a client gone away would leave
//! the erasure unfinished, the players log unwritten, the caches full and no audit entry.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::clock::system_ms;
use leaderboard_store::marker::registry::{self, AllBoards, Ban, BanScope};
use leaderboard_store::players::remove::Removed;
use leaderboard_store::players::standings;
use leaderboard_store::{Router, RouterOptions};

use crate::admin::{Admin, status_code};
use crate::clock::rfc3339;
use crate::dto::{AllBoardsWord, BanBoards, BanDto, BanRequest, PlayerOnBoard, PlayerRemoved, PlayerStatus};
use crate::error::{AdminErrors, ApiError, ErrorBody};
use crate::extract::PlayerIdPath;
use crate::routes::admin::{admin, audit_refusal, failed, json_body, outcome};
use crate::state::AppState;

/// Largest `PUT /v1/admin/players/{player}/ban` body.
pub const MAX_BAN_BODY_BYTES: usize = 8 * 1024;

/// Erases a player: their scores leave every board and season (closed ones
/// included) and every layout; their records stamped before now are never
/// applied again. Idempotent: erasing again moves the erasure's time forward.
#[utoipa::path(delete, path = "/v1/admin/players/{player}", tag = "admin", security(("bearer" = [])),
    params(("player" = String, Path, description = "Player id")),
    responses((status = 200, description = "Erased: where the player was taken out of", body = PlayerRemoved), AdminErrors))]
pub async fn erase(
    State(s): State<AppState>,
    PlayerIdPath(player): PlayerIdPath,
    headers: HeaderMap,
) -> Result<Json<PlayerRemoved>, ApiError> {
    let admin = admin(&s)?.clone();
    let who = admin.authorize(&headers, "erase_player", player.as_str()).await?;
    let change = {
        let (s, admin, who, player) = (s.clone(), admin.clone(), who.clone(), player.clone());
        async move {
            let result = match writer(&s, &admin).erase_player(&player).await {
                Ok(erased) => admin.keep(&player).await.map(|()| erased),
                Err(e) => Err(failed(&e)),
            };
            s.forget_answers();
            admin.audit(&who, "erase_player", player.as_str(), &outcome(&result)).await;
            result
        }
    };
    let erased = admin.detach(&who, "erase_player", player.as_str(), change).await?;
    Ok(Json(answer(&player, erased.removed, Some(erased.at_ms), None)))
}

/// Bans a player from some boards or all: they leave those boards (and,
/// when asked, their closed seasons, which are amended), and their events
/// for them go to the dead letters (`banned`) until the ban is lifted. A new
/// ban replaces the player's earlier one.
#[utoipa::path(put, path = "/v1/admin/players/{player}/ban", tag = "admin", security(("bearer" = [])),
    params(("player" = String, Path, description = "Player id")),
    request_body(content = BanRequest, description = "The ban; at most 8 KiB"),
    responses(
        (status = 200, description = "Banned: where the player was taken out of", body = PlayerRemoved),
        (status = 400, description = "Invalid body: boards, reason or size", body = ErrorBody),
        AdminErrors))]
pub async fn ban(
    State(s): State<AppState>,
    PlayerIdPath(player): PlayerIdPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PlayerRemoved>, ApiError> {
    let admin = admin(&s)?.clone();
    let who = admin.authorize(&headers, "ban_player", player.as_str()).await?;
    let parsed = json_body::<BanRequest>(&headers, body).and_then(|request| to_ban(request, system_ms()));
    let ban = audit_refusal(&admin, &who, "ban_player", player.as_str(), parsed).await?;
    let change = {
        let (s, admin, who, player, ban) = (s.clone(), admin.clone(), who.clone(), player.clone(), ban.clone());
        async move {
            let result = match writer(&s, &admin).ban_player(&player, &ban).await {
                Ok(removed) => admin.keep(&player).await.map(|()| removed),
                Err(e) => Err(failed(&e)),
            };
            s.forget_answers();
            let outcome = result.as_ref().map_or_else(status_code, |_| format!("ok: {}", ban.reason));
            admin.audit(&who, "ban_player", player.as_str(), &outcome).await;
            result
        }
    };
    let removed = admin.detach(&who, "ban_player", player.as_str(), change).await?;
    Ok(Json(answer(&player, removed, None, Some(&ban))))
}

/// Lifts a player's ban for future events (what it removed stays removed).
#[utoipa::path(delete, path = "/v1/admin/players/{player}/ban", tag = "admin", security(("bearer" = [])),
    params(("player" = String, Path, description = "Player id")),
    responses(
        (status = 204, description = "Lifted"),
        (status = 404, description = "The player is not banned (`not_banned`)", body = ErrorBody),
        AdminErrors))]
pub async fn unban(
    State(s): State<AppState>,
    PlayerIdPath(player): PlayerIdPath,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let admin = admin(&s)?.clone();
    let who = admin.authorize(&headers, "unban_player", player.as_str()).await?;
    let change = {
        let (admin, who, player) = (admin.clone(), who.clone(), player.clone());
        async move {
            // Kept in the log even when there was no ban: a retry after a lift the log did not take
            // finds none in Redis, and must still bring the log up to date.
            let result = match registry::unban(admin.store(), &player).await {
                Ok(lifted) => admin.keep(&player).await.and_then(|()| {
                    if lifted {
                        Ok(StatusCode::NO_CONTENT)
                    } else {
                        Err(ApiError::NotFound {
                            code: "not_banned",
                            message: format!("player {player} is not banned"),
                        })
                    }
                }),
                Err(e) => Err(failed(&e)),
            };
            admin.audit(&who, "unban_player", player.as_str(), &outcome(&result)).await;
            result
        }
    };
    admin.detach(&who, "unban_player", player.as_str(), change).await
}

/// Where a player stands: erased or not, banned or not, and their standing
/// on every board (all-time) they have a score on.
#[utoipa::path(get, path = "/v1/admin/players/{player}", tag = "admin", security(("bearer" = [])),
    params(("player" = String, Path, description = "Player id")),
    responses((status = 200, description = "The player's standing and marks", body = PlayerStatus), AdminErrors))]
pub async fn status(
    State(s): State<AppState>,
    PlayerIdPath(player): PlayerIdPath,
    headers: HeaderMap,
) -> Result<Json<PlayerStatus>, ApiError> {
    let admin = admin(&s)?;
    let who = admin.authorize(&headers, "player_status", player.as_str()).await?;
    let result = describe(admin, &player).await;
    admin.audit(&who, "player_status", player.as_str(), &outcome(&result)).await;
    result.map(Json)
}

async fn describe(admin: &Admin, player: &PlayerId) -> Result<PlayerStatus, ApiError> {
    let marks = registry::status(admin.store(), player).await.map_err(|e| failed(&e))?;
    let standings = standings::everywhere(admin.store(), player).await.map_err(|e| failed(&e))?;
    let boards = standings
        .boards
        .iter()
        .map(|b| PlayerOnBoard { board: b.board.to_string(), score: b.standing.score, rank: b.standing.rank })
        .collect();
    Ok(PlayerStatus {
        player: player.to_string(),
        erased_at: marks.erased_at_ms.map(time_of),
        erasure_unfinished: marks.erasure_unfinished,
        ban: marks.ban.as_ref().map(ban_dto),
        boards,
        truncated: standings.truncated,
    })
}

/// The router the admin routes write through (the admin connection, this api's layout for new boards).
fn writer(s: &AppState, admin: &Arc<Admin>) -> Router {
    Router::new(admin.store().clone(), s.backend.router().spec().clone(), RouterOptions::default())
}

fn to_ban(request: BanRequest, at_ms: i64) -> Result<Ban, ApiError> {
    let boards = match request.boards {
        BanBoards::All(_) => BanScope::ALL,
        BanBoards::Listed(names) => BanScope::Boards(
            names
                .into_iter()
                .map(|n| BoardId::new(n).map_err(|e| ApiError::bad_request("invalid_ban", format!("board {e}"))))
                .collect::<Result<_, _>>()?,
        ),
    };
    let ban = Ban { boards, closed_seasons: request.closed_seasons, reason: request.reason, at_ms };
    ban.validate().map_err(|e| ApiError::bad_request("invalid_ban", e.to_string()))?;
    Ok(ban)
}

fn ban_dto(ban: &Ban) -> BanDto {
    BanDto {
        boards: match &ban.boards {
            BanScope::All(AllBoards::All) => BanBoards::All(AllBoardsWord::All),
            BanScope::Boards(boards) => BanBoards::Listed(boards.iter().map(ToString::to_string).collect()),
        },
        closed_seasons: ban.closed_seasons,
        reason: ban.reason.clone(),
        at: time_of(ban.at_ms),
    }
}

fn answer(player: &PlayerId, removed: Removed, erased_at_ms: Option<i64>, ban: Option<&Ban>) -> PlayerRemoved {
    let Removed { boards, amended } = removed;
    PlayerRemoved {
        player: player.to_string(),
        erased_at: erased_at_ms.map(time_of),
        ban: ban.map(ban_dto),
        boards: boards.iter().map(ToString::to_string).collect(),
        amended: amended.iter().map(ToString::to_string).collect(),
    }
}

fn time_of(ms: i64) -> String {
    rfc3339(crate::season::time_of(ms))
}
