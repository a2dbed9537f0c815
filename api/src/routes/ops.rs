//! Operational routes: health, readiness, metrics, the OpenAPI document, the web page.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::dto::ReadyResponse;
use crate::error::ApiError;
use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: Redis answers a `PING` within the probe timeout and holds the data this api knows (its epoch).
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "Ready", body = ReadyResponse),
    (status = 503, description = "A dependency is unreachable", body = ReadyResponse)))]
pub async fn readyz(State(s): State<AppState>) -> Response {
    let redis = matches!(tokio::time::timeout(s.probe_timeout, s.backend.router().store().ping()).await, Ok(Ok(())));
    let store_intact = !s.backend.epoch().is_lost();
    let ready = redis && store_intact;
    let body = ReadyResponse { ready, redis, store_intact, breaker_closed: s.backend.is_closed() };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// Prometheus metrics in text format.
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
