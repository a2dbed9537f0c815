//! Metrics (Prometheus), health endpoints and logs of an ingest worker.
//!
//! | metric | kind | meaning |
//! |---|---|---|
//! | `ingest_events_consumed_total` | counter | records received from Kafka |
//! | `ingest_events_applied_total` | counter | events written to Redis (after coalescing) |
//! | `ingest_events_skipped_total` | counter | events the best-score cache proved useless |
//! | `ingest_events_coalesced_total` | counter | events merged into another event of the same player in a batch |
//! | `ingest_events_erased_total` | counter | events of erased players stamped before the erasure: dropped, never dead-lettered (`docs/players.md`) |
//! | `ingest_events_replayed_total` | counter | `last` and `sum` events skipped because their record was applied before: redeliveries and retried writes (`docs/ingest.md#exactly-once-operators`) |
//! | `ingest_events_duplicate_ids_total` | counter | `last` and `sum` events skipped as a re-sent `id` within the board's `dedup_window` |
//! | `ingest_events_dead_lettered_total{reason}` | counter | records sent to the dead-letter topic, by code |
//! | `ingest_dead_letters_total` | counter | records sent to the dead-letter topic |
//! | `ingest_dead_letters_headers_only_total` | counter | dead letters the broker took only without key and value |
//! | `ingest_dead_letter_failures_total` | counter | dead letters not acknowledged (each retried) |
//! | `ingest_batches_total` | counter | batches finished |
//! | `ingest_batch_events` | histogram | records per batch |
//! | `ingest_redis_write_seconds` | histogram | duration of one Redis write attempt |
//! | `ingest_redis_write_errors_total` | counter | failed Redis write attempts (each retried) |
//! | `ingest_write_failures_total{step,class}` | counter | failed attempts by step (`redis`, `dead_letter`) and class |
//! | `ingest_blocked{step}` | gauge | 1 while a step keeps failing (e.g. Redis `OOM`) |
//! | `ingest_stalled_seconds` | gauge | time since the pipeline last made progress while it had work |
//! | `ingest_cache_clears_total` | counter | times the best-score cache was dropped (revocation, Redis failure) |
//! | `ingest_revocations_total`, `ingest_pauses_total` | counter | partition revocations; backpressure pauses |
//! | `ingest_consumer_lag{partition}` | gauge | records behind the partition end (librdkafka statistics); 0 once the partition is no longer this worker's |
//! | `ingest_replica_wait_seconds` | histogram | how long a batch waited for the replicas' acknowledgement (`WAIT`) |
//! | `ingest_unfinished_erasure_waits_total{outcome}` | counter | batches that waited for an erasure to finish (`finished`, `gave_up` after 30 s) |
//! | `ingest_freshness_seconds` | histogram | event `ts` to applied |
//! | `ingest_fetch_delay_seconds` | histogram | a record's Kafka timestamp (its producer's stamp) to its hand-over by the poll thread: the producer's linger, the broker's append and the fetch, the first stage of freshness |
//! | `ingest_paused` | gauge | 1 while consumption is paused for backpressure |
//! | `ingest_watermark_delay_seconds` | gauge | now minus the oldest claim this worker published (its part of `as_of`) |
//! | `ingest_watermark_failures_total` | counter | watermark rounds not published (broker or Redis did not answer) |
//!
//! `/healthz` answers 503 when the worker is stalled and no failing
//! dependency explains it; `/readyz` answers 503 while Redis does not answer
//! `PING`, no broker is reachable, a step is blocked, or the worker is
//! stalled. Both answer a JSON body with the state (see [`crate::health`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leaderboard_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::Status;
use crate::shared::Shared;

/// Installs the process-wide Prometheus recorder with ingest's buckets (once; later calls get the same handle).
///
/// # Errors
/// When another recorder was installed first.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    leaderboard_runtime::install_recorder(&[
        ("ingest_redis_write_seconds", &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
        ("ingest_replica_wait_seconds", &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
        ("ingest_batch_events", &[1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10_000.0, 50_000.0]),
        ("ingest_freshness_seconds", &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
        ("ingest_fetch_delay_seconds", &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0]),
    ])
}

/// What the endpoints read.
#[derive(Clone)]
pub struct Probe {
    /// The worker's shared state.
    pub shared: Arc<Shared>,
    /// A connection used only for `PING`, once Redis has answered at start-up.
    pub store: Arc<OnceLock<Store>>,
    /// When a worker with work counts as stalled.
    pub stall_timeout: Duration,
    /// The metrics recorder.
    pub metrics: PrometheusHandle,
}

/// The body of `/healthz` and `/readyz`.
#[derive(Serialize)]
struct Report {
    status: &'static str,
    redis_up: Option<bool>,
    #[serde(flatten)]
    state: Status,
}

/// Longest wait for Redis's `PING` in `/readyz`.
const PING_TIMEOUT: Duration = Duration::from_millis(500);

async fn healthz(State(probe): State<Probe>) -> Response {
    let state = probe.shared.health.status();
    let live = state.is_live(probe.stall_timeout);
    let code = if live { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(Report { status: if live { "ok" } else { "stalled" }, redis_up: None, state })).into_response()
}

async fn readyz(State(probe): State<Probe>) -> Response {
    let redis_up = match probe.store.get() {
        Some(store) => matches!(tokio::time::timeout(PING_TIMEOUT, store.ping()).await, Ok(Ok(()))),
        None => false,
    };
    let state = probe.shared.health.status();
    let ready = redis_up && state.is_ready(probe.stall_timeout);
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status = if ready { "ready" } else { "not_ready" };
    (code, axum::Json(Report { status, redis_up: Some(redis_up), state })).into_response()
}

async fn metrics(State(probe): State<Probe>) -> String {
    metrics::gauge!("ingest_stalled_seconds").set(probe.shared.health.stalled_for().as_secs_f64());
    probe.metrics.render()
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown`.
///
/// # Errors
/// When the listener fails.
pub async fn serve(listener: TcpListener, probe: Probe, shutdown: CancellationToken) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(probe);
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}

/// Binds the metrics listener with a clear error.
///
/// # Errors
/// When the address cannot be bound.
pub async fn bind_metrics(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    TcpListener::bind(addr).await.with_context(|| format!("binding metrics address {addr}"))
}
