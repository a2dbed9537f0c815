//! [`Router`]: the one interface ingest and api use, whatever the layout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::model::{BoardStats, Entry, Page, ScoreUpdate, ShardStats, Standing, best_per_key};
use leaderboard_semantics::rules::{Order, Rules};

use crate::Result;
use crate::connection::store::Store;
use crate::layout::range::RangeBoards;
use crate::layout::record::{BoardRecord, RecordedLayout, Records};
use crate::layout::spec::LayoutSpec;
use crate::layout::tally::{self, Applied, Overflowed};
use crate::layout::{hash, single};

/// An update a closed season's fence refused: nothing of it was written
/// (ingest dead-letters its events as `season_closed`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Closed {
    /// The season (`<board>@<id>`).
    pub board: BoardId,
    /// The player.
    pub player: PlayerId,
}

/// Tuning of a [`Router`].
#[derive(Debug, Clone, Copy)]
pub struct RouterOptions {
    /// `range` only: how long precomputed shard sizes are used before a reader refreshes them.
    pub size_refresh: Duration,
    /// Follow every board's recorded layout, whatever the configured one (which
    /// then only decides new boards' layout): for a recovery's replay, which
    /// writes boards restored in any layout. Off, a board recorded with an
    /// unrelated layout fails with [`crate::Error::LayoutMismatch`].
    pub any_layout: bool,
}

impl Default for RouterOptions {
    fn default() -> Self {
        Self { size_refresh: Duration::from_secs(1), any_layout: false }
    }
}

/// Reads and writes boards. Cheap to clone; clones share connections and caches.
///
/// A router is configured with a layout, which new boards get; an existing
/// board is read and written as its record says ([`crate::layout::record`]),
/// following a layout migration, and refused when the record names a layout
/// unrelated to the configured one.
#[derive(Debug, Clone)]
pub struct Router {
    store: Store,
    spec: LayoutSpec,
    range: Arc<RangeBoards>,
    records: Arc<Records>,
}

/// How many times a write re-reads the board's record before giving up: each
/// re-read follows a migration step, which takes far longer than a batch.
const MAX_RECORD_RETRIES: usize = 8;

impl Router {
    /// A router over `store` using `spec`.
    pub fn new(store: Store, spec: LayoutSpec, options: RouterOptions) -> Self {
        let initial = match &spec {
            LayoutSpec::Range { boundaries } => boundaries.clone(),
            _ => Vec::new(),
        };
        let range = Arc::new(RangeBoards::new(initial, options.size_refresh));
        let records = Arc::new(Records::new(RecordedLayout::of(&spec), options.any_layout));
        Self { store, spec, range, records }
    }

    /// A router for an existing board, configured with the layout the board
    /// is recorded with, and the record: what operators' tools use to act on
    /// any board. `None` when the board has no record.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails; [`crate::Error::Corrupt`] for an unreadable record.
    pub async fn for_board(
        store: &Store,
        board: &BoardId,
        options: RouterOptions,
    ) -> Result<Option<(Self, BoardRecord)>> {
        let Some(record) = crate::layout::record::recorded(store, board).await? else { return Ok(None) };
        let spec = match record.layout {
            // A range board's boundaries are in its metadata; these only matter for new boards.
            RecordedLayout::Range => LayoutSpec::Range { boundaries: Vec::new() },
            other => other.to_string().parse()?,
        };
        Ok(Some((Self::new(store.clone(), spec, options), record)))
    }

    /// The configured layout (the one new boards get).
    pub fn spec(&self) -> &LayoutSpec {
        &self.spec
    }

    /// The Redis handle.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn range_boards(&self) -> &RangeBoards {
        &self.range
    }

    /// The board's record for a read; `None` when the board has none.
    ///
    /// # Errors
    /// [`crate::Error::LayoutMismatch`] when the record names an unrelated layout.
    async fn record(&self, board: &BoardId) -> Result<Option<Arc<BoardRecord>>> {
        self.records.for_read(&self.store, board).await
    }

    /// The layout and rules a read of `board` uses: the recorded ones, else
    /// the configured layout and the default rules.
    pub(crate) async fn read_layout(&self, board: &BoardId) -> Result<(RecordedLayout, Rules)> {
        let (layout, rules) = match self.record(board).await? {
            Some(record) => (record.layout, record.rules),
            None => (RecordedLayout::of(&self.spec), Rules::default()),
        };
        if layout != RecordedLayout::Range {
            // A range layout migrated away: its cached metadata must not outlive it.
            self.range.forget(board);
        }
        Ok((layout, rules))
    }

    /// Sets `board`'s rules ([`crate::layout::record::set_rules`]). A board this
    /// creates gets the configured layout, and a `range` board its metadata
    /// with the configured boundaries (ranking keys) right away.
    ///
    /// # Errors
    /// As [`crate::layout::record::set_rules`].
    pub async fn set_rules(&self, board: &BoardId, rules: Rules) -> Result<BoardRecord> {
        let layout = RecordedLayout::of(&self.spec);
        let (record, created) = crate::layout::record::set_rules_reporting(&self.store, board, layout, rules).await?;
        if created && matches!(self.spec, LayoutSpec::Range { .. }) {
            self.range.create(&self.store, board).await?;
        }
        self.forget(board);
        Ok(record)
    }

    /// The board's rules (the defaults for a board without a record), as
    /// this router last read them (at most [`crate::layout::record::RECORD_TTL`] ago).
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails; [`crate::Error::LayoutMismatch`] as reads.
    pub async fn rules(&self, board: &BoardId) -> Result<Rules> {
        Ok(self.record(board).await?.map(|r| r.rules).unwrap_or_default())
    }

    /// Forgets what this router knows about `board` (after its record changed).
    pub fn forget(&self, board: &BoardId) {
        self.records.forget(board);
        self.range.forget(board);
    }

    /// Applies a batch of best-score updates, each under its board's rules.
    ///
    /// Updates of one player on one board are coalesced to the best one
    /// first. Applying a batch any number of times, in any order relative to
    /// other batches, leaves the same state: every write keeps the better of
    /// the stored and the new (`ZADD GT`, or its `earliest` form). Bounds are
    /// the caller's to enforce ([`Rules::accepts`]): ingest dead-letters what
    /// they refuse.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails; the batch may then be partly
    /// applied, and applying it again is safe. [`crate::Error::LayoutMismatch`]
    /// when a board is stored with another layout (nothing of it is written).
    pub async fn apply(&self, updates: &[ScoreUpdate]) -> Result<Applied> {
        self.apply_expecting(updates, &HashMap::new()).await
    }

    /// [`Router::apply`] for a caller that prepared the batch under `expected`
    /// rules (ingest coalesces and skips by them): a board whose recorded order
    /// or ties differ fails with [`crate::Error::RulesChanged`] before anything
    /// of it is written, so the caller can prepare the batch again.
    ///
    /// # Errors
    /// As [`Router::apply`], and [`crate::Error::RulesChanged`].
    pub async fn apply_expecting(
        &self,
        updates: &[ScoreUpdate],
        expected: &HashMap<BoardId, Rules>,
    ) -> Result<Applied> {
        self.write_boards(updates, expected, true).await
    }

    /// Writes each board's updates, all boards at once: by their operator, or as best scores.
    async fn write_boards(
        &self,
        updates: &[ScoreUpdate],
        expected: &HashMap<BoardId, Rules>,
        by_operator: bool,
    ) -> Result<Applied> {
        let mut by_board: HashMap<&BoardId, Vec<&ScoreUpdate>> = HashMap::new();
        for u in updates {
            by_board.entry(&u.board).or_default().push(u);
        }
        let writes =
            by_board.into_iter().map(|(board, batch)| self.apply_board(board, batch, expected.get(board), by_operator));
        let mut applied = Applied::default();
        for board in futures::future::try_join_all(writes).await? {
            applied.extend(board);
        }
        Ok(applied)
    }

    /// Loads players with the scores given, on any board: into a board where
    /// they are not yet (a seeded benchmark, a restore), this is the score
    /// they get, whatever the board's operator. It is the best-score write
    /// ([`Router::apply`] on a `best` board), so on a `last` or `sum` board it
    /// must not meet live writes: they would be neither added to nor replaced.
    ///
    /// # Errors
    /// As [`Router::apply`].
    pub async fn load(&self, rows: &[ScoreUpdate]) -> Result<Applied> {
        self.write_boards(rows, &HashMap::new(), false).await
    }

    /// Forgets `sum` refusals whose dead letters are sent ([`Applied::overflowed`]).
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails; settling again is harmless.
    pub async fn settle(&self, overflowed: &[Overflowed]) -> Result<()> {
        tally::settle(&self.store, overflowed).await
    }

    /// Writes one `last` or `sum` board's updates (in record order per
    /// partition), each record at most once, to the one layout it is stored with.
    async fn apply_tally(&self, board: &BoardId, record: &BoardRecord, batch: &[&ScoreUpdate]) -> Result<Applied> {
        let layouts = record.write_set();
        let [layout] = layouts.as_slice() else {
            let layouts = layouts.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ");
            return Err(crate::Error::operator_layout(board, record.rules.operator, layouts));
        };
        let written = match tally::apply(&self.store, board, *layout, batch, &record.rules).await {
            Err(crate::Error::NoSeason(_)) => {
                tally::Written { closed: (0..batch.len()).collect(), ..Default::default() }
            }
            Err(e) => {
                self.records.forget(board); // the failure may come from a stale record
                return Err(e);
            }
            Ok(written) => written,
        };
        if *layout == RecordedLayout::Range {
            if crate::failpoint::triggered("store::tally_before_placing") {
                // Fault tests: the homes took the batch, and the writer stopped before placing it.
                let lost = std::io::Error::new(std::io::ErrorKind::TimedOut, "fail point: stopped before placing");
                return Err(crate::Error::Redis(redis::RedisError::from(lost)));
            }
            crate::failpoint::hold_here("store::tally_placing");
            self.range.place(&self.store, board, &written.homes, record.rules.ties).await?;
        }
        let closed = written.closed.iter().map(|&i| Closed { board: board.clone(), player: batch[i].player.clone() });
        let overflowed = written.overflowed.into_iter().filter_map(|(i, shard)| {
            Some(Overflowed {
                board: board.clone(),
                player: batch[i].player.clone(),
                source: batch[i].source.clone()?,
                shard,
            })
        });
        Ok(Applied {
            closed: closed.collect(),
            overflowed: overflowed.collect(),
            replayed: written.replayed,
            duplicates: written.duplicates,
        })
    }

    /// Writes one board's batch to every layout its record lists, then reads
    /// the record again: a migration that started meanwhile (a new target)
    /// gets the batch too, so the copy, which starts after the record
    /// changed, and this batch together miss nothing.
    ///
    /// A season's updates its fence refused (it closed, or was removed) are
    /// returned; nothing of them was written.
    async fn apply_board(
        &self,
        board: &BoardId,
        batch: Vec<&ScoreUpdate>,
        expected: Option<&Rules>,
        by_operator: bool,
    ) -> Result<Applied> {
        let closed = |updates: &[&ScoreUpdate], indexes: &[usize]| -> Applied {
            let closed =
                indexes.iter().map(|&i| Closed { board: board.clone(), player: updates[i].player.clone() }).collect();
            Applied { closed, ..Applied::default() }
        };
        let mut record = match self.records.for_write(&self.store, board).await {
            Err(crate::Error::NoSeason(_)) => return Ok(closed(&batch, &(0..batch.len()).collect::<Vec<_>>())),
            other => other?,
        };
        let rules = record.rules;
        if expected.is_some_and(|e| !e.same_storage(&rules)) {
            return Err(crate::Error::RulesChanged(board.to_string()));
        }
        if by_operator && rules.operator.exactly_once() {
            return self.apply_tally(board, &record, &batch).await;
        }
        let best: Vec<&ScoreUpdate> = best_per_key(batch, |u| &u.player, |_| rules).into_values().collect();
        let converted: Vec<ScoreUpdate>;
        let batch: Vec<&ScoreUpdate> = if rules.order == Order::Desc {
            best
        } else {
            converted = best.iter().map(|u| ScoreUpdate { score: rules.key(u.score), ..(*u).clone() }).collect();
            converted.iter().collect()
        };
        if record.keeps_homes() {
            // A restore's load: into the homes, then placed (such boards are never migrated).
            let refused = self.range.load_tally(&self.store, board, &batch, rules.ties).await?;
            return Ok(closed(&batch, &refused));
        }
        let mut written: Vec<RecordedLayout> = Vec::new();
        // Seasons have one layout (never migrated), so their fence refuses an update everywhere or nowhere.
        let mut refused: Vec<usize> = Vec::new();
        for _ in 0..MAX_RECORD_RETRIES {
            for layout in record.write_set() {
                if !written.contains(&layout) {
                    let result = self.write_layout(board, layout, record.layout == layout, &batch, &rules).await;
                    if result.is_err() {
                        self.records.forget(board); // the failure may come from a stale record
                    }
                    refused.extend(result?);
                    written.push(layout);
                }
            }
            let fresh = match self.records.reload_for_write(&self.store, board).await {
                Err(crate::Error::NoSeason(_)) => {
                    // Removed by retention while this batch ran (or just before, by a record
                    // cached meanwhile): take back what the batch wrote, so nothing is left behind.
                    for layout in &written {
                        self.delete_layout(board, *layout).await?;
                    }
                    return Ok(closed(&batch, &(0..batch.len()).collect::<Vec<_>>()));
                }
                other => other?,
            };
            if !fresh.rules.same_storage(&rules) {
                // The board was deleted and created again with other rules while this batch
                // ran: what it wrote is in the old form. The caller prepares it again.
                tracing::warn!(%board, "a write crossed a change of the board's order or ties; retrying");
                self.forget(board);
                return Err(crate::Error::RulesChanged(board.to_string()));
            }
            let wanted = fresh.write_set();
            if wanted.iter().all(|layout| written.contains(layout)) {
                if !wanted.contains(&RecordedLayout::Range) {
                    self.range.forget(board);
                }
                for stray in written.iter().filter(|layout| !wanted.contains(layout)) {
                    // The layout was deleted while this batch ran. What the batch left there is a copy
                    // of data the current layout holds too, so merging it later is harmless.
                    tracing::warn!(%board, layout = %stray, "a write reached a layout deleted meanwhile");
                }
                refused.sort_unstable();
                refused.dedup();
                return Ok(closed(&batch, &refused));
            }
            record = fresh;
        }
        Err(crate::Error::Contended(board.to_string()))
    }

    /// Writes a batch of one board into one layout; `current`: it is the
    /// layout the board is read from (a `range` board without metadata is then new).
    /// An empty batch (a migration's `ZSCAN` chunk may be empty) writes nothing.
    /// Returns the indexes in `batch` a closed season's fence refused.
    pub(crate) async fn write_layout(
        &self,
        board: &BoardId,
        layout: RecordedLayout,
        current: bool,
        batch: &[&ScoreUpdate],
        rules: &Rules,
    ) -> Result<Vec<usize>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let ties = rules.ties;
        match layout {
            RecordedLayout::Single => single::apply(&self.store, board, batch, ties).await,
            RecordedLayout::Hash { shards } => hash::apply(&self.store, board, shards, batch, ties).await,
            RecordedLayout::Range => self.range.apply(&self.store, board, batch, current, ties).await,
        }
    }

    /// The player's score, rank, the board's total and the player's percentile;
    /// `None` when the player has no score on the board.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn standing(&self, board: &BoardId, player: &PlayerId) -> Result<Option<Standing>> {
        let (layout, rules) = self.read_layout(board).await?;
        let ties = rules.ties;
        let standing = match layout {
            RecordedLayout::Single => single::standing(&self.store, board, player, ties).await,
            RecordedLayout::Hash { shards } => hash::standing(&self.store, board, shards, player, ties).await,
            RecordedLayout::Range => self.range.standing(&self.store, board, player, ties).await,
        }?;
        Ok(standing.map(|s| Standing { score: rules.score(s.score), ..s }))
    }

    /// Rows at positions `offset..offset + limit` (score descending, then player ascending).
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn top(&self, board: &BoardId, offset: u64, limit: u64) -> Result<Page> {
        let (layout, rules) = self.read_layout(board).await?;
        let ties = rules.ties;
        let mut page = match layout {
            RecordedLayout::Single => single::top(&self.store, board, offset, limit, ties).await,
            RecordedLayout::Hash { shards } => hash::top(&self.store, board, shards, offset, limit, ties).await,
            RecordedLayout::Range => self.range.top(&self.store, board, offset, limit, ties).await,
        }?;
        present(&rules, &mut page.entries);
        Ok(page)
    }

    /// The player's row with up to `radius` rows above and below it; `None`
    /// when the player has no score on the board.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn around(&self, board: &BoardId, player: &PlayerId, radius: u64) -> Result<Option<Vec<Entry>>> {
        let (layout, rules) = self.read_layout(board).await?;
        let ties = rules.ties;
        let mut rows = match layout {
            RecordedLayout::Single => single::around(&self.store, board, player, radius, ties).await,
            RecordedLayout::Hash { shards } => hash::around(&self.store, board, shards, player, radius, ties).await,
            RecordedLayout::Range => self.range.around(&self.store, board, player, radius, ties).await,
        }?;
        if let Some(rows) = &mut rows {
            present(&rules, rows);
        }
        Ok(rows)
    }

    /// The board's layout, total and per-shard sizes.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn stats(&self, board: &BoardId) -> Result<BoardStats> {
        let record = self.record(board).await?;
        let migrating_to = record.as_ref().and_then(|r| r.migration.as_ref()).map(|m| m.to.to_string());
        let record_layout = record.as_ref().map_or_else(|| RecordedLayout::of(&self.spec), |r| r.layout);
        let rules = record.as_ref().map(|r| r.rules).unwrap_or_default();
        let plain = |layout: String, shards: Vec<ShardStats>| BoardStats {
            rules,
            strategy: record_layout.strategy(),
            layout,
            total: shards.iter().map(|s| s.size).sum(),
            shards,
            rank_error_bound: None,
            generation: None,
            rebalancing: None,
            migrating_to: migrating_to.clone(),
        };
        match record_layout {
            RecordedLayout::Single => Ok(plain(record_layout.to_string(), single::shards(&self.store, board).await?)),
            RecordedLayout::Hash { shards } => {
                Ok(plain(record_layout.to_string(), hash::shards(&self.store, board, shards).await?))
            }
            RecordedLayout::Range => match self.range.stats(&self.store, board).await? {
                Some(stats) => Ok(BoardStats {
                    rules,
                    strategy: "range",
                    layout: LayoutSpec::Range { boundaries: stats.meta.active.boundaries.clone() }.to_string(),
                    total: stats.shards.iter().map(|s| s.size).sum(),
                    shards: stats.shards.into_iter().map(|s| score_range(&rules, s)).collect(),
                    rank_error_bound: Some(stats.rank_error_bound),
                    generation: Some(stats.meta.active.generation),
                    rebalancing: Some(stats.meta.migration.is_some()),
                    migrating_to,
                }),
                // No such board: nothing to report, and nothing created.
                None => Ok(plain(self.spec.to_string(), Vec::new())),
            },
        }
    }

    /// Deletes the board and its seasons: every key of every layout its
    /// record lists (for `range`, every generation, retired and in the making,
    /// and the metadata), its record and its name in `lb:boards`. Deleting a
    /// board that does not exist does nothing.
    ///
    /// # Errors
    /// [`crate::Error::LayoutMismatch`] when the board is stored with an
    /// unrelated layout (nothing is deleted); [`crate::Error::Redis`] when Redis fails.
    pub async fn delete_board(&self, board: &BoardId) -> Result<()> {
        if !board.is_season() {
            self.delete_seasons(board).await?;
        }
        self.delete_storage(board).await
    }

    /// [`Router::delete_board`] without the seasons (what deleting one season does).
    pub(crate) async fn delete_storage(&self, board: &BoardId) -> Result<()> {
        let layouts = match self.record(board).await? {
            Some(record) => record.write_set(),
            None => vec![RecordedLayout::of(&self.spec)],
        };
        for layout in layouts {
            self.delete_layout(board, layout).await?;
        }
        let _: i64 = self.store.query(redis::cmd("UNLINK").arg(crate::layout::keys::layout(board))).await?;
        let _: i64 =
            self.store.query(redis::cmd("SREM").arg(crate::layout::record::BOARDS_KEY).arg(board.as_str())).await?;
        self.forget(board);
        Ok(())
    }

    /// Players on the board.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn total(&self, board: &BoardId) -> Result<u64> {
        match self.read_layout(board).await?.0 {
            RecordedLayout::Single => {
                self.store.query(redis::cmd("ZCARD").arg(crate::layout::keys::single(board))).await
            }
            RecordedLayout::Hash { shards } => {
                Ok(hash::shards(&self.store, board, shards).await?.iter().map(|s| s.size).sum())
            }
            RecordedLayout::Range => self.range.total(&self.store, board).await,
        }
    }

    /// `range` only: re-reads the layout metadata and the precomputed shard
    /// sizes now instead of when they next age out. A no-op for other layouts.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn refresh_sizes(&self, board: &BoardId) -> Result<()> {
        match self.read_layout(board).await?.0 {
            RecordedLayout::Range => self.range.refresh_sizes(&self.store, board).await,
            _ => Ok(()),
        }
    }
}

/// Turns the ranking keys of `entries` back into scores.
fn present(rules: &Rules, entries: &mut [Entry]) {
    for e in entries {
        e.score = rules.score(e.score);
    }
}

/// A `range` shard's key range as the scores it holds (reversed on `asc` boards).
fn score_range(rules: &Rules, shard: ShardStats) -> ShardStats {
    if rules.order == Order::Desc {
        return shard;
    }
    let (Some(min_key), max_key) = (shard.min_score, shard.max_score) else { return shard };
    let min_score = max_key.map_or(0, |k| rules.score(k));
    let max_score = (min_key > 0).then(|| rules.score(min_key));
    ShardStats { min_score: Some(min_score), max_score, ..shard }
}
