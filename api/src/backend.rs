//! The store behind a circuit breaker.
//!
//! When Redis fails persistently (fewer than half of the calls of the last
//! 5 s succeed, or `breaker_failures` fail in a row) the breaker opens and
//! calls fail at once with 503 instead of each waiting for a timeout; after
//! the open period (growing up to 30 s while failures continue) a call is let
//! through as a probe, and a success closes the breaker. Only unavailability
//! counts as failure: a bad request never opens it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use failsafe::FailurePolicy as _;
use failsafe::backoff::{self, EqualJittered};
use failsafe::failure_policy::{self, ConsecutiveFailures, OrElse, SuccessRateOverTimeWindow};
use failsafe::futures::CircuitBreaker as _;
use failsafe::{Config as BreakerConfig, StateMachine};
use leaderboard_store::{Failure, Router};

use crate::error::ApiError;
use crate::freshness::Freshness;
use crate::loss::StoreEpoch;

type Policy = OrElse<SuccessRateOverTimeWindow<EqualJittered>, ConsecutiveFailures<EqualJittered>>;
type Breaker = StateMachine<Policy, ()>;

/// The window over which the breaker measures the success rate.
const WINDOW: Duration = Duration::from_secs(5);
/// Below this share of successful calls in the window the breaker opens...
const REQUIRED_SUCCESS_RATE: f64 = 0.5;
/// ...provided the window saw at least this many calls.
const MIN_CALLS: u32 = 20;

/// The router and its breaker; cheap to clone (shared state).
#[derive(Clone)]
pub struct Backend {
    router: Router,
    freshness: Arc<Freshness>,
    epoch: Arc<StoreEpoch>,
    breaker: Breaker,
    log_gate: Arc<LogGate>,
}

/// Lets one warning through per second, so an outage logs its cause without flooding.
#[derive(Debug, Default)]
struct LogGate {
    last_second: AtomicU64,
}

impl LogGate {
    fn allow(&self) -> bool {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.last_second.swap(now, Ordering::Relaxed) != now
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("router", &self.router).finish_non_exhaustive()
    }
}

/// A value read from Redis and its date: every event with an earlier Kafka timestamp is reflected in it.
#[derive(Debug, Clone)]
pub struct Dated<T> {
    /// What was read.
    pub value: T,
    /// Its date (`as_of`).
    pub as_of: SystemTime,
}

/// Failures that should open the breaker: Redis unreachable or timing out.
#[derive(Clone, Copy)]
struct Unavailable;

impl failsafe::FailurePredicate<leaderboard_store::Error> for Unavailable {
    fn is_err(&self, err: &leaderboard_store::Error) -> bool {
        err.is_unavailable()
    }
}

impl Backend {
    /// Wraps `router`, dating answers with `freshness`. The breaker opens when, over the last 5 s, fewer than
    /// half of at least 20 calls succeeded, or after `failures` consecutive
    /// failures; it stays open for `open_for` (at least 1 s, failsafe's
    /// resolution), growing with jitter up to 30 s while probes keep failing.
    /// A stall that fails every call in flight at once is not an outage, so a
    /// burst of concurrent failures alone does not open it.
    pub fn new(
        router: Router,
        freshness: Arc<Freshness>,
        epoch: Arc<StoreEpoch>,
        failures: u32,
        open_for: Duration,
    ) -> Self {
        let open_for = open_for.clamp(Duration::from_secs(1), Duration::from_secs(30));
        let backoff = backoff::equal_jittered(open_for, Duration::from_secs(30));
        let policy =
            failure_policy::success_rate_over_time_window(REQUIRED_SUCCESS_RATE, MIN_CALLS, WINDOW, backoff.clone())
                .or_else(failure_policy::consecutive_failures(failures, backoff));
        let breaker = BreakerConfig::new().failure_policy(policy).build();
        Self { router, freshness, epoch, breaker, log_gate: Arc::default() }
    }

    /// The router, for calls that must bypass the breaker (readiness probes).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// What dates the answers.
    pub fn freshness(&self) -> &Arc<Freshness> {
        &self.freshness
    }

    /// Whether the store holds the data this api knows ([`crate::loss`]).
    pub fn epoch(&self) -> &Arc<StoreEpoch> {
        &self.epoch
    }

    /// Fails with 503 `store_lost` while the store is lost.
    ///
    /// # Errors
    /// [`ApiError::StoreLost`].
    pub fn ensure_intact(&self) -> Result<(), ApiError> {
        if self.epoch.is_lost() { Err(ApiError::StoreLost) } else { Ok(()) }
    }

    /// Forgets what the router cached about `board` (it was deleted).
    pub fn forget(&self, board: &leaderboard_contract::BoardId) {
        self.router.forget(board);
    }

    /// Runs a read through the breaker and dates it (see [`crate::freshness`]).
    ///
    /// # Errors
    /// As [`Backend::call`].
    pub async fn read<T, F, Fut>(&self, call: F) -> Result<Dated<T>, ApiError>
    where
        F: Fn(Router) -> Fut,
        Fut: Future<Output = leaderboard_store::Result<T>>,
    {
        let stamp = self.freshness.before_read().await;
        let value = self.call(call).await?;
        Ok(Dated { value, as_of: self.freshness.after_read(stamp).await })
    }

    /// Whether the breaker lets calls through now.
    pub fn is_closed(&self) -> bool {
        self.breaker.is_call_permitted()
    }

    /// Runs `call` through the breaker. Reads are idempotent, so a call that
    /// failed because its connection was dropped (a Sentinel reconfiguring a
    /// replica closes its clients; a failover) runs once more at once, on the
    /// connection the failure made the store open or switch to.
    ///
    /// # Errors
    /// 503 when the store is lost, the breaker is open or Redis is unavailable; 500 for other store errors.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, ApiError>
    where
        F: Fn(Router) -> Fut,
        Fut: Future<Output = leaderboard_store::Result<T>>,
    {
        self.ensure_intact()?;
        let mut result = self.breaker.call_with(Unavailable, call(self.router.clone())).await;
        if let Err(failsafe::Error::Inner(e)) = &result
            && e.failure() == Failure::Reconnect
        {
            metrics::counter!("api_redis_retries_total").increment(1);
            result = self.breaker.call_with(Unavailable, call(self.router.clone())).await;
        }
        match result {
            Ok(v) => Ok(v),
            Err(failsafe::Error::Rejected) => {
                metrics::counter!("api_breaker_rejections_total").increment(1);
                if self.log_gate.allow() {
                    tracing::warn!("circuit breaker open: refusing store calls");
                }
                Err(ApiError::Unavailable { retry_after: Duration::from_secs(1) })
            }
            Err(failsafe::Error::Inner(e)) => {
                metrics::counter!("api_redis_errors_total").increment(1);
                if e.is_unavailable() && self.log_gate.allow() {
                    tracing::warn!(error = %e, "leaderboard store unavailable");
                }
                Err(ApiError::from_router(&e))
            }
        }
    }
}
