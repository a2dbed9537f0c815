//! What the probes answer: whether the api can serve (`/readyz`), whether
//! Redis answers (`/readyz/redis`, `api_redis_up`), and whether it is
//! shutting down.
//!
//! Readiness is "can serve", not "every dependency answers": while Redis does
//! not answer, the top-N cache keeps serving its last pages (marked
//! `x-data-stale`), so the api stays ready on its cache for `--ready-stale-for`
//! after the newest cached page was read. A load balancer that pulled every
//! api when Redis failed would turn the promised stale answers into no answers
//! at all. The api is not ready when it cannot answer anything: it is shutting
//! down, the store lost its data (every read answers 503 `store_lost`), or
//! Redis does not answer and no cached page is recent enough.
//!
//! Redis is pinged by a background task every `--loss-check` (within
//! `--redis-timeout`), never by a probe: the probes do no I/O, so they can sit
//! outside load shedding and the rate limit without letting a flood of
//! probes reach Redis.
//!
//! # Layout
//! - [`Health`]: the last Redis check and the shutdown token, shared by the probes.
//! - [`judge`]: the readiness verdict from what is known, without I/O.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use leaderboard_store::Store;
use tokio_util::sync::CancellationToken;

/// The last Redis check.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisCheck {
    /// Redis answered the last `PING`.
    pub up: bool,
    /// When the last check ended; `None` before the first.
    pub checked_at: Option<Instant>,
    /// When Redis last answered; `None` if it never did.
    pub last_up: Option<Instant>,
    /// Why the last check failed: the store's failure class, or `timeout`.
    pub failure: Option<&'static str>,
}

/// What the probes share: the last Redis check and the shutdown token.
#[derive(Debug, Default)]
pub struct Health {
    redis: Mutex<RedisCheck>,
    shutdown: OnceLock<CancellationToken>,
}

impl Health {
    /// The last Redis check.
    pub fn redis(&self) -> RedisCheck {
        *self.redis.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the api is shutting down (its shutdown token, once [`Health::shut_down_by`] gave it, is cancelled).
    pub fn shutting_down(&self) -> bool {
        self.shutdown.get().is_some_and(CancellationToken::is_cancelled)
    }

    /// Reports shutting down once `token` is cancelled (the token [`crate::run`] serves until).
    pub fn shut_down_by(&self, token: &CancellationToken) {
        let _ = self.shutdown.set(token.clone());
    }

    /// Pings Redis through `store` within `timeout` and records the outcome (and `api_redis_up`).
    pub async fn check_redis(&self, store: &Store, timeout: Duration) {
        let failure = match tokio::time::timeout(timeout, store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.failure().as_str()),
            Err(_) => Some("timeout"),
        };
        let now = Instant::now();
        let was_up = {
            let mut check = self.redis.lock().unwrap_or_else(PoisonError::into_inner);
            let was_up = check.checked_at.is_none() || check.up;
            check.up = failure.is_none();
            check.checked_at = Some(now);
            check.failure = failure;
            if check.up {
                check.last_up = Some(now);
            }
            was_up
        };
        match failure {
            Some(class) if was_up => tracing::warn!(class, "redis does not answer PING"),
            None if !was_up => tracing::info!("redis answers PING again"),
            _ => {}
        }
        metrics::gauge!("api_redis_up").set(if failure.is_none() { 1.0 } else { 0.0 });
    }

    /// Pings Redis every `every` until `shutdown`.
    pub async fn watch_redis(&self, store: Store, every: Duration, timeout: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => self.check_redis(&store, timeout).await,
            }
        }
    }
}

/// What readiness is judged from.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    /// The api is shutting down.
    pub shutting_down: bool,
    /// The store holds the data this api knows ([`crate::loss`]).
    pub store_intact: bool,
    /// Redis answered the last check.
    pub redis_up: bool,
    /// How long ago the newest cached top-N page was read; `None` when nothing is cached.
    pub cache_age: Option<Duration>,
    /// How old the newest cached page may be for the api to stay ready on it alone.
    pub stale_for: Duration,
}

/// Where answers come from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Serving {
    /// Redis answers: every route can answer.
    Redis,
    /// Redis does not answer: the top-N cache answers the first rows of `top` (marked stale);
    /// every other read answers 503 `store_unavailable` until Redis is back.
    Cache,
    /// Nothing can be answered.
    Nothing,
}

/// Why the api is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotReady {
    /// SIGTERM or SIGINT: requests in flight are finishing.
    ShuttingDown,
    /// The store lost its data and is not recovered: every read answers 503 `store_lost`.
    StoreLost,
    /// Redis does not answer and no cached page was read within `--ready-stale-for`.
    RedisUnreachable,
}

/// The readiness verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Where answers come from.
    pub serving: Serving,
    /// Why not ready; `None` when ready.
    pub not_ready: Option<NotReady>,
}

/// Judges readiness: not ready while shutting down, while the store is lost, or while
/// Redis does not answer and the newest cached page is older than `stale_for` (or none is
/// cached, or `stale_for` is zero).
pub fn judge(facts: Facts) -> Verdict {
    let serving = if facts.redis_up {
        Serving::Redis
    } else if !facts.stale_for.is_zero() && facts.cache_age.is_some_and(|age| age <= facts.stale_for) {
        Serving::Cache
    } else {
        Serving::Nothing
    };
    let not_ready = if facts.shutting_down {
        Some(NotReady::ShuttingDown)
    } else if !facts.store_intact {
        Some(NotReady::StoreLost)
    } else if serving == Serving::Nothing {
        Some(NotReady::RedisUnreachable)
    } else {
        None
    };
    let serving = if matches!(not_ready, Some(NotReady::StoreLost)) { Serving::Nothing } else { serving };
    Verdict { serving, not_ready }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE_FOR: Duration = Duration::from_secs(300);

    fn facts() -> Facts {
        Facts { shutting_down: false, store_intact: true, redis_up: true, cache_age: None, stale_for: STALE_FOR }
    }

    #[test]
    fn ready_while_redis_answers_or_a_recent_cache_can() {
        assert_eq!(judge(facts()), Verdict { serving: Serving::Redis, not_ready: None });
        let cached = |age| Facts { redis_up: false, cache_age: Some(age), ..facts() };
        assert_eq!(judge(cached(Duration::from_secs(1))), Verdict { serving: Serving::Cache, not_ready: None });
        assert_eq!(judge(cached(STALE_FOR)), Verdict { serving: Serving::Cache, not_ready: None });
        assert_eq!(
            judge(cached(STALE_FOR + Duration::from_millis(1))),
            Verdict { serving: Serving::Nothing, not_ready: Some(NotReady::RedisUnreachable) }
        );
        assert_eq!(
            judge(Facts { redis_up: false, ..facts() }),
            Verdict { serving: Serving::Nothing, not_ready: Some(NotReady::RedisUnreachable) },
            "no cache, no Redis"
        );
        let strict = Facts { redis_up: false, cache_age: Some(Duration::ZERO), stale_for: Duration::ZERO, ..facts() };
        assert_eq!(judge(strict).not_ready, Some(NotReady::RedisUnreachable), "0s: ready only while Redis answers");
    }

    #[test]
    fn shutting_down_and_a_lost_store_are_never_ready() {
        let lost = judge(Facts { store_intact: false, ..facts() });
        assert_eq!(lost, Verdict { serving: Serving::Nothing, not_ready: Some(NotReady::StoreLost) });
        let lost_cached =
            judge(Facts { store_intact: false, redis_up: false, cache_age: Some(Duration::ZERO), ..facts() });
        assert_eq!(lost_cached.not_ready, Some(NotReady::StoreLost), "a lost store's cached pages are not served");
        let stopping = judge(Facts { shutting_down: true, store_intact: false, ..facts() });
        assert_eq!(stopping.not_ready, Some(NotReady::ShuttingDown), "shutting down comes first");
    }
}
