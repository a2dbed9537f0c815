//! Metrics (Prometheus) and logs (tracing) of an ingest worker.
//!
//! | metric | kind | meaning |
//! |---|---|---|
//! | `ingest_events_consumed_total` | counter | records received from Kafka |
//! | `ingest_events_applied_total` | counter | events written to Redis (after coalescing) |
//! | `ingest_events_skipped_total` | counter | events the best-score cache proved useless |
//! | `ingest_events_coalesced_total` | counter | events merged into another event of the same player in a batch |
//! | `ingest_events_dead_lettered_total{reason}` | counter | malformed records sent to the DLQ |
//! | `ingest_batch_events` | histogram | records per batch |
//! | `ingest_redis_write_seconds` | histogram | duration of one batch's Redis write |
//! | `ingest_redis_write_errors_total` | counter | failed Redis write attempts (each retried) |
//! | `ingest_consumer_lag{partition}` | gauge | records behind the partition end (librdkafka statistics) |
//! | `ingest_freshness_seconds{quantile}` | gauge | event `ts` to applied, p50/p99/p999 over the process lifetime |
//! | `ingest_paused` | gauge | 1 while consumption is paused for backpressure |

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Installs the process-wide Prometheus recorder with ingest's buckets.
///
/// # Errors
/// When another recorder was installed first.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    leaderboard_runtime::install_recorder(&[
        ("ingest_redis_write_seconds", &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
        ("ingest_batch_events", &[1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10_000.0, 50_000.0]),
    ])
}

/// Serves `/metrics` and `/healthz` on `listener` until `shutdown`.
///
/// # Errors
/// When the listener fails.
pub async fn serve_metrics(
    listener: TcpListener,
    handle: PrometheusHandle,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .route("/healthz", get(|| std::future::ready("ok")));
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}

/// Binds the metrics listener with a clear error.
///
/// # Errors
/// When the address cannot be bound.
pub async fn bind_metrics(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    TcpListener::bind(addr).await.with_context(|| format!("binding metrics address {addr}"))
}
