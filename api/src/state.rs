//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::backend::Backend;
use crate::cache::TopCache;

/// Handler state: cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Redis through the circuit breaker.
    pub backend: Backend,
    /// The top-N cache.
    pub cache: Arc<TopCache>,
    /// The Prometheus recorder, when installed (the binary installs it; tests may not).
    pub metrics: Option<PrometheusHandle>,
    /// How long a readiness probe waits for Redis.
    pub probe_timeout: Duration,
}
