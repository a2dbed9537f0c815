//! Request extractors whose rejections use the API's JSON error format.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use leaderboard_contract::{BoardId, PlayerId};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Bounds of the query parameters.
pub mod bounds {
    /// Largest `limit` of a page.
    pub const MAX_LIMIT: u64 = 1000;
    /// Largest `offset` of a page: deeper players are reached with `around`.
    pub const MAX_OFFSET: u64 = 10_000;
    /// Largest `radius` of an around-list.
    pub const MAX_RADIUS: u64 = 50;
}

/// A JSON request body read as `T`, which must be an object: serde would also read a struct
/// from an array, positionally (`[null, null]`), which no client means.
///
/// # Errors
/// 400 `invalid_body` for anything but an object of `T`'s fields.
pub fn object_body<T: DeserializeOwned>(object: serde_json::Map<String, serde_json::Value>) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))
}

/// Query parameters, rejected as 400 JSON.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Self(v)),
            Err(e) => Err(query_error(&e)),
        }
    }
}

fn query_error(e: &QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", e.body_text())
}

/// A board name from the path, validated.
#[derive(Debug)]
pub struct BoardPath(pub BoardId);

/// `/players/{player}` or `/players/{player}:watch`, validated: the router cannot tell them
/// apart (a path segment is a parameter or a literal, not both), so the suffix is read here.
/// A player whose id ends in `:watch` is therefore read through `players:lookup`.
#[derive(Debug)]
pub struct PlayerRoute {
    /// The board.
    pub board: BoardId,
    /// The player.
    pub player: PlayerId,
    /// The path asks for the live stream.
    pub watch: bool,
}

/// A player alone from the path, validated (the admin routes about players).
#[derive(Debug)]
pub struct PlayerIdPath(pub PlayerId);

/// A board and player from the path, validated.
#[derive(Debug)]
pub struct PlayerPath(pub BoardId, pub PlayerId);

fn path_error(e: &PathRejection) -> ApiError {
    ApiError::bad_request("invalid_path", e.body_text())
}

pub(crate) fn board(raw: String) -> Result<BoardId, ApiError> {
    BoardId::new(raw).map_err(|e| ApiError::bad_request("invalid_board", format!("board {e}")))
}

fn player(raw: String) -> Result<PlayerId, ApiError> {
    PlayerId::new(raw).map_err(|e| ApiError::bad_request("invalid_player", format!("player {e}")))
}

impl<S: Send + Sync> FromRequestParts<S> for BoardPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|e| path_error(&e))?;
        Ok(Self(board(raw)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PlayerIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|e| path_error(&e))?;
        Ok(Self(player(raw)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PlayerPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((b, p)) =
            Path::<(String, String)>::from_request_parts(parts, state).await.map_err(|e| path_error(&e))?;
        Ok(Self(board(b)?, player(p)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PlayerRoute {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((b, p)) =
            Path::<(String, String)>::from_request_parts(parts, state).await.map_err(|e| path_error(&e))?;
        let (p, watch) = match p.strip_suffix(":watch") {
            Some(watched) => (watched.to_string(), true),
            None => (p, false),
        };
        Ok(Self { board: board(b)?, player: player(p)?, watch })
    }
}

/// `?limit=&offset=` of a top page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Rows to return, 1..=1000 (default 100).
    pub limit: Option<u64>,
    /// Rows to skip, 0..=10000 (default 0).
    pub offset: Option<u64>,
}

impl PageParams {
    /// Validated `(offset, limit)`.
    ///
    /// # Errors
    /// 400 when out of bounds.
    pub fn checked(&self) -> Result<(u64, u64), ApiError> {
        let limit = self.limit.unwrap_or(100);
        let offset = self.offset.unwrap_or(0);
        if !(1..=bounds::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request("invalid_limit", format!("limit must be 1..={}", bounds::MAX_LIMIT)));
        }
        if offset > bounds::MAX_OFFSET {
            return Err(ApiError::bad_request(
                "invalid_offset",
                format!(
                    "offset must be 0..={}; use /players/{{player}}/around deeper in the board",
                    bounds::MAX_OFFSET
                ),
            ));
        }
        Ok((offset, limit))
    }
}

/// `?limit=` of a live stream of the top.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WatchParams {
    /// Rows of each event, 1..=the api's cached rows (`--top-cache-rows`, default 100); default 10.
    pub limit: Option<u64>,
}

impl WatchParams {
    /// Validated limit: the stream is served from the cache, so at most its `rows`.
    ///
    /// # Errors
    /// 400 when out of bounds.
    pub fn checked(&self, rows: u64) -> Result<u64, ApiError> {
        let limit = self.limit.unwrap_or(10.min(rows));
        if !(1..=rows).contains(&limit) {
            return Err(ApiError::bad_request("invalid_limit", format!("limit must be 1..={rows}")));
        }
        Ok(limit)
    }
}

/// `?radius=` of an around-list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AroundParams {
    /// Rows above and below the player, 0..=50 (default 5).
    pub radius: Option<u64>,
}

impl AroundParams {
    /// Validated radius.
    ///
    /// # Errors
    /// 400 when out of bounds.
    pub fn checked(&self) -> Result<u64, ApiError> {
        let radius = self.radius.unwrap_or(5);
        if radius > bounds::MAX_RADIUS {
            return Err(ApiError::bad_request("invalid_radius", format!("radius must be 0..={}", bounds::MAX_RADIUS)));
        }
        Ok(radius)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_bounds() {
        assert_eq!(PageParams { limit: None, offset: None }.checked().expect("defaults"), (0, 100));
        assert!(PageParams { limit: Some(0), offset: None }.checked().is_err());
        assert!(PageParams { limit: Some(1001), offset: None }.checked().is_err());
        assert!(PageParams { limit: Some(5), offset: Some(10_001) }.checked().is_err());
        assert_eq!(AroundParams { radius: None }.checked().expect("default"), 5);
        assert!(AroundParams { radius: Some(51) }.checked().is_err());
        assert_eq!(WatchParams { limit: None }.checked(100).expect("default"), 10);
        assert_eq!(WatchParams { limit: None }.checked(5).expect("default under few rows"), 5);
        assert!(WatchParams { limit: Some(0) }.checked(100).is_err());
        assert!(WatchParams { limit: Some(101) }.checked(100).is_err());
    }
}
