//! Metrics and logs of the api.
//!
//! | metric | kind | meaning |
//! |---|---|---|
//! | `api_requests_total{method,route,status}` | counter | requests, by matched route (never the raw path) |
//! | `api_request_duration_seconds{method,route}` | histogram | latency |
//! | `api_top_cache_age_seconds{board}` | gauge | age of the cached top-N data |
//! | `api_top_cache_boards` | gauge | boards in the cache |
//! | `api_redis_errors_total` | counter | failed Redis calls |
//! | `api_breaker_rejections_total` | counter | calls refused while the breaker was open |
//! | `api_breaker_open` | gauge | 1 while the circuit breaker is open |

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
///
/// # Errors
/// When another recorder was installed first.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("api_request_duration_seconds".into()),
            &[0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
        )?
        .install_recorder()?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Records every request's count and latency by matched route.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("api_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("api_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Structured logs to stderr; `RUST_LOG` overrides the default filter and
/// `LB_LOG_FORMAT=json` switches to JSON lines.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("LB_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
