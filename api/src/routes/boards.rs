//! The leaderboard routes.

use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use leaderboard_contract::{BoardId, PlayerId};

use super::read::{self, Answer, ensure_players};
use crate::cache::Cached;
use crate::clock::rfc3339;
use crate::dto::{AroundResponse, BoardResponse, EntryDto, PlayerResponse, ShardDto, TopResponse};
use crate::error::{ApiError, ReadErrors};
use crate::extract::{ApiQuery, AroundParams, BoardPath, PageParams, PlayerPath};
use crate::season::{SeasonParams, Target};
use crate::state::AppState;

/// Milliseconds since the data of a cached answer was read.
pub const DATA_AGE_HEADER: HeaderName = HeaderName::from_static("x-data-age-ms");
/// `true` when a cached answer is served because refreshing it failed.
pub const STALE_HEADER: HeaderName = HeaderName::from_static("x-data-stale");

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
        ReadErrors))]
pub async fn top(
    State(s): State<AppState>,
    BoardPath(board): BoardPath,
    ApiQuery(params): ApiQuery<PageParams>,
    ApiQuery(season): ApiQuery<SeasonParams>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (offset, limit) = params.checked()?;
    let target = read::resolve(&s, board, &season).await?;
    if offset + limit <= s.cache.rows() {
        let cached = s.cache.get(&s.backend, &target.stored).await?;
        ensure_players(cached.snapshot.total, &target.stored)?;
        return Ok(cached_page(&s, &target, &cached, Rows { offset, limit }, &request_headers));
    }
    let Answer { target, value: page, as_of } =
        read::answer(&s, target, |r, b| async move { r.top(&b, offset, limit).await }).await?;
    ensure_players(page.total, &target.stored)?;
    let body = TopResponse {
        board: target.board.to_string(),
        season: target.season_id(),
        as_of: rfc3339(as_of),
        total: page.total,
        entries: page.entries.iter().map(EntryDto::from).collect(),
    };
    Ok(Json(body).into_response())
}

/// The rows of a page: `offset..offset + limit`.
#[derive(Debug, Clone, Copy)]
struct Rows {
    offset: u64,
    limit: u64,
}

/// A page inside the cached first rows: `304` when the client holds it
/// (`If-None-Match`), the ready bytes for the full page, else the rows asked
/// for; with the tag, the cache's max age and the data's age.
fn cached_page(s: &AppState, target: &Target, cached: &Cached, rows: Rows, request_headers: &HeaderMap) -> Response {
    let Rows { offset, limit } = rows;
    let snap = &cached.snapshot;
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
    response
}

/// 404 for a player without a row: `board_not_found` when the board (or season) is empty.
pub(crate) async fn missing(s: &AppState, board: &BoardId, player: &PlayerId) -> ApiError {
    match s.backend.call(|r| async move { r.total(board).await }).await {
        Ok(0) => read::board_not_found(board),
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
    responses((status = 200, description = "The player's standing", body = PlayerResponse), ReadErrors))]
pub async fn player(
    State(s): State<AppState>,
    PlayerPath(board, player): PlayerPath,
    ApiQuery(season): ApiQuery<SeasonParams>,
) -> Result<Json<PlayerResponse>, ApiError> {
    let Answer { target, value: standing, as_of } = read::standing(&s, board, &season, &player).await?;
    let Some(st) = standing else { return Err(missing(&s, &target.stored, &player).await) };
    Ok(Json(PlayerResponse::new(&target, &player, st, as_of)))
}

/// The rows just above and below a player.
#[utoipa::path(get, path = "/v1/boards/{board}/players/{player}/around", tag = "boards",
    params(("board" = String, Path, description = "Board name"),
           ("player" = String, Path, description = "Player id"), AroundParams, SeasonParams),
    responses((status = 200, description = "The player's neighbourhood", body = AroundResponse), ReadErrors))]
pub async fn around(
    State(s): State<AppState>,
    PlayerPath(board, player): PlayerPath,
    ApiQuery(params): ApiQuery<AroundParams>,
    ApiQuery(season): ApiQuery<SeasonParams>,
) -> Result<Json<AroundResponse>, ApiError> {
    let radius = params.checked()?;
    let p = &player;
    let Answer { target, value: rows, as_of } =
        read::read(&s, board, &season, |r, b| async move { r.around(&b, p, radius).await }).await?;
    let Some(rows) = rows else { return Err(missing(&s, &target.stored, &player).await) };
    Ok(Json(AroundResponse {
        board: target.board.to_string(),
        season: target.season_id(),
        player: player.to_string(),
        as_of: rfc3339(as_of),
        entries: rows.iter().map(EntryDto::from).collect(),
    }))
}

/// The board's total, sharding strategy, and each shard's score range and size.
#[utoipa::path(get, path = "/v1/boards/{board}", tag = "boards",
    params(("board" = String, Path, description = "Board name"), SeasonParams),
    responses((status = 200, description = "Board statistics", body = BoardResponse), ReadErrors))]
pub async fn board(
    State(s): State<AppState>,
    BoardPath(board): BoardPath,
    ApiQuery(season): ApiQuery<SeasonParams>,
) -> Result<Json<BoardResponse>, ApiError> {
    let Answer { target, value: stats, as_of } =
        read::read(&s, board, &season, |r, b| async move { r.stats(&b).await }).await?;
    ensure_players(stats.total, &target.stored)?;
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
        as_of: rfc3339(as_of),
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
