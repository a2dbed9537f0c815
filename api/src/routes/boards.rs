//! The leaderboard routes.

use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use leaderboard_contract::BoardId;

use crate::backend::Dated;
use crate::clock::rfc3339;
use crate::dto::{AroundResponse, BoardResponse, EntryDto, PlayerResponse, ShardDto, TopResponse};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, AroundParams, BoardPath, PageParams, PlayerPath};
use crate::season::{SeasonParams, resolve};
use crate::state::AppState;

/// Milliseconds since the data of a cached answer was read.
pub const DATA_AGE_HEADER: HeaderName = HeaderName::from_static("x-data-age-ms");
/// `true` when a cached answer is served because refreshing it failed.
pub const STALE_HEADER: HeaderName = HeaderName::from_static("x-data-stale");

/// 404 for a board (or a season, by its stored name) without players.
pub(crate) fn board_not_found(stored: &BoardId) -> ApiError {
    let message = match crate::season::names(stored) {
        (board, Some(season)) => format!("season {season} of board {board} has no players"),
        (board, None) => format!("board {board} has no players"),
    };
    ApiError::NotFound { code: "board_not_found", message }
}

/// A page of the board, score descending then player id ascending.
///
/// Pages inside the first rows come from the in-memory cache (see the
/// `x-data-age-ms` and `x-data-stale` headers); deeper pages from Redis.
#[utoipa::path(get, path = "/v1/boards/{board}/top", tag = "boards",
    params(("board" = String, Path, description = "Board name, 1-64 bytes of [A-Za-z0-9_.-]"), PageParams, SeasonParams),
    responses(
        (status = 200, description = "The page", body = TopResponse,
            headers(("x-data-age-ms" = u64, description = "Age of cached data in milliseconds"),
                    ("etag" = String, description = "Tag of the cached page (first rows only); send it back in If-None-Match"),
                    ("cache-control" = String, description = "public, max-age = the cache refresh interval (first rows only)"),
                    ("x-data-stale" = bool, description = "Present when Redis is unreachable and the last cache is served"))),
        (status = 304, description = "Not modified: the page still has the tag sent in If-None-Match"),
        (status = 400, description = "Invalid board, limit, offset or season", body = ErrorBody),
        (status = 404, description = "The board (or the season asked for) has no players, or no such season (`no_seasons`, `season_not_found`)", body = ErrorBody),
        (status = 409, description = "The board is stored with another layout than this api's (`layout_mismatch`)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Redis unavailable and nothing cached", body = ErrorBody)))]
pub async fn top(
    State(s): State<AppState>,
    BoardPath(board): BoardPath,
    ApiQuery(params): ApiQuery<PageParams>,
    ApiQuery(season): ApiQuery<SeasonParams>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (offset, limit) = params.checked()?;
    let target = resolve(&s, board, &season).await?;
    let board = target.stored.clone();
    if offset + limit <= s.cache.rows() {
        let cached = s.cache.get(&s.backend, &board).await?;
        let snap = &cached.snapshot;
        if snap.total == 0 {
            return Err(board_not_found(&board));
        }
        let etag = snap.etag(offset, limit);
        let unchanged = request_headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim() == etag || t.trim() == "*");
        let mut response = if unchanged {
            StatusCode::NOT_MODIFIED.into_response()
        } else if offset == 0 && limit == s.cache.rows() {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], snap.page.clone()).into_response()
        } else {
            let entries = snap.entries.iter().skip(offset as usize).take(limit as usize).map(EntryDto::from).collect();
            Json(TopResponse {
                board: target.board.to_string(),
                season: target.season_id(),
                as_of: rfc3339(snap.as_of),
                total: snap.total,
                entries,
            })
            .into_response()
        };
        let age = SystemTime::now().duration_since(snap.as_of).unwrap_or_default().as_millis();
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, v);
        }
        let max_age = format!("public, max-age={}", s.cache.max_age().as_secs().max(1));
        if let Ok(v) = HeaderValue::from_str(&max_age) {
            headers.insert(header::CACHE_CONTROL, v);
        }
        if let Ok(v) = HeaderValue::from_str(&age.to_string()) {
            headers.insert(DATA_AGE_HEADER, v);
        }
        if cached.stale {
            headers.insert(STALE_HEADER, HeaderValue::from_static("true"));
        }
        return Ok(response);
    }
    let b = &board;
    let frozen = s.seasons.frozen_at(&s.backend, b).await?;
    let Dated { value: page, as_of } = s.backend.read(|r| async move { r.top(b, offset, limit).await }).await?;
    if page.total == 0 {
        return Err(board_not_found(&board));
    }
    let body = TopResponse {
        board: target.board.to_string(),
        season: target.season_id(),
        as_of: rfc3339(frozen.unwrap_or(as_of)),
        total: page.total,
        entries: page.entries.iter().map(EntryDto::from).collect(),
    };
    Ok(Json(body).into_response())
}

async fn missing(s: &AppState, board: &BoardId, player: &leaderboard_contract::PlayerId) -> ApiError {
    match s.backend.call(|r| async move { r.total(board).await }).await {
        Ok(0) => board_not_found(board),
        Ok(_) => ApiError::NotFound {
            code: "player_not_found",
            message: match crate::season::names(board) {
                (b, Some(season)) => format!("player {player} has no score in season {season} of board {b}"),
                (b, None) => format!("player {player} has no score on board {b}"),
            },
        },
        Err(e) => e,
    }
}

/// A player's score, rank, the board's total and the player's percentile.
#[utoipa::path(get, path = "/v1/boards/{board}/players/{player}", tag = "boards",
    params(("board" = String, Path, description = "Board name"),
           ("player" = String, Path, description = "Player id, 1-64 bytes of [A-Za-z0-9_.:@-]"), SeasonParams),
    responses(
        (status = 200, description = "The player's standing", body = PlayerResponse),
        (status = 400, description = "Invalid board, player or season", body = ErrorBody),
        (status = 404, description = "No such board, season or player", body = ErrorBody),
        (status = 409, description = "The board is stored with another layout than this api's (`layout_mismatch`)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody)))]
pub async fn player(
    State(s): State<AppState>,
    PlayerPath(board, player): PlayerPath,
    ApiQuery(season): ApiQuery<SeasonParams>,
) -> Result<Json<PlayerResponse>, ApiError> {
    let target = resolve(&s, board, &season).await?;
    let (b, p) = (&target.stored, &player);
    let read = || async {
        let frozen = s.seasons.frozen_at(&s.backend, b).await?;
        let dated = s.backend.read(|r| async move { r.standing(b, p).await }).await?;
        Ok(Dated { as_of: frozen.unwrap_or(dated.as_of), ..dated })
    };
    let Dated { value: standing, as_of } = s.lookups.run((b.clone(), player.clone()), read).await?;
    let Some(st) = standing else { return Err(missing(&s, b, &player).await) };
    Ok(Json(PlayerResponse {
        board: target.board.to_string(),
        season: target.season_id(),
        player: player.to_string(),
        score: st.score,
        rank: st.rank,
        total: st.total,
        percentile: st.percentile,
        as_of: rfc3339(as_of),
    }))
}

/// The rows just above and below a player.
#[utoipa::path(get, path = "/v1/boards/{board}/players/{player}/around", tag = "boards",
    params(("board" = String, Path, description = "Board name"),
           ("player" = String, Path, description = "Player id"), AroundParams, SeasonParams),
    responses(
        (status = 200, description = "The player's neighbourhood", body = AroundResponse),
        (status = 400, description = "Invalid board, player, radius or season", body = ErrorBody),
        (status = 404, description = "No such board, season or player", body = ErrorBody),
        (status = 409, description = "The board is stored with another layout than this api's (`layout_mismatch`)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody)))]
pub async fn around(
    State(s): State<AppState>,
    PlayerPath(board, player): PlayerPath,
    ApiQuery(params): ApiQuery<AroundParams>,
    ApiQuery(season): ApiQuery<SeasonParams>,
) -> Result<Json<AroundResponse>, ApiError> {
    let radius = params.checked()?;
    let target = resolve(&s, board, &season).await?;
    let (b, p) = (&target.stored, &player);
    let frozen = s.seasons.frozen_at(&s.backend, b).await?;
    let Dated { value: rows, as_of } = s.backend.read(|r| async move { r.around(b, p, radius).await }).await?;
    let Some(rows) = rows else { return Err(missing(&s, b, &player).await) };
    Ok(Json(AroundResponse {
        board: target.board.to_string(),
        season: target.season_id(),
        player: player.to_string(),
        as_of: rfc3339(frozen.unwrap_or(as_of)),
        entries: rows.iter().map(EntryDto::from).collect(),
    }))
}

/// The board's total, sharding strategy, and each shard's score range and size.
#[utoipa::path(get, path = "/v1/boards/{board}", tag = "boards",
    params(("board" = String, Path, description = "Board name"), SeasonParams),
    responses(
        (status = 200, description = "Board statistics", body = BoardResponse),
        (status = 400, description = "Invalid board or season", body = ErrorBody),
        (status = 404, description = "The board (or the season asked for) has no players, or no such season (`no_seasons`, `season_not_found`)", body = ErrorBody),
        (status = 409, description = "The board is stored with another layout than this api's (`layout_mismatch`)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody)))]
pub async fn board(
    State(s): State<AppState>,
    BoardPath(board): BoardPath,
    ApiQuery(season): ApiQuery<SeasonParams>,
) -> Result<Json<BoardResponse>, ApiError> {
    let target = resolve(&s, board, &season).await?;
    let b = &target.stored;
    let frozen = s.seasons.frozen_at(&s.backend, b).await?;
    let Dated { value: stats, as_of } = s.backend.read(|r| async move { r.stats(b).await }).await?;
    if stats.total == 0 {
        return Err(board_not_found(b));
    }
    // A season's answer shows its board's rules (the season stores the same order and ties).
    let rules = if target.season.is_some() {
        let parent = &target.board;
        s.backend.call(|r| async move { r.rules(parent).await }).await?
    } else {
        stats.rules
    };
    Ok(Json(BoardResponse {
        board: target.board.to_string(),
        season: target.season_id(),
        as_of: rfc3339(frozen.unwrap_or(as_of)),
        total: stats.total,
        strategy: stats.strategy.to_string(),
        layout: stats.layout,
        shards: stats
            .shards
            .iter()
            .map(|sh| ShardDto { index: sh.index, min_score: sh.min_score, max_score: sh.max_score, size: sh.size })
            .collect(),
        rank_error_bound: stats.rank_error_bound,
        migrating_to: stats.migrating_to,
        rules: rules.into(),
    }))
}
