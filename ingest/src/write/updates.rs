//! One batch written: prepared under its boards' rules ([`crate::prepare`]),
//! its seasons opened, its updates applied, and the events the cache skipped
//! written after all when the cache was cleared meanwhile.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use leaderboard_contract::{BoardId, MAX_SCORE, Rejection, RejectionCode};
use leaderboard_semantics::ScoreUpdate;
use leaderboard_store::{Failure, Overflowed};
use tracing::{info, warn};

use super::apply::refusal;
use super::dead_letters::{LATE, REFUSED, unwritable_letters};
use super::{Abandoned, Writer};
use crate::batch::Batch;
use crate::dead_letter::Reject;
use crate::prepare::{
    Barred, BoardPlayer, BoardPlayers, BoardRules, ManualViews, Prepared, SeasonTarget, SeasonTime, Unwritable,
    coalesce, manual_spans, prepare,
};
use crate::shared::Counter;

/// Most seasons a writer remembers having opened (or found closed) before it starts over.
const MAX_OPENED: usize = 10_000;

/// How a batch's updates ended.
enum Written {
    /// Applied (refused ones set aside).
    Done,
    /// A board's order or ties changed: prepare the batch again.
    RulesChanged,
}

impl Writer {
    /// Writes `batch`: its malformed records to the dead letters, its updates to Redis.
    pub(super) async fn write(&mut self, batch: &Batch) -> Result<(), Abandoned> {
        metrics::histogram!("ingest_batch_events").record(batch.records as f64);
        self.dead_letter(&batch.rejects).await?;
        // Prepared under the rules the router then writes with; a board created or
        // re-created with other order or ties meanwhile makes the router refuse, and the
        // batch is prepared again, so no event is coalesced or skipped by the wrong order.
        let marks = self.player_marks(batch).await?;
        let (rules, prepared) = loop {
            let (mut rules, unwritable) = self.board_rules(batch).await?;
            let now_ms = self.clock.now_ms();
            let manual = self.manual_views(batch, &rules, now_ms).await?;
            if !manual.is_empty() {
                // Fault tests hold the writer here: it has read its seasons, and writes nothing yet.
                leaderboard_store::failpoint::hold_here("ingest::manual_viewed");
            }
            let time = SeasonTime { clock: &self.clock, now_ms, manual: &manual };
            let barred = Barred { boards: &unwritable, players: &marks };
            let prepared = prepare(batch, &mut rules, barred, &self.shared, time, &self.closed, self.replay.as_ref());
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
        let seasons: BoardPlayers = late.iter().map(|&i| BoardPlayer::from(prepared.event(batch, i))).collect();
        self.set_aside(batch, &prepared, &late, &seasons, LATE).await?;
        if !skipped.is_empty() && self.shared.cache.epoch() != prepared.cache_epoch {
            self.rewrite_skipped(batch, &prepared, rules, skipped).await?;
        }
        self.recheck_players(batch, &prepared, &marks).await?;
        self.record_freshness(&batch.event_times);
        Ok(())
    }

    /// Writes the events at `skipped` after all: the cache was cleared (Redis
    /// may have lost data) after these skips were decided, so they may rest on
    /// a lost score.
    async fn rewrite_skipped(
        &mut self,
        batch: &Batch,
        prepared: &Prepared,
        mut rules: BoardRules,
        skipped: Vec<usize>,
    ) -> Result<(), Abandoned> {
        metrics::counter!("ingest_skips_rewritten_total").increment(skipped.len() as u64);
        let mut sources = skipped;
        loop {
            let updates = coalesce(sources.iter().map(|&i| prepared.event(batch, i)), &rules);
            if let Written::Done = self.write_updates(batch, prepared, &sources, &updates, &rules).await? {
                return Ok(());
            }
            let unwritable;
            (rules, unwritable) = self.board_rules(batch).await?;
            for target in &prepared.seasons {
                let season_rules = rules.get(&target.board).copied().unwrap_or_default().for_season();
                rules.insert(target.board.season(&target.season.id), season_rules);
            }
            // A board that became unusable meanwhile: its events go to the dead letters, as
            // they would have had the batch been prepared now.
            let (stuck, rest): (Vec<usize>, Vec<usize>) =
                sources.iter().partition(|&&i| unwritable.contains_key(base_board(&prepared.event(batch, i).board)));
            self.dead_letter(&unwritable_letters(batch, prepared, &stuck, &unwritable)).await?;
            sources = rest;
        }
    }

    /// The seasons of `batch`'s `manual` boards that hold its event times,
    /// read after the batch was fetched and before any of it is written:
    /// each read also tells the board that a writer is placing events up to
    /// the latest of those times, so no later reset ends a season before them
    /// ([`leaderboard_store::board::manual`]). Retries Redis failures by class.
    async fn manual_views(&mut self, batch: &Batch, rules: &BoardRules, now_ms: i64) -> Result<ManualViews, Abandoned> {
        let mut views = ManualViews::new();
        for (board, span) in manual_spans(batch, rules, &self.clock, now_ms, self.replay.as_ref()) {
            let view = loop {
                match self.redis.router.view_manual(&board, span.from_ms, span.to_ms, true).await {
                    Ok(view) => break view,
                    Err(e) => self.retry_after(&e).await?,
                }
            };
            views.insert(board, view);
        }
        Ok(views)
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
            while let Err(e) = self.redis.router.open_season(&target.board, &board_rules, &target.season).await {
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
            let lookups = boards.iter().map(|b| self.redis.router.rules(b));
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
        let refused: BoardPlayers = outcome.refused.iter().map(|&i| BoardPlayer::from(&updates[i])).collect();
        let closed: BoardPlayers = outcome.applied.closed.iter().map(BoardPlayer::from).collect();
        self.set_aside(batch, prepared, sources, &refused, REFUSED).await?;
        self.set_aside(batch, prepared, sources, &closed, LATE).await?;
        self.overflowed(batch, &outcome.applied.overflowed).await?;
        self.shared.counters.add(Counter::Replayed, outcome.applied.replayed);
        self.shared.counters.add(Counter::Duplicates, outcome.applied.duplicates);
        for c in &outcome.applied.closed {
            if !self.closed.contains(&c.board) {
                info!(season = %c.board, "a season's fence refused a write: it is closed");
                remember(&mut self.closed, c.board.clone());
            }
        }
        let mut applied = 0u64;
        for u in updates {
            let key = BoardPlayer::from(u);
            if !refused.contains(&key) && !closed.contains(&key) {
                let r = rules.get(&u.board).copied().unwrap_or_default();
                if !r.operator.exactly_once() {
                    self.shared.cache.record(&u.board, &u.player, r.key(u.score), u.time_ms, r.order);
                }
                applied += 1;
            }
        }
        let skipped = outcome.applied.replayed + outcome.applied.duplicates + outcome.applied.overflowed.len() as u64;
        self.shared.counters.add(Counter::Applied, applied.saturating_sub(skipped));
        Ok(Written::Done)
    }

    /// Dead-letters the records of `sum` updates refused for overflowing
    /// (`out_of_bounds`), then tells the store they are: until then a replay
    /// of them reports them again, so a crash in between loses no dead letter.
    async fn overflowed(&mut self, batch: &Batch, overflowed: &[Overflowed]) -> Result<(), Abandoned> {
        if overflowed.is_empty() {
            return Ok(());
        }
        let rejects: Vec<Reject> = overflowed
            .iter()
            .filter_map(|o| {
                let record =
                    batch.accepted.iter().find(|r| r.partition == o.source.partition && r.offset == o.source.offset)?;
                let detail = format!("the sum of player {} on board {} would pass {MAX_SCORE}", o.player, o.board);
                Some(Reject { record: record.clone(), rejection: Rejection::new(RejectionCode::OutOfBounds, detail) })
            })
            .collect();
        self.dead_letter(&rejects).await?;
        while let Err(e) = self.redis.router.settle(overflowed).await {
            self.retry_after(&e).await?;
        }
        Ok(())
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

/// Adds `season` to a writer's bounded set of seasons, starting over when it is full.
fn remember(seasons: &mut HashSet<BoardId>, season: BoardId) {
    if seasons.len() >= MAX_OPENED {
        seasons.clear();
    }
    seasons.insert(season);
}

/// The board an event's board or season (`<board>@<id>`) belongs to.
pub(super) fn base_board(board: &BoardId) -> &str {
    board.season_parts().map_or(board.as_str(), |(base, _)| base)
}

/// Whether a failed read of one board's record is about that board alone: a
/// record naming a layout unrelated to this worker's, one that does not
/// parse, a key of the wrong type. Anything else (Redis down, blocked) is
/// about the store, and waits.
fn board_scoped(e: &leaderboard_store::Error) -> bool {
    matches!(e, leaderboard_store::Error::LayoutMismatch { .. } | leaderboard_store::Error::Corrupt(_))
        || e.failure() == Failure::Record
}

/// The dead-letter detail of an event of an unwritable board: the board and
/// the cause, never a reply's text.
fn unwritable_detail(board: &BoardId, e: &leaderboard_store::Error) -> String {
    match e {
        leaderboard_store::Error::LayoutMismatch { recorded, configured, .. } => {
            format!("board {board} is stored with layout {recorded}; this worker writes {configured}")
        }
        _ => format!("board {board}: its record is unreadable ({})", refusal(e)),
    }
}
