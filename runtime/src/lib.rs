//! Process plumbing shared by the binaries (ingest, api, loadgen): structured
//! logs, the process-wide Prometheus recorder, and the SIGINT/SIGTERM signal.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Structured logs to stderr. `RUST_LOG` overrides `default_filter`;
/// `LB_LOG_FORMAT=json` switches to JSON lines (for containers).
pub fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("LB_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Installs the process-wide Prometheus recorder once, with histogram buckets
/// per metric name, and returns its handle (the same handle on later calls).
///
/// # Errors
/// When another recorder was installed first, or a bucket list is empty.
pub fn install_recorder(buckets: &[(&str, &[f64])]) -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let mut builder = PrometheusBuilder::new();
    for (name, values) in buckets {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_string()), values)?;
    }
    let handle = builder.install_recorder()?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the process"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
