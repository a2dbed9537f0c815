//! The admin routes (`/v1/admin/`): bearer tokens, scopes, and the audit log.
//!
//! Tokens are configured as SHA-256 hashes with a name and scopes
//! (`--admin-token name:hex:scope+scope`), never in clear. A request's token is
//! hashed and compared with every configured hash in constant time (no early
//! exit, so timing tells nothing about which hash is close). No or an unknown
//! token: 401 with `WWW-Authenticate: Bearer`; a token without the `admin`
//! scope: 403. Every admin request is written to the audit log
//! ([`shard_router::audit`]) with the token's name, never the token; requests
//! refused for their credentials go to the log of refusals instead, at most
//! [`REFUSALS_RECORDED_PER_SECOND`] a second per process (the rest are only
//! counted, `api_admin_refusals_total{recorded="false"}`), so anonymous
//! requests can neither push real entries out nor grow the log's work without bound.
//!
//! Admin writes go to the primary through their own connection: the read path
//! may be reading from replicas.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use leaderboard_contract::BoardId;
use serde::Serialize;
use sha2::{Digest, Sha256};
use shard_router::audit::{self, AuditEntry};
use shard_router::{Router, RouterOptions, Rules, Store, board_record};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::dto::{RulesDto, RulesRequest};
use crate::error::{ApiError, ErrorBody};
use crate::extract::BoardPath;
use crate::state::AppState;

/// The scope the admin routes need.
pub const ADMIN_SCOPE: &str = "admin";

/// Most boards `GET /v1/admin/boards` lists (in name order).
pub const MAX_LISTED_BOARDS: usize = 1000;

/// Most refused admin requests a process writes to the log of refusals (and
/// logs) per second; a burst of as many is allowed.
pub const REFUSALS_RECORDED_PER_SECOND: u32 = 10;

/// The limiter of recorded refusals.
type RefusalLimiter = governor::DefaultDirectRateLimiter;

/// One configured token.
#[derive(Clone)]
pub struct Token {
    name: String,
    digest: [u8; 32],
    scopes: Vec<String>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("name", &self.name).field("scopes", &self.scopes).finish_non_exhaustive()
    }
}

impl Token {
    /// Parses `name:sha256-hex:scope+scope`.
    ///
    /// # Errors
    /// A message naming what is wrong (never echoing the hash).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut parts = spec.splitn(3, ':');
        let (Some(name), Some(hash), Some(scopes)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("an admin token is name:sha256-hex:scopes".into());
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(format!("admin token name {name:?} must be [A-Za-z0-9_.-]+"));
        }
        let digest: [u8; 32] = hex::decode(hash)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| format!("admin token {name}: the hash must be 64 hex digits (SHA-256)"))?;
        let scopes: Vec<String> = scopes.split('+').filter(|s| !s.is_empty()).map(String::from).collect();
        if scopes.is_empty() {
            return Err(format!("admin token {name}: no scope"));
        }
        Ok(Self { name: name.to_string(), digest, scopes })
    }
}

/// The admin side of the api: tokens and a connection to the primary.
pub struct Admin {
    tokens: Vec<Token>,
    store: Store,
    refusals: RefusalLimiter,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("tokens", &self.tokens).finish_non_exhaustive()
    }
}

impl Admin {
    /// Admin routes over `store` (a primary connection) accepting `tokens`.
    pub fn new(tokens: Vec<Token>, store: Store) -> Self {
        let per_second = std::num::NonZeroU32::new(REFUSALS_RECORDED_PER_SECOND).unwrap_or(std::num::NonZeroU32::MIN);
        Self { tokens, store, refusals: governor::RateLimiter::direct(governor::Quota::per_second(per_second)) }
    }

    /// The name of the token presented, if it is one of ours (constant time over all of them).
    fn identify(&self, headers: &HeaderMap) -> Option<&Token> {
        let presented = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for token in &self.tokens {
            if bool::from(token.digest.ct_eq(&digest)) {
                found = Some(token);
            }
        }
        found
    }

    /// Checks the request's token for the admin scope, auditing a refusal.
    async fn authorize(&self, headers: &HeaderMap, action: &str, target: &str) -> Result<String, ApiError> {
        let refused = match self.identify(headers) {
            None => ("anonymous".to_string(), ApiError::Unauthorized),
            Some(t) if !t.scopes.iter().any(|s| s == ADMIN_SCOPE) => {
                (t.name.clone(), ApiError::Forbidden { scope: ADMIN_SCOPE })
            }
            Some(t) => return Ok(t.name.clone()),
        };
        let (who, error) = refused;
        let recorded = self.refusals.check().is_ok();
        metrics::counter!("api_admin_refusals_total", "recorded" => if recorded { "true" } else { "false" })
            .increment(1);
        if recorded {
            let entry = AuditEntry { who, action: action.into(), target: target.into(), result: status_code(&error) };
            tracing::info!(target: "audit", who = entry.who, action, target, result = entry.result, "admin request refused");
            if let Err(e) = audit::record_in(&self.store, audit::Log::Refused, &entry).await {
                tracing::error!(error = %e, action, "could not write the log of refusals");
            }
        }
        Err(error)
    }

    /// Writes one audit entry; a failure to write is logged (the action's own result stands).
    async fn audit(&self, who: &str, action: &str, target: &str, result: &str) {
        let entry = AuditEntry { who: who.into(), action: action.into(), target: target.into(), result: result.into() };
        tracing::info!(target: "audit", who, action, target, result, "admin action");
        if let Err(e) = audit::record(&self.store, &entry).await {
            tracing::error!(error = %e, action, "could not write the audit log");
        }
    }
}

fn status_code(e: &ApiError) -> String {
    e.status().as_u16().to_string()
}

fn admin(s: &AppState) -> Result<&Arc<Admin>, ApiError> {
    s.admin.as_ref().ok_or(ApiError::Unauthorized)
}

/// One board as the admin listing shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminBoard {
    /// The board.
    pub board: String,
    /// Its recorded layout (`range` boards: with their current boundaries).
    pub layout: String,
    /// The layout it is being migrated to, while that runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrating_to: Option<String>,
    /// Players on the board.
    pub total: u64,
    /// The board's rules.
    pub rules: RulesDto,
}

/// `GET /v1/admin/boards`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminBoards {
    /// Boards in name order (at most 1,000).
    pub boards: Vec<AdminBoard>,
    /// Whether more boards exist than listed.
    pub truncated: bool,
}

fn failed(e: &shard_router::Error) -> ApiError {
    ApiError::from_router(e)
}

/// Every board with its layout and total.
#[utoipa::path(get, path = "/v1/admin/boards", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The boards", body = AdminBoards),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The token lacks the admin scope", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody)))]
pub async fn list_boards(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<AdminBoards>, ApiError> {
    let admin = admin(&s)?;
    let who = admin.authorize(&headers, "list_boards", "").await?;
    let result = async {
        let names = board_record::boards(&admin.store).await.map_err(|e| failed(&e))?;
        let truncated = names.len() > MAX_LISTED_BOARDS;
        let mut boards = Vec::new();
        for board in names.into_iter().take(MAX_LISTED_BOARDS) {
            // A board deleted meanwhile is left out.
            boards.extend(describe(admin, &board).await?);
        }
        Ok(AdminBoards { boards, truncated })
    }
    .await;
    admin.audit(&who, "list_boards", "", result.as_ref().map_or_else(status_code, |_| "ok".into()).as_str()).await;
    result.map(Json)
}

/// Removes a board: every key of every layout it uses, and its record.
#[utoipa::path(delete, path = "/v1/admin/boards/{board}", tag = "admin", security(("bearer" = [])),
    params(("board" = String, Path, description = "Board name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The token lacks the admin scope", body = ErrorBody),
        (status = 404, description = "No such board", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody)))]
pub async fn delete_board(
    State(s): State<AppState>,
    BoardPath(board): BoardPath,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let admin = admin(&s)?;
    let who = admin.authorize(&headers, "delete_board", board.as_str()).await?;
    let result = delete(admin, &board).await;
    if result.is_ok() {
        s.cache.forget(&board);
        s.seasons.forget(&board);
        s.backend.forget(&board);
    }
    admin
        .audit(
            &who,
            "delete_board",
            board.as_str(),
            result.as_ref().map_or_else(status_code, |()| "ok".into()).as_str(),
        )
        .await;
    result.map(|()| StatusCode::NO_CONTENT)
}

/// Largest `PUT /v1/admin/boards/{board}` body.
pub const MAX_RULES_BODY_BYTES: usize = 4 * 1024;

/// The body of `PUT /v1/admin/boards/{board}`, validated (after the token:
/// an unauthenticated request learns nothing about bodies). Rejections are 400 JSON.
fn parse_rules(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Rules, ApiError> {
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
    let request: RulesRequest = crate::extract::object_body(object)?;
    let rules = request.rules().map_err(|e| ApiError::bad_request("invalid_rules", e))?;
    rules.validate().map_err(|e| ApiError::bad_request("invalid_rules", e.to_string()))?;
    Ok(rules)
}

/// Sets a board's rules, creating the board (with this api's layout) when it does not exist.
///
/// Order and ties are fixed once a board exists (they decide how it is
/// stored): changing them answers 409 `rules_fixed`. A reset schedule may be
/// added to a board without one (its seasons start with the current one), and
/// is then fixed (409 `reset_fixed`). Bounds, `keep_seasons` and `late_grace`
/// may change at any time; ingest applies them within a second.
#[utoipa::path(put, path = "/v1/admin/boards/{board}", tag = "admin", security(("bearer" = [])),
    params(("board" = String, Path, description = "Board name")),
    request_body(content = RulesRequest, description = "The board's rules; absent fields take their defaults; at most 4 KiB"),
    responses(
        (status = 200, description = "The board with its rules now", body = AdminBoard),
        (status = 400, description = "Invalid body or bounds", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "The token lacks the admin scope", body = ErrorBody),
        (status = 409, description = "Order or ties differ from the existing board's (`rules_fixed`), or its reset schedule (`reset_fixed`)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody)))]
pub async fn put_rules(
    State(s): State<AppState>,
    BoardPath(board): BoardPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AdminBoard>, ApiError> {
    let admin = admin(&s)?;
    let who = admin.authorize(&headers, "set_rules", board.as_str()).await?;
    let rules = match parse_rules(&headers, body) {
        Ok(rules) => rules,
        Err(e) => {
            admin.audit(&who, "set_rules", board.as_str(), &status_code(&e)).await;
            return Err(e);
        }
    };
    let writer = Router::new(admin.store.clone(), s.backend.router().spec().clone(), RouterOptions::default());
    let result = async {
        let record = writer.set_rules(&board, rules).await.map_err(|e| match e {
            shard_router::Error::RulesFixed { .. } => {
                ApiError::Conflict { code: "rules_fixed", message: e.to_string() }
            }
            shard_router::Error::ResetFixed { .. } => {
                ApiError::Conflict { code: "reset_fixed", message: e.to_string() }
            }
            other => failed(&other),
        })?;
        s.cache.forget(&board);
        s.seasons.forget(&board);
        s.backend.forget(&board);
        let described = describe(admin, &board).await?;
        described.map(|line| AdminBoard { rules: record.rules.into(), ..line }).ok_or_else(|| ApiError::Conflict {
            code: "board_deleted",
            message: format!("board {board} was deleted meanwhile"),
        })
    }
    .await;
    let outcome = result.as_ref().map_or_else(status_code, |_| format!("ok: {rules}"));
    admin.audit(&who, "set_rules", board.as_str(), &outcome).await;
    result.map(Json)
}

/// A board as the admin routes show it; `None` when it has no record (deleted).
async fn describe(admin: &Admin, board: &BoardId) -> Result<Option<AdminBoard>, ApiError> {
    let Some((router, _)) =
        Router::for_board(&admin.store, board, RouterOptions::default()).await.map_err(|e| failed(&e))?
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

async fn delete(admin: &Admin, board: &BoardId) -> Result<(), ApiError> {
    let Some((router, _)) =
        Router::for_board(&admin.store, board, RouterOptions::default()).await.map_err(|e| failed(&e))?
    else {
        return Err(ApiError::NotFound { code: "board_not_found", message: format!("board {board} does not exist") });
    };
    router.delete_board(board).await.map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_specs_parse_and_errors_never_echo_the_hash() {
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let token = Token::parse(&format!("ops:{hash}:admin+metrics")).expect("valid");
        assert_eq!(
            (token.name.as_str(), token.scopes.as_slice()),
            ("ops", &["admin".to_string(), "metrics".into()][..])
        );
        assert!(!format!("{token:?}").contains(hash), "Debug hides the hash");
        for bad in
            ["ops", &format!("ops:{hash}"), &format!("ops:{hash}:"), "ops:abcd:admin", &format!("o ps:{hash}:admin")]
        {
            let error = Token::parse(bad).expect_err(bad);
            assert!(!error.contains(hash), "{error}");
        }
    }
}
