//! What every handler shares: the handler state.

use std::sync::Arc;
use std::time::Duration;

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::Standing;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::admin::Admin;
use crate::backend::{Backend, Dated};
use crate::cache::TopCache;
use crate::coalesce::Coalescer;
use crate::error::ApiError;
use crate::health::Health;
use crate::season::SeasonStates;

/// Player lookups in flight, shared by identical concurrent requests of one cache generation
/// ([`TopCache::generation`]), by stored board and player.
pub type Lookups = Coalescer<(u64, BoardId, PlayerId), Result<Dated<Option<Standing>>, ApiError>>;

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
    /// The last Redis check and whether the api is shutting down, for the probes.
    pub health: Arc<Health>,
    /// How old the newest cached page may be for the api to stay ready on its cache alone.
    pub ready_stale_for: Duration,
    /// The admin routes' tokens and primary connection; `None` when no token is configured.
    pub admin: Option<Arc<Admin>>,
    /// The clock seasons are decided by (which season is `current`).
    pub clock: leaderboard_semantics::Clock,
    /// Which seasons are closed (dates their answers by their end).
    pub seasons: Arc<SeasonStates>,
    /// Live streams: their limits, the players watched, shutdown.
    pub streams: Arc<crate::watch::Streams>,
    /// Tells clients apart (the rate limit, the streams per client).
    pub clients: crate::client_ip::ClientIp,
}

impl AppState {
    /// Forgets everything remembered of `board` and its seasons: its cached
    /// pages, its seasons' states, what the router knows of its layout (it
    /// was deleted, or its rules changed).
    pub fn forget(&self, board: &BoardId) {
        self.cache.forget(board);
        self.seasons.forget(board);
        self.backend.forget(board);
    }

    /// Forgets every cached answer: a player was erased or banned, so any page
    /// and any closed season's total may have changed. Raising the cache's
    /// generation also keeps every later player lookup out of the ones in flight.
    pub fn forget_answers(&self) {
        self.cache.clear();
        self.seasons.clear();
    }
}
