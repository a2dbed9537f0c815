//! The write stage: dead letters, then Redis, then offsets, in that order.
//!
//! A batch's offsets are stored only after its malformed records are in the
//! dead-letter topic and its updates are acknowledged by Redis. Each failure
//! is classified ([`Failure`]) and handled by its class:
//!
//! | class | handling |
//! |---|---|
//! | transient (timeouts, `LOADING`, `BUSY`, `TRYAGAIN`, redirects) | retry with backoff and jitter |
//! | reconnect (connection lost, `READONLY` after a failover) | clear the cache, open a new connection, retry |
//! | store blocked (`OOM`, `MISCONF`, `NOPERM`, unknown errors) | retry with backoff, `/readyz` false, `ingest_blocked{step}` 1, one log line per change |
//! | record (`WRONGTYPE`, foreign data) | find the refused updates by bisection, dead-letter their records as `unwritable`, go on |
//! | one board's record unusable (an unrelated layout, unreadable) | that board's events become dead letters (`unwritable`, naming the cause); the batch's other boards go on |
//!
//! Any failed Redis write also clears the best-score cache: Redis may have
//! lost what it acknowledged. At shutdown, retries stop after the drain
//! timeout and the unfinished batch is abandoned without storing its offsets,
//! so its records are redelivered to the next owner.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use leaderboard_contract::{BoardId, PlayerId, Rejection, RejectionCode};
use rdkafka::consumer::Consumer;
use shard_router::applied::{self, Mark};
use shard_router::{Clock, Closed, Failure, RedisTarget, Router, RouterOptions, ScoreUpdate, Store, StoreOptions};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::batch::Batch;
use crate::config::Replay;
use crate::dead_letter::{DeadLetters, Reject};
use crate::health::Step;
use crate::loss::{Check, Guard};
use crate::poll::IngestConsumer;
use crate::prepare::{BoardRules, Prepared, SeasonTarget, SeasonTime, Unwritable, coalesce, prepare};
use crate::replicas::ReplicaAck;
use crate::retry::Retry;
use crate::shared::{Counter, Shared};

/// Everything the writer needs.
pub struct Writer {
    /// Leaderboard writes.
    pub router: Router,
    /// Where Redis is, to reconnect.
    pub target: RedisTarget,
    /// How to connect to it.
    pub store_options: StoreOptions,
    /// The router's options, to rebuild it on a new connection.
    pub router_options: RouterOptions,
    /// Dead-letter producer.
    pub dead_letters: DeadLetters,
    /// Where offsets are stored.
    pub consumer: Arc<IngestConsumer>,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Source topic (for storing offsets).
    pub topic: String,
    /// Backoff, health and the drain deadline.
    pub retry: Retry,
    /// Replicas that must acknowledge each write before offsets are stored.
    pub replicas: ReplicaAck,
    /// Freshness (event time to applied), in milliseconds, for the exit report.
    pub freshness: Histogram<u64>,
    /// The clock seasons are decided by.
    pub clock: Clock,
    /// Seasons this writer opened (or found open), so each is opened once.
    pub opened: HashSet<BoardId>,
    /// Seasons whose fence this writer met: their later events are dead letters at once.
    pub closed: HashSet<BoardId>,
    /// The store's epoch, checked after every batch before its offsets are stored
    /// ([`crate::loss`]); `None` for a recovery's replay, which writes into a store without one.
    pub guard: Option<Arc<Guard>>,
    /// Set for a recovery's replay ([`crate::config::Replay`]).
    pub replay: Option<Replay>,
}

/// Most seasons a writer remembers having opened (or found closed) before it starts over.
const MAX_OPENED: usize = 10_000;

/// Adds `season` to a writer's bounded set of seasons, starting over when it is full.
fn remember(seasons: &mut HashSet<BoardId>, season: BoardId) {
    if seasons.len() >= MAX_OPENED {
        seasons.clear();
    }
    seasons.insert(season);
}

/// The dead letter of an event its season's fence refused.
const LATE: (RejectionCode, &str) =
    (RejectionCode::SeasonClosed, "the season closed before this event was written; it counts for all-time");

/// Fewer replicas than required acknowledged a write in time.
#[derive(Debug, thiserror::Error)]
#[error("{acked} of {required} replicas acknowledged the write in time")]
struct Unreplicated {
    acked: u32,
    required: u32,
}

/// The step was given up at shutdown.
struct Abandoned;

/// Why a Redis write did not finish.
enum ApplyError {
    Abandoned,
    /// The store refuses these updates for good.
    Refused(shard_router::Error),
    /// A board's order or ties are not those the batch was prepared under.
    RulesChanged,
}

/// How a batch's updates ended.
enum Written {
    /// Applied (refused ones set aside).
    Done,
    /// A board's order or ties changed: prepare the batch again.
    RulesChanged,
}

impl Writer {
    /// Writes batches until the input closes or shutdown's drain deadline passes.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Batch>) -> Histogram<u64> {
        // Present from the start, so an alert on its increase sees the first one.
        metrics::counter!("ingest_unwritable_board_lookups_total").increment(0);
        while let Some(batch) = rx.recv().await {
            if self.write_confirmed(&batch).await.is_err() {
                warn!("shutdown: abandoned an unfinished batch; its records will be redelivered");
                self.shared.partitions.complete(&batch.spans, |_, _| {});
                while let Some(rest) = rx.recv().await {
                    self.shared.partitions.complete(&rest.spans, |_, _| {});
                }
                break;
            }
            // Fault tests stop the worker here: in Redis, offsets not yet stored.
            hold_here("ingest::after_redis_write");
            let (consumer, topic, guard) = (&self.consumer, self.topic.as_str(), self.guard.as_deref());
            self.shared.partitions.complete(&batch.spans, |partition, offset| {
                // Stores offset + 1 for the next commit.
                if let Err(e) = consumer.store_offset(topic, partition, offset) {
                    warn!(error = %e, partition, "offset not stored");
                }
                if let Some(guard) = guard {
                    guard.stored(partition, offset + 1);
                }
            });
            self.shared.counters.add(Counter::Batches, 1);
            self.shared.health.progress();
        }
        self.freshness
    }

    /// Writes `batch` into the store the worker knows: waits while it is lost,
    /// and writes the batch again when the epoch after the write says the
    /// store was lost (the batch may have gone into the wiped store) or recovered meanwhile.
    async fn write_confirmed(&mut self, batch: &Batch) -> Result<(), Abandoned> {
        let marks = marks(batch);
        let Some(guard) = self.guard.clone() else {
            // A recovery's replay into a lost store: no epoch to hold to.
            self.write(batch).await?;
            loop {
                match applied::advance(self.router.store(), &self.topic, &marks, None).await {
                    Ok(_) => match self.replicated().await {
                        Ok(()) => return Ok(()),
                        Err(unreplicated) => self.unreplicated(&unreplicated).await?,
                    },
                    Err(e) => self.retry_after(&e).await?,
                }
            }
        };
        loop {
            while guard.is_lost() {
                if !self.retry.wait(&self.shared.health, Step::StoreLost, Failure::StoreBlocked, &"store lost").await {
                    return Err(Abandoned);
                }
                if let Err(e) = guard.check().await {
                    self.retry_after(&e).await?;
                }
            }
            let recoveries = guard.recoveries();
            // The effects, confirmed by the replicas ([`Writer::apply`]).
            self.write(batch).await?;
            // Then the applied offsets, raised in the round trip that checks the epoch and
            // confirmed by the replicas too, before the offsets are stored ([`crate::loss`]).
            loop {
                match guard.confirm(self.router.store(), &marks).await {
                    Ok(Check::Same) if guard.recoveries() == recoveries => match self.replicated().await {
                        Ok(()) => return Ok(()),
                        Err(unreplicated) => self.unreplicated(&unreplicated).await?,
                    },
                    Ok(_) => {
                        // Lost or recovered meanwhile: the batch may have gone into the old store.
                        self.forget_store_state();
                        break;
                    }
                    Err(e) => self.retry_after(&e).await?,
                }
            }
        }
    }

    /// Forgets everything learnt from a store that was lost or recovered.
    fn forget_store_state(&mut self) {
        self.router = Router::new(self.router.store().clone(), self.router.spec().clone(), self.router_options);
        self.opened.clear();
        self.closed.clear();
        self.shared.cache.clear();
    }

    async fn write(&mut self, batch: &Batch) -> Result<(), Abandoned> {
        metrics::histogram!("ingest_batch_events").record(batch.records as f64);
        self.dead_letter(&batch.rejects).await?;
        // Prepared under the rules the router then writes with; a board created or
        // re-created with other order or ties meanwhile makes the router refuse, and the
        // batch is prepared again, so no event is coalesced or skipped by the wrong order.
        let (rules, prepared) = loop {
            let (mut rules, unwritable) = self.board_rules(batch).await?;
            let time = SeasonTime { clock: &self.clock, now_ms: self.clock.now_ms() };
            let prepared =
                prepare(batch, &mut rules, &unwritable, &self.shared, time, &self.closed, self.replay.as_ref());
            self.open_seasons(&prepared.seasons, &rules).await?;
            let written = self.write_updates(batch, &prepared, &prepared.kept, &prepared.updates, &rules).await?;
            if let Written::Done = written {
                break (rules, prepared);
            }
        };
        prepared.count(&self.shared);
        self.dead_letter(&prepared.refused).await?;
        // Events of a season found closed that the cache skipped are not in it either.
        let (late, skipped): (Vec<usize>, Vec<usize>) =
            prepared.skipped.iter().partition(|&&i| self.closed.contains(&prepared.event(batch, i).board));
        if !late.is_empty() {
            let seasons: HashSet<(&BoardId, &PlayerId)> =
                late.iter().map(|&i| prepared.event(batch, i)).map(|e| (&e.board, &e.player)).collect();
            let (code, detail) = LATE;
            self.dead_letter(&set_aside(batch, &prepared, &late, &seasons, code, detail)).await?;
        }
        if !skipped.is_empty() && self.shared.cache.epoch() != prepared.cache_epoch {
            // The cache was cleared (Redis may have lost data) after these skips were
            // decided: they may rest on a lost score, so write those events after all.
            metrics::counter!("ingest_skips_rewritten_total").increment(skipped.len() as u64);
            let mut rules = rules;
            let mut sources = skipped;
            loop {
                let updates = coalesce(sources.iter().map(|&i| prepared.event(batch, i)), &rules);
                if let Written::Done = self.write_updates(batch, &prepared, &sources, &updates, &rules).await? {
                    break;
                }
                let unwritable;
                (rules, unwritable) = self.board_rules(batch).await?;
                for target in &prepared.seasons {
                    let season_rules = rules.get(&target.board).copied().unwrap_or_default().for_season();
                    rules.insert(target.board.season(&target.season.id), season_rules);
                }
                // A board that became unusable meanwhile: its events go to the dead letters, as
                // they would have had the batch been prepared now.
                let (stuck, rest): (Vec<usize>, Vec<usize>) = sources
                    .iter()
                    .partition(|&&i| unwritable.contains_key(base_board(&prepared.event(batch, i).board)));
                self.dead_letter(&unwritable_letters(batch, &prepared, &stuck, &unwritable)).await?;
                sources = rest;
            }
        }
        self.record_freshness(&batch.event_times);
        Ok(())
    }

    /// Opens the seasons a batch writes to that this writer has not opened
    /// yet, retrying Redis failures by class.
    async fn open_seasons(&mut self, seasons: &[SeasonTarget], rules: &BoardRules) -> Result<(), Abandoned> {
        for target in seasons {
            let name = target.board.season(&target.season.id);
            if self.opened.contains(&name) {
                continue;
            }
            let board_rules = rules.get(&target.board).copied().unwrap_or_default();
            while let Err(e) = self.router.open_season(&target.board, &board_rules, &target.season).await {
                self.retry_after(&e).await?;
            }
            remember(&mut self.opened, name);
        }
        Ok(())
    }

    /// The rules of every board in `batch`, retrying Redis failures by class;
    /// the boards whose record this worker cannot use apart, with why: one
    /// such board must not stall the others (their events become dead letters).
    async fn board_rules(&mut self, batch: &Batch) -> Result<(BoardRules, Unwritable), Abandoned> {
        let boards: Vec<&BoardId> = batch.events.iter().map(|e| &e.board).collect::<HashSet<_>>().into_iter().collect();
        'lookup: loop {
            let lookups = boards.iter().map(|b| self.router.rules(b));
            let (mut rules, mut unwritable) = (BoardRules::new(), Unwritable::new());
            for (board, looked_up) in boards.iter().zip(futures::future::join_all(lookups).await) {
                match looked_up {
                    Ok(r) => {
                        rules.insert((*board).clone(), r);
                    }
                    Err(e) if board_scoped(&e) => {
                        warn!(%board, error = %refusal(&e), "this worker cannot use the board's record: its events go to the dead letters");
                        metrics::counter!("ingest_unwritable_board_lookups_total").increment(1);
                        unwritable.insert(board.to_string(), unwritable_detail(board, &e));
                    }
                    Err(e) => {
                        self.retry_after(&e).await?;
                        continue 'lookup;
                    }
                }
            }
            return Ok((rules, unwritable));
        }
    }

    /// After a failed Redis call that is not a write: counts it, reconnects when its class asks
    /// for that, and waits before the retry (as long as the class says); `Abandoned` at shutdown.
    async fn retry_after(&mut self, e: &shard_router::Error) -> Result<(), Abandoned> {
        self.shared.counters.add(Counter::RedisErrors, 1);
        let failure = e.failure();
        if failure == Failure::Reconnect {
            self.reconnect().await;
        }
        if self.retry.wait(&self.shared.health, Step::Redis, failure, &refusal(e)).await {
            Ok(())
        } else {
            Err(Abandoned)
        }
    }

    /// Applies `updates` (made from the events at `sources`) under `rules`;
    /// sets aside the records behind the ones the store refuses, and
    /// dead-letters those a closed season's fence refused.
    async fn write_updates(
        &mut self,
        batch: &Batch,
        prepared: &Prepared,
        sources: &[usize],
        updates: &[ScoreUpdate],
        rules: &BoardRules,
    ) -> Result<Written, Abandoned> {
        if updates.is_empty() {
            return Ok(Written::Done);
        }
        let Some(outcome) = self.apply_all(updates, rules).await? else { return Ok(Written::RulesChanged) };
        let refused: HashSet<(&BoardId, &PlayerId)> =
            outcome.refused.iter().map(|&i| (&updates[i].board, &updates[i].player)).collect();
        let closed: HashSet<(&BoardId, &PlayerId)> = outcome.closed.iter().map(|c| (&c.board, &c.player)).collect();
        let unwritable = (RejectionCode::Unwritable, "the store refuses writes to this board");
        for (keys, (code, detail)) in [(&refused, unwritable), (&closed, LATE)] {
            if !keys.is_empty() {
                self.dead_letter(&set_aside(batch, prepared, sources, keys, code, detail)).await?;
            }
        }
        for c in &outcome.closed {
            if !self.closed.contains(&c.board) {
                info!(season = %c.board, "a season's fence refused a write: it is closed");
                remember(&mut self.closed, c.board.clone());
            }
        }
        let mut applied = 0u64;
        for u in updates {
            if !refused.contains(&(&u.board, &u.player)) && !closed.contains(&(&u.board, &u.player)) {
                let r = rules.get(&u.board).copied().unwrap_or_default();
                self.shared.cache.record(&u.board, &u.player, r.key(u.score), u.time_ms, r.order);
                applied += 1;
            }
        }
        self.shared.counters.add(Counter::Applied, applied);
        Ok(Written::Done)
    }

    /// Sends `rejects` to the dead-letter topic, retrying what was not acknowledged.
    async fn dead_letter(&mut self, rejects: &[Reject]) -> Result<(), Abandoned> {
        if rejects.is_empty() {
            return Ok(());
        }
        if self.replay.is_some() {
            // The live workers dead-lettered these when the records first came; counted, and
            // the ones signed with a key the replay lacks fail the recovery ([`crate::recovery`]).
            metrics::counter!("ingest_replay_rejects_total").increment(rejects.len() as u64);
            self.shared.counters.add(Counter::DeadLettered, rejects.len() as u64);
            let unverifiable = rejects.iter().filter(|r| r.record.unverifiable).count();
            self.shared.counters.add(Counter::Unverifiable, unverifiable as u64);
            return Ok(());
        }
        let mut sent = vec![false; rejects.len()];
        while let Err(e) = self.dead_letters.send(rejects, &mut sent).await {
            // The broker is unreachable or refuses: offsets stay where they are until it accepts.
            metrics::counter!("ingest_dead_letter_failures_total").increment(e.failed as u64);
            if !self.retry.wait(&self.shared.health, Step::DeadLetter, Failure::Transient, &e).await {
                return Err(Abandoned);
            }
        }
        self.retry.succeeded(&self.shared.health, Step::DeadLetter);
        self.shared.counters.add(Counter::DeadLettered, rejects.len() as u64);
        for r in rejects {
            metrics::counter!("ingest_events_dead_lettered_total", "reason" => r.rejection.code.as_str()).increment(1);
        }
        Ok(())
    }

    /// Applies `updates`; returns the indices of the ones the store refuses
    /// for good, found by bisection (each half is applied again: best-score
    /// writes make repeating the accepted ones harmless), and the ones a
    /// closed season's fence refused; `None` when a board's order or ties are
    /// not those of `rules`.
    async fn apply_all(&mut self, updates: &[ScoreUpdate], rules: &BoardRules) -> Result<Option<Outcome>, Abandoned> {
        let mut outcome = Outcome::default();
        let mut ranges = Vec::new();
        ranges.push(0..updates.len());
        while let Some(range) = ranges.pop() {
            match self.apply(&updates[range.clone()], rules).await {
                Ok(closed) => outcome.closed.extend(closed),
                Err(ApplyError::Abandoned) => return Err(Abandoned),
                Err(ApplyError::RulesChanged) => return Ok(None),
                Err(ApplyError::Refused(e)) if range.len() == 1 => {
                    warn!(board = %updates[range.start].board, error = %refusal(&e), "the store refuses an update");
                    outcome.refused.insert(range.start);
                }
                Err(ApplyError::Refused(_)) => {
                    let mid = range.start + range.len() / 2;
                    ranges.push(range.start..mid);
                    ranges.push(mid..range.end);
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
    async fn apply(&mut self, updates: &[ScoreUpdate], rules: &BoardRules) -> Result<Vec<Closed>, ApplyError> {
        loop {
            let started = Instant::now();
            let result = self.router.apply_expecting(updates, rules).await;
            metrics::histogram!("ingest_redis_write_seconds").record(started.elapsed().as_secs_f64());
            let e = match result {
                Ok(closed) => {
                    self.retry.succeeded(&self.shared.health, Step::Redis);
                    match self.replicated().await {
                        Ok(()) => return Ok(closed),
                        Err(unreplicated) => {
                            if !self
                                .retry
                                .wait(&self.shared.health, Step::Replicas, Failure::Transient, &unreplicated)
                                .await
                            {
                                return Err(ApplyError::Abandoned);
                            }
                            continue;
                        }
                    }
                }
                Err(e) => e,
            };
            if let shard_router::Error::RulesChanged(board) = &e {
                info!(%board, "the board's order or ties changed; preparing the batch again");
                return Err(ApplyError::RulesChanged);
            }
            if let shard_router::Error::LayoutMismatch { board, .. } = &e {
                // The board's record changed since the batch was prepared: prepared again, the
                // batch finds it unusable and sets that board's events aside ([`Writer::board_rules`]).
                if let Ok(board) = BoardId::new(board.as_str()) {
                    self.router.forget(&board);
                }
                return Err(ApplyError::RulesChanged);
            }
            self.shared.counters.add(Counter::RedisErrors, 1);
            // Redis may have restarted or failed over and lost data: the cache may be ahead of it now.
            self.shared.cache.clear();
            let failure = e.failure();
            match failure {
                Failure::Record => return Err(ApplyError::Refused(e)),
                Failure::Reconnect => self.reconnect().await,
                Failure::Transient | Failure::StoreBlocked => {}
            }
            if !self.retry.wait(&self.shared.health, Step::Redis, failure, &refusal(&e)).await {
                return Err(ApplyError::Abandoned);
            }
        }
    }

    /// The replicas did not confirm a batch's applied offsets in time: waits
    /// before they are written again (had the primary failed over, they may
    /// have gone with it, and `WAIT` on the new one would confirm nothing about
    /// them; the effects were confirmed before).
    async fn unreplicated(&mut self, unreplicated: &Unreplicated) -> Result<(), Abandoned> {
        if self.retry.wait(&self.shared.health, Step::Replicas, Failure::Transient, unreplicated).await {
            Ok(())
        } else {
            Err(Abandoned)
        }
    }

    /// Waits for the required replicas to acknowledge this connection's writes.
    async fn replicated(&mut self) -> Result<(), Unreplicated> {
        let required = self.replicas.required().await.map_err(|_| Unreplicated { acked: 0, required: 1 })?;
        if required == 0 {
            // No replica to wait for (any more): whatever blocked this step is over.
            self.retry.succeeded(&self.shared.health, Step::Replicas);
            return Ok(());
        }
        let started = Instant::now();
        let acked = if let Ok(acked) = self.router.store().wait_for_replicas(required, self.replicas.timeout).await {
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

    /// Opens a new connection (which finds the current primary); keeps the
    /// old one, which reconnects by itself, when Redis is not reachable yet.
    async fn reconnect(&mut self) {
        match Store::connect(&self.target, self.store_options).await {
            Ok(store) => {
                self.router = Router::new(store, self.router.spec().clone(), self.router_options);
                info!("redis: reconnected");
            }
            Err(e) => info!(error = %refusal(&e), "redis: not reachable yet"),
        }
    }

    fn record_freshness(&mut self, event_times: &[u64]) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        for &ts in event_times {
            // Clock skew can put producers ahead of us; count that as fresh.
            let age = now.saturating_sub(ts).max(1);
            let _ = self.freshness.record(age);
            metrics::histogram!("ingest_freshness_seconds").record(age as f64 / 1000.0);
        }
    }
}

/// What applying a batch's updates left out.
#[derive(Debug, Default)]
struct Outcome {
    /// Indices of the updates the store refuses for good.
    refused: HashSet<usize>,
    /// Updates a closed season's fence refused.
    closed: Vec<Closed>,
}

/// The applied offsets a batch reaches: per partition, the offset after its last record.
fn marks(batch: &Batch) -> Vec<Mark> {
    batch.spans.iter().map(|(&partition, span)| Mark { partition, next: span.last_offset + 1, floor: None }).collect()
}

/// The records behind the events at `sources` whose (board, player) is in `keys`, as dead letters.
fn set_aside(
    batch: &Batch,
    prepared: &Prepared,
    sources: &[usize],
    keys: &HashSet<(&BoardId, &PlayerId)>,
    code: RejectionCode,
    detail: &str,
) -> Vec<Reject> {
    sources
        .iter()
        .map(|&i| prepared.event(batch, i))
        .filter(|e| keys.contains(&(&e.board, &e.player)))
        .map(|e| Reject { record: batch.accepted[e.record].clone(), rejection: Rejection::new(code, detail) })
        .collect()
}

/// The board an event's board or season (`<board>@<id>`) belongs to.
fn base_board(board: &BoardId) -> &str {
    board.season_parts().map_or(board.as_str(), |(base, _)| base)
}

/// One dead letter per record behind the events at `stuck`, with why its board is unwritable.
fn unwritable_letters(batch: &Batch, prepared: &Prepared, stuck: &[usize], unwritable: &Unwritable) -> Vec<Reject> {
    let mut records = HashSet::new();
    stuck
        .iter()
        .map(|&i| prepared.event(batch, i))
        .filter(|e| records.insert(e.record))
        .map(|e| {
            let why = unwritable.get(base_board(&e.board)).cloned().unwrap_or_default();
            Reject {
                record: batch.accepted[e.record].clone(),
                rejection: Rejection::new(RejectionCode::Unwritable, why),
            }
        })
        .collect()
}

/// Whether a failed read of one board's record is about that board alone: a
/// record naming a layout unrelated to this worker's, one that does not
/// parse, a key of the wrong type. Anything else (Redis down, blocked) is
/// about the store, and waits.
fn board_scoped(e: &shard_router::Error) -> bool {
    matches!(e, shard_router::Error::LayoutMismatch { .. } | shard_router::Error::Corrupt(_))
        || e.failure() == Failure::Record
}

/// The dead-letter detail of an event of an unwritable board: the board and
/// the cause, never a reply's text.
fn unwritable_detail(board: &BoardId, e: &shard_router::Error) -> String {
    match e {
        shard_router::Error::LayoutMismatch { recorded, configured, .. } => {
            format!("board {board} is stored with layout {recorded}; this worker writes {configured}")
        }
        _ => format!("board {board}: its record is unreadable ({})", refusal(e)),
    }
}

/// An error as logs may show it: its class and Redis's error codes, never a reply's text.
fn refusal(e: &shard_router::Error) -> String {
    match e.codes().as_slice() {
        [] => e.failure().as_str().to_string(),
        codes => format!("{} ({})", e.failure().as_str(), codes.join(", ")),
    }
}

/// Evaluates the fail point `name` (the `failpoints` feature, fault tests
/// only). Its `pause` blocks the thread until the test lifts it; on a
/// multi-thread runtime the worker first hands its other tasks (the watermark
/// publisher, the telemetry listener) to another thread, so only the writer
/// stops and the rest of the worker goes on as it would behind a slow Redis.
#[cfg(feature = "failpoints")]
fn hold_here(name: &str) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let configured = fail::list().iter().any(|(point, _)| point == name);
    if configured && Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        tokio::task::block_in_place(|| fail::fail_point!(name));
    } else {
        fail::fail_point!(name);
    }
}

/// Without the `failpoints` feature, nothing.
#[cfg(not(feature = "failpoints"))]
fn hold_here(_name: &str) {}
