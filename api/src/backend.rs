//! The shard-router behind a circuit breaker.
//!
//! After `breaker_failures` consecutive Redis failures the breaker opens and
//! calls fail at once with 503 instead of each waiting for a timeout; after
//! the open period (doubling up to 30 s while failures continue) one call is
//! let through as a probe, and a success closes the breaker. Only
//! unavailability counts as failure: a bad request never opens it.

use std::future::Future;
use std::time::Duration;

use failsafe::backoff::{self, EqualJittered};
use failsafe::failure_policy::{self, ConsecutiveFailures};
use failsafe::futures::CircuitBreaker as _;
use failsafe::{Config as BreakerConfig, StateMachine};
use shard_router::Router;

use crate::error::ApiError;

type Breaker = StateMachine<ConsecutiveFailures<EqualJittered>, ()>;

/// The router and its breaker; cheap to clone (shared state).
#[derive(Clone)]
pub struct Backend {
    router: Router,
    breaker: Breaker,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("router", &self.router).finish_non_exhaustive()
    }
}

/// Failures that should open the breaker: Redis unreachable or timing out.
#[derive(Clone, Copy)]
struct Unavailable;

impl failsafe::FailurePredicate<shard_router::Error> for Unavailable {
    fn is_err(&self, err: &shard_router::Error) -> bool {
        err.is_unavailable()
    }
}

impl Backend {
    /// Wraps `router`. The breaker opens after `failures` consecutive
    /// failures for `open_for` (at least 1 s, failsafe's resolution), growing
    /// with jitter up to 30 s while probes keep failing.
    pub fn new(router: Router, failures: u32, open_for: Duration) -> Self {
        let open_for = open_for.clamp(Duration::from_secs(1), Duration::from_secs(30));
        let backoff = backoff::equal_jittered(open_for, Duration::from_secs(30));
        let policy = failure_policy::consecutive_failures(failures, backoff);
        Self { router, breaker: BreakerConfig::new().failure_policy(policy).build() }
    }

    /// The router, for calls that must bypass the breaker (readiness probes).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Whether the breaker lets calls through now.
    pub fn is_closed(&self) -> bool {
        self.breaker.is_call_permitted()
    }

    /// Runs `call` through the breaker.
    ///
    /// # Errors
    /// 503 when the breaker is open or Redis is unavailable; 500 for other store errors.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, ApiError>
    where
        F: FnOnce(Router) -> Fut,
        Fut: Future<Output = shard_router::Result<T>>,
    {
        match self.breaker.call_with(Unavailable, call(self.router.clone())).await {
            Ok(v) => Ok(v),
            Err(failsafe::Error::Rejected) => {
                metrics::counter!("api_breaker_rejections_total").increment(1);
                Err(ApiError::Unavailable { retry_after: Duration::from_secs(1) })
            }
            Err(failsafe::Error::Inner(e)) => {
                metrics::counter!("api_redis_errors_total").increment(1);
                Err(ApiError::from_router(&e))
            }
        }
    }
}
