//! Whether the worker makes progress, and whether its dependencies let it.
//!
//! - *Progress*: the writer marks every finished batch, and the poll thread
//!   marks every moment the pipeline is empty (nothing to do is not a stall).
//!   The time since the last mark is the stall (`ingest_stalled_seconds`).
//! - *Blocked*: a dependency refuses work this worker has (Redis out of
//!   memory, the dead-letter topic unwritable, Redis unreachable); set by the
//!   retry loop, cleared by the next success, logged once per change.
//! - *Broker*: whether librdkafka sees a broker up (its statistics and error
//!   callbacks).
//!
//! `/healthz` fails on a stall that no dependency explains: the worker is
//! wedged and a restart may help. `/readyz` fails while a dependency is down
//! or blocking, or the worker is stalled: it is not doing its job.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use leaderboard_store::Failure;
use serde::Serialize;
use tokio::time::Instant;
use tracing::{info, warn};

/// Which step of the pipeline a failure blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Writing dead letters.
    DeadLetter,
    /// Writing to Redis.
    Redis,
    /// Waiting for Redis replicas to acknowledge a batch (`WAIT`).
    Replicas,
    /// Waiting for a store that lost its data to be recovered ([`crate::loss`]).
    StoreLost,
}

impl Step {
    /// The step's name in metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DeadLetter => "dead_letter",
            Self::Redis => "redis",
            Self::Replicas => "replicas",
            Self::StoreLost => "store_lost",
        }
    }
}

/// A step that keeps failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Blocked {
    /// The failing step.
    pub step: Step,
    /// How its failure is classified.
    #[serde(serialize_with = "failure_name")]
    pub failure: Failure,
}

#[expect(clippy::trivially_copy_pass_by_ref, reason = "serde's `serialize_with` passes a reference")]
fn failure_name<S: serde::Serializer>(f: &Failure, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(f.as_str())
}

/// The health state (see the module docs).
#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// Milliseconds since `started` of the last progress mark.
    progress_ms: AtomicU64,
    blocked: Mutex<Option<(Blocked, Instant)>>,
    broker_up: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

/// A snapshot of the health state, as `/healthz` and `/readyz` report it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Seconds since the worker last made progress while it had work.
    pub stalled_seconds: f64,
    /// The step blocked by a failing dependency, if any.
    pub blocked: Option<Blocked>,
    /// Seconds the step has been blocked.
    pub blocked_seconds: f64,
    /// Whether a Kafka broker is reachable.
    pub broker_up: bool,
}

impl Health {
    /// A fresh state: progress now, nothing blocked, the broker not yet seen.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            progress_ms: AtomicU64::new(0),
            blocked: Mutex::new(None),
            broker_up: AtomicBool::new(false),
        }
    }

    /// The pipeline moved (a batch finished) or has nothing to do.
    pub fn progress(&self) {
        self.progress_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long since the last progress mark.
    pub fn stalled_for(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_millis(self.progress_ms.load(Ordering::Relaxed)))
    }

    /// A step failed with `failure`; logs when this changes what is blocked.
    pub fn fail(&self, step: Step, failure: Failure) {
        let now = Blocked { step, failure };
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        if blocked.is_none_or(|(b, _)| b != now) {
            warn!(step = step.as_str(), failure = failure.as_str(), "blocked: retrying until the dependency recovers");
            metrics::gauge!("ingest_blocked", "step" => step.as_str()).set(1.0);
            *blocked = Some((now, blocked.map_or_else(Instant::now, |(_, since)| since)));
        }
    }

    /// A step succeeded: whatever it blocked is unblocked.
    pub fn succeed(&self, step: Step) {
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((b, since)) = *blocked
            && b.step == step
        {
            info!(step = step.as_str(), after = ?since.elapsed(), "unblocked: the dependency recovered");
            metrics::gauge!("ingest_blocked", "step" => step.as_str()).set(0.0);
            *blocked = None;
        }
    }

    /// Sets whether a broker is reachable.
    pub fn set_broker_up(&self, up: bool) {
        if self.broker_up.swap(up, Ordering::Relaxed) != up {
            if up {
                info!("kafka: a broker is reachable");
            } else {
                warn!("kafka: no broker reachable");
            }
        }
    }

    /// The state now.
    pub fn status(&self) -> Status {
        let blocked = *self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        Status {
            stalled_seconds: self.stalled_for().as_secs_f64(),
            blocked: blocked.map(|(b, _)| b),
            blocked_seconds: blocked.map_or(0.0, |(_, since)| since.elapsed().as_secs_f64()),
            broker_up: self.broker_up.load(Ordering::Relaxed),
        }
    }
}

impl Status {
    /// Alive: no stall beyond `stall_timeout` that a dependency does not explain.
    pub fn is_live(&self, stall_timeout: Duration) -> bool {
        self.stalled_seconds <= stall_timeout.as_secs_f64() || self.blocked.is_some() || !self.broker_up
    }

    /// Ready: the broker is up, nothing is blocked, and no stall beyond `stall_timeout`.
    pub fn is_ready(&self, stall_timeout: Duration) -> bool {
        self.broker_up && self.blocked.is_none() && self.stalled_seconds <= stall_timeout.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stalls_and_blocks() {
        let stall = Duration::from_secs(60);
        let h = Health::new();
        h.set_broker_up(true);
        assert!(h.status().is_ready(stall));
        tokio::time::advance(Duration::from_secs(61)).await;
        let s = h.status();
        assert!(!s.is_live(stall) && !s.is_ready(stall), "a stall nothing explains: {s:?}");
        h.fail(Step::Redis, Failure::StoreBlocked);
        let s = h.status();
        assert!(s.is_live(stall) && !s.is_ready(stall), "explained by a blocked store: {s:?}");
        h.succeed(Step::DeadLetter);
        assert!(h.status().blocked.is_some(), "another step's success unblocks nothing");
        h.succeed(Step::Redis);
        h.progress();
        assert!(h.status().is_ready(stall));
        h.set_broker_up(false);
        assert!(!h.status().is_ready(stall));
    }
}
