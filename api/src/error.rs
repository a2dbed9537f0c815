//! The one error type of the HTTP layer and its JSON rendering.
//!
//! Every error leaves as `{"error":{"code","message"}}` with a status that
//! says whose fault it was. Internal details never reach the client: 5xx
//! causes are logged here, in `into_response`'s caller-free path, by the
//! constructor that sees them ([`ApiError::from_router`]).
//!
//! The error rows the OpenAPI document shows are written once here too:
//! [`ReadErrors`] for every read route, [`AdminErrors`] for every admin route.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// A path or query parameter is invalid (400).
    #[error("{message}")]
    BadRequest {
        /// Stable code, e.g. `invalid_board`.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The board or player has no score (404).
    #[error("{message}")]
    NotFound {
        /// `board_not_found` or `player_not_found`.
        code: &'static str,
        /// What was not found.
        message: String,
    },
    /// The request conflicts with how the data is stored (409), e.g. the
    /// board's recorded layout is not the one this api is configured with.
    #[error("{message}")]
    Conflict {
        /// `layout_mismatch`.
        code: &'static str,
        /// What conflicts, naming both sides.
        message: String,
    },
    /// An admin route without a valid bearer token (401, with `WWW-Authenticate: Bearer`).
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// A valid token without the scope the route needs (403).
    #[error("the token lacks the {scope} scope")]
    Forbidden {
        /// The scope the route needs.
        scope: &'static str,
    },
    /// The client exceeded its rate (429).
    #[error("rate limit exceeded")]
    RateLimited {
        /// When to retry.
        retry_after: Duration,
    },
    /// The store lost its data and is not recovered yet (503; [`crate::loss`]).
    #[error("the leaderboard store lost its data and is being recovered")]
    StoreLost,
    /// Redis is down or the circuit breaker is open (503).
    #[error("the leaderboard store is unavailable")]
    Unavailable {
        /// When to retry.
        retry_after: Duration,
    },
    /// An erasure or a ban is in effect, but the players log did not take it (503): the call is
    /// idempotent, so the client retries it.
    #[error("the change is in effect, but the players log did not keep it: retry the call")]
    NotKept,
    /// The service is at its concurrency limit (503).
    #[error("the service is overloaded")]
    Overloaded,
    /// As many live streams as this process serves are open (503 `too_many_streams`,
    /// `--watch-max-streams`).
    #[error("this server has as many live streams open as it serves: retry later or elsewhere")]
    TooManyStreams,
    /// The client has as many live streams open as one client may (429 `too_many_streams`,
    /// `--watch-per-client`).
    #[error("this client has as many live streams open as one client may")]
    ClientStreams,
    /// The request took longer than the request timeout (503).
    #[error("the request timed out")]
    Timeout,
    /// An admin request took longer than `--admin-timeout` (503 `timeout`); a change it started
    /// goes on to its end ([`crate::admin::Admin::detach`]).
    #[error("the request timed out; a change it started goes on: read its state again before retrying")]
    AdminTimeout,
    /// Anything else (500); the cause is logged, never sent.
    #[error("internal error")]
    Internal,
}

/// The error body of every non-2xx response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    #[schema(example = "invalid_limit")]
    pub code: String,
    /// Human-readable explanation.
    #[schema(example = "limit must be 1..=1000")]
    pub message: String,
}

/// The error responses every read route documents (`responses(ReadErrors, ..)`
/// in its `#[utoipa::path]`); never constructed: the document's rows only,
/// each variant's doc line its description.
#[derive(utoipa::IntoResponses)]
pub enum ReadErrors {
    /// Invalid parameter, body or season; the error code says which (`invalid_board`, `invalid_limit`, ...)
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No such board, season or player (`board_not_found`, `player_not_found`, `no_seasons`, `season_not_found`)
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The board is stored with another layout than this api's (`layout_mismatch`)
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Rate limited
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// Redis unavailable (and, for the first rows of `/top`, nothing cached)
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The error responses every admin route documents (`responses(AdminErrors, ..)`);
/// a route adds the rows of its own (400, 404, 409).
#[derive(utoipa::IntoResponses)]
pub enum AdminErrors {
    /// No valid bearer token
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token lacks the admin scope
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Redis unavailable; or (`players_log_unavailable`) an erasure or ban is in effect but the players log did not keep it: retry; or (`overloaded`) as many changes as may run at once are running; or (`timeout`) no answer within the admin timeout: a change it started goes on, read its state before retrying
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

impl ApiError {
    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }

    /// Maps a store error: unavailability is a 503, the rest is internal (and logged).
    pub fn from_router(err: &leaderboard_store::Error) -> Self {
        if let leaderboard_store::Error::LayoutMismatch { .. } = err {
            tracing::error!(error = %err, "layout mismatch: fix LB_LAYOUT or migrate the board");
            return Self::Conflict { code: "layout_mismatch", message: err.to_string() };
        }
        if err.is_unavailable() {
            Self::Unavailable { retry_after: Duration::from_secs(1) }
        } else {
            tracing::error!(error = %err, "leaderboard store error");
            Self::Internal
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    fn parts(&self) -> (StatusCode, &'static str, String, Option<Duration>) {
        match self {
            Self::BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message.clone(), None),
            Self::NotFound { code, message } => (StatusCode::NOT_FOUND, code, message.clone(), None),
            Self::Conflict { code, message } => (StatusCode::CONFLICT, code, message.clone(), None),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", self.to_string(), None),
            Self::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden", self.to_string(), None),
            Self::RateLimited { retry_after } => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited", self.to_string(), Some(*retry_after))
            }
            Self::Unavailable { retry_after } => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", self.to_string(), Some(*retry_after))
            }
            Self::StoreLost => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_lost", self.to_string(), Some(Duration::from_secs(5)))
            }
            Self::NotKept => (
                StatusCode::SERVICE_UNAVAILABLE,
                "players_log_unavailable",
                self.to_string(),
                Some(Duration::from_secs(1)),
            ),
            Self::Overloaded => {
                (StatusCode::SERVICE_UNAVAILABLE, "overloaded", self.to_string(), Some(Duration::from_secs(1)))
            }
            Self::TooManyStreams => {
                (StatusCode::SERVICE_UNAVAILABLE, "too_many_streams", self.to_string(), Some(Duration::from_secs(5)))
            }
            Self::ClientStreams => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_streams", self.to_string(), Some(Duration::from_secs(5)))
            }
            Self::Timeout | Self::AdminTimeout => {
                (StatusCode::SERVICE_UNAVAILABLE, "timeout", self.to_string(), Some(Duration::from_secs(1)))
            }
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal", self.to_string(), None),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, retry_after) = self.parts();
        let body = ErrorBody { error: ErrorDetail { code: code.to_string(), message } };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(after) = retry_after {
            let secs = after.as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_retry_after() {
        let r = ApiError::Unavailable { retry_after: Duration::from_millis(200) }.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(ApiError::bad_request("x", "y").into_response().status(), StatusCode::BAD_REQUEST);
        assert_eq!(ApiError::Internal.into_response().status(), StatusCode::INTERNAL_SERVER_ERROR);
        let limited = ApiError::RateLimited { retry_after: Duration::from_secs(3) }.into_response();
        assert_eq!(
            (limited.status(), &limited.headers()[header::RETRY_AFTER]),
            (StatusCode::TOO_MANY_REQUESTS, &HeaderValue::from_static("3"))
        );
    }
}
