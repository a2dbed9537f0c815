//! Metrics and logs of the api.
//!
//! | metric | kind | meaning |
//! |---|---|---|
//! | `api_requests_total{method,route,status}` | counter | requests, by matched route (never the raw path) and method (the standard ones; any other is `other`) |
//! | `api_request_duration_seconds{method,route}` | histogram | latency |
//! | `api_top_cache_age_seconds{board}` | gauge | age of the cached top-N data |
//! | `api_top_cache_boards` | gauge | boards in the cache |
//! | `api_redis_errors_total` | counter | failed Redis calls |
//! | `api_redis_retries_total` | counter | reads run again at once because their connection dropped |
//! | `api_watermark_age_seconds` | gauge | age of the watermark dating answers (`as_of`), as the read node holds it |
//! | `api_breaker_rejections_total` | counter | calls refused while the breaker was open |
//! | `api_breaker_open` | gauge | 1 while the circuit breaker is open |
//! | `api_redis_up` | gauge | 1 while Redis answers `PING` (checked every `--loss-check`; `/readyz/redis`) |
//! | `api_admin_busy_total` | counter | admin changes refused (503 `overloaded`) because as many as may run at once were running |

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::PrometheusHandle;

/// Installs the process-wide Prometheus recorder with the api's latency buckets.
///
/// # Errors
/// When another recorder was installed first.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    leaderboard_runtime::install_recorder(&[(
        "api_request_duration_seconds",
        &[0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
    )])
}

/// Records every request's count and latency by matched route.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("api_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("api_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A request's method as a metric label, from a closed set: a client may send
/// any token as a method (up to the header size limit), and each distinct
/// label would be a new series kept for the life of the process.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").expect("a token")), "other");
        assert_eq!(method_label(&Method::from_bytes(&vec![b'X'; 20_000]).expect("a long token")), "other");
    }
}
