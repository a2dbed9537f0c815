//! Operational routes: health, readiness, metrics, the OpenAPI document, the web page.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::dto::{ReadyResponse, RedisReadyResponse};
use crate::error::ApiError;
use crate::health::{self, Facts};
use crate::state::AppState;

/// Liveness: the process answers. Outside load shedding, the concurrency limit, the request
/// timeout and the rate limit: an api under load is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the api can serve. Redis answers, or (while it does not) the top-N cache holds a
/// page read within `--ready-stale-for`, whose stale answers the contract promises; and the store
/// holds the data this api knows and the api is not shutting down. The body says where answers
/// come from (`serving`) and, when not ready, why (`reason`). No I/O: it reads what the
/// background checks found, so it sits outside every limit.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "Ready: answers come from Redis, or from the top-N cache while Redis does not answer", body = ReadyResponse),
    (status = 503, description = "Not ready: shutting down, the store lost its data, or neither Redis nor a recent cache can answer", body = ReadyResponse)))]
pub async fn readyz(State(s): State<AppState>) -> Response {
    let redis = s.health.redis();
    let (cached_boards, cache_age) = s.cache.newest_read();
    let facts = Facts {
        shutting_down: s.health.shutting_down(),
        store_intact: !s.backend.epoch().is_lost(),
        redis_up: redis.up,
        cache_age,
        stale_for: s.ready_stale_for,
    };
    let verdict = health::judge(facts);
    let body = ReadyResponse {
        ready: verdict.not_ready.is_none(),
        serving: verdict.serving,
        reason: verdict.not_ready,
        redis: redis.up,
        store_intact: facts.store_intact,
        breaker_closed: s.backend.is_closed(),
        shutting_down: facts.shutting_down,
        cached_boards: cached_boards as u64,
        cache_age_ms: cache_age.map(millis),
    };
    let status = if body.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// Whether Redis answers: the last `PING` (every `--loss-check`, within `--redis-timeout`) of the
/// connection reads use. Not a readiness probe: the api serves its cache while Redis is down
/// (`/readyz`); this is the dependency's own state, as the `api_redis_up` gauge.
#[utoipa::path(get, path = "/readyz/redis", tag = "ops", responses(
    (status = 200, description = "Redis answered the last PING", body = RedisReadyResponse),
    (status = 503, description = "Redis did not answer the last PING, or was not checked yet", body = RedisReadyResponse)))]
pub async fn readyz_redis(State(s): State<AppState>) -> Response {
    let redis = s.health.redis();
    let body = RedisReadyResponse {
        up: redis.up,
        checked_ms_ago: redis.checked_at.map(|at| millis(at.elapsed())),
        up_ms_ago: redis.last_up.map(|at| millis(at.elapsed())),
        failure: redis.failure.map(String::from),
    };
    let status = if body.up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Prometheus metrics in text format: on `--metrics-addr` when it is set (and then not on the
/// main address), else here. Outside every limit, as the probes.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(s): State<AppState>) -> Response {
    let text = s.metrics.as_ref().map(metrics_exporter_prometheus::PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::document()).into_response()
}

/// The web page: live top 100, board stats, player lookup.
#[utoipa::path(get, path = "/", tag = "ops", responses((status = 200, description = "HTML page", content_type = "text/html")))]
pub async fn index() -> Html<&'static str> {
    Html(include_str!("../../static/index.html"))
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::NotFound { code: "route_not_found", message: "no such route; see /openapi.json".into() }
}
