//! Updates applied to Redis: every failure retried by its class (a new
//! connection first when the class asks for one), the updates the store
//! refuses for good found by bisection, and each write confirmed by the
//! replicas before it counts.

use std::collections::HashSet;

use leaderboard_contract::BoardId;
use leaderboard_semantics::ScoreUpdate;
use leaderboard_store::{Applied, Failure};
use tokio::time::Instant;
use tracing::{info, warn};

use super::{Abandoned, Writer};
use crate::health::Step;
use crate::prepare::BoardRules;
use crate::shared::Counter;

/// Fewer replicas than required acknowledged a write in time.
#[derive(Debug, thiserror::Error)]
#[error("{acked} of {required} replicas acknowledged the write in time")]
pub(super) struct Unreplicated {
    acked: u32,
    required: u32,
}

/// Why a Redis write did not finish.
enum ApplyError {
    Abandoned,
    /// The store refuses these updates for good.
    Refused(leaderboard_store::Error),
    /// A board's order or ties are not those the batch was prepared under.
    RulesChanged,
}

/// What applying a batch's updates left out.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// Indices of the updates the store refuses for good.
    pub(super) refused: HashSet<usize>,
    /// What the store said: updates a closed season's fence refused, `sum`
    /// updates refused for overflowing, `last` and `sum` updates skipped.
    pub(super) applied: Applied,
}

impl Writer {
    /// After a failed Redis call that is not a write: counts it, reconnects when its class asks
    /// for that, and waits before the retry (as long as the class says); `Abandoned` at shutdown.
    pub(super) async fn retry_after(&mut self, e: &leaderboard_store::Error) -> Result<(), Abandoned> {
        self.shared.counters.add(Counter::RedisErrors, 1);
        let failure = e.failure();
        if failure == Failure::Reconnect {
            self.redis.reconnect().await;
        }
        if self.retry.wait(&self.shared.health, Step::Redis, failure, &refusal(e)).await {
            Ok(())
        } else {
            Err(Abandoned)
        }
    }

    /// Applies `updates`; returns the indices of the ones the store refuses
    /// for good, found by bisection (each half is applied again: best-score
    /// writes make repeating the accepted ones harmless, and `last` and `sum`
    /// writes skip the records they took), and what the store said
    /// ([`Outcome::applied`]); `None` when a board's order or ties are not
    /// those of `rules`. Halves are applied in order, so each partition's
    /// records reach a `last` or `sum` shard in offset order.
    pub(super) async fn apply_all(
        &mut self,
        updates: &[ScoreUpdate],
        rules: &BoardRules,
    ) -> Result<Option<Outcome>, Abandoned> {
        let mut outcome = Outcome::default();
        let mut ranges = Vec::new();
        ranges.push(0..updates.len());
        while let Some(range) = ranges.pop() {
            match self.apply(&updates[range.clone()], rules).await {
                Ok(applied) => outcome.applied.extend(applied),
                Err(ApplyError::Abandoned) => return Err(Abandoned),
                Err(ApplyError::RulesChanged) => return Ok(None),
                Err(ApplyError::Refused(e)) if range.len() == 1 => {
                    warn!(board = %updates[range.start].board, error = %refusal(&e), "the store refuses an update");
                    outcome.refused.insert(range.start);
                }
                Err(ApplyError::Refused(_)) => {
                    let mid = range.start + range.len() / 2;
                    // A stack: the first half goes on last, so it is applied first.
                    ranges.push(mid..range.end);
                    ranges.push(range.start..mid);
                }
            }
        }
        Ok(Some(outcome))
    }

    /// Applies `updates` (and waits for the replicas), retrying every failure
    /// but a refusal; returns the updates a closed season's fence refused.
    ///
    /// When the replicas do not acknowledge in time, the whole write is
    /// repeated before waiting again: had the primary failed over meanwhile,
    /// `WAIT` on the new one would confirm nothing about the lost writes.
    async fn apply(&mut self, updates: &[ScoreUpdate], rules: &BoardRules) -> Result<Applied, ApplyError> {
        loop {
            let started = Instant::now();
            let result = self.redis.router.apply_expecting(updates, rules).await;
            metrics::histogram!("ingest_redis_write_seconds").record(started.elapsed().as_secs_f64());
            let e = match result {
                Ok(applied) => {
                    self.retry.succeeded(&self.shared.health, Step::Redis);
                    match self.replicated().await {
                        Ok(()) => return Ok(applied),
                        Err(unreplicated) => {
                            if self.unreplicated(&unreplicated).await.is_err() {
                                return Err(ApplyError::Abandoned);
                            }
                            continue;
                        }
                    }
                }
                Err(e) => e,
            };
            if let leaderboard_store::Error::RulesChanged(board) = &e {
                info!(%board, "the board's order or ties changed; preparing the batch again");
                return Err(ApplyError::RulesChanged);
            }
            if let leaderboard_store::Error::LayoutMismatch { board, .. } = &e {
                // The board's record changed since the batch was prepared: prepared again, the
                // batch finds it unusable and sets that board's events aside ([`Writer::board_rules`]).
                if let Ok(board) = BoardId::new(board.as_str()) {
                    self.redis.router.forget(&board);
                }
                return Err(ApplyError::RulesChanged);
            }
            self.shared.counters.add(Counter::RedisErrors, 1);
            // Redis may have restarted or failed over and lost data: the cache may be ahead of it now.
            self.shared.cache.clear();
            let failure = e.failure();
            match failure {
                Failure::Record => return Err(ApplyError::Refused(e)),
                Failure::Reconnect => self.redis.reconnect().await,
                Failure::Transient | Failure::StoreBlocked => {}
            }
            if !self.retry.wait(&self.shared.health, Step::Redis, failure, &refusal(&e)).await {
                return Err(ApplyError::Abandoned);
            }
        }
    }

    /// The replicas did not confirm a write (of updates, or of a batch's
    /// applied offsets) in time: waits before it is made again (had the
    /// primary failed over, the write may have gone with it, and `WAIT` on the
    /// new one would confirm nothing about it).
    pub(super) async fn unreplicated(&mut self, unreplicated: &Unreplicated) -> Result<(), Abandoned> {
        if self.retry.wait(&self.shared.health, Step::Replicas, Failure::Transient, unreplicated).await {
            Ok(())
        } else {
            Err(Abandoned)
        }
    }

    /// Waits for the required replicas to acknowledge this connection's writes.
    pub(super) async fn replicated(&mut self) -> Result<(), Unreplicated> {
        let required = self.replicas.required().await.map_err(|_| Unreplicated { acked: 0, required: 1 })?;
        if required == 0 {
            // No replica to wait for (any more): whatever blocked this step is over.
            self.retry.succeeded(&self.shared.health, Step::Replicas);
            return Ok(());
        }
        let started = Instant::now();
        let acked =
            if let Ok(acked) = self.redis.router.store().wait_for_replicas(required, self.replicas.timeout).await {
                acked
            } else {
                // The primary did not answer (a failover, a restart): the write is repeated.
                self.shared.counters.add(Counter::RedisErrors, 1);
                0
            };
        tracing::debug!(required, acked, "replicas");
        metrics::histogram!("ingest_replica_wait_seconds").record(started.elapsed().as_secs_f64());
        if acked >= required {
            self.retry.succeeded(&self.shared.health, Step::Replicas);
            Ok(())
        } else {
            Err(Unreplicated { acked, required })
        }
    }
}

/// An error as logs may show it: its class and Redis's error codes, never a reply's text.
pub(super) fn refusal(e: &leaderboard_store::Error) -> String {
    match e.codes().as_slice() {
        [] => e.failure().as_str().to_string(),
        codes => format!("{} ({})", e.failure().as_str(), codes.join(", ")),
    }
}
