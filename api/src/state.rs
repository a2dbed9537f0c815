//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use leaderboard_contract::{BoardId, PlayerId};
use shard_router::Standing;

use crate::backend::{Backend, Dated};
use crate::cache::TopCache;
use crate::coalesce::Coalescer;
use crate::error::ApiError;

/// Player lookups in flight, shared by identical concurrent requests.
pub type Lookups = Coalescer<(BoardId, PlayerId), Result<Dated<Option<Standing>>, ApiError>>;

/// Handler state: cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Redis through the circuit breaker.
    pub backend: Backend,
    /// The top-N cache.
    pub cache: Arc<TopCache>,
    /// Player lookups in flight (single flight).
    pub lookups: Arc<Lookups>,
    /// The Prometheus recorder, when installed (the binary installs it; tests may not).
    pub metrics: Option<PrometheusHandle>,
    /// How long a readiness probe waits for Redis.
    pub probe_timeout: Duration,
    /// The admin routes' tokens and primary connection; `None` when no token is configured.
    pub admin: Option<Arc<crate::admin::Admin>>,
    /// The clock seasons are decided by (which season is `current`).
    pub clock: shard_router::Clock,
    /// Which seasons are closed (dates their answers by their end).
    pub seasons: Arc<crate::season::SeasonStates>,
}
