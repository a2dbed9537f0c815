//! Moving a live board between layouts (`single` ⇄ `hash:N` ⇄ `range`).
//!
//! The same mechanism as the range rebalance ([`crate::board::rebalance`]), one level
//! up: the board's record ([`crate::layout::record`]) plays the metadata, and
//! whole layouts play generations.
//! 1. A compare-and-set on the record adds a *migration* to the target layout
//!    (for `range`, its metadata is created first, with a generation number
//!    no earlier key used). From then on every writer writes each batch to
//!    both layouts: a writer re-reads the record after every batch and gives
//!    the batch to any layout it did not know about, so a batch that started
//!    before the change reaches the target too.
//! 2. The migrator `ZSCAN`s every key of the source and applies each chunk to
//!    the target with the target's normal write protocol. `ZSCAN` returns
//!    every member present for the whole scan; anything written during it
//!    reaches the target through step 1. `ZADD GT` makes the copy and the dual
//!    writes commute: nothing is lost or counted twice. A player erased or
//!    banned while a chunk is on its way is left out of it or taken out of
//!    the target after it ([`crate::board::copy`]). The scan position is
//!    saved in the record after every chunk, so an interrupted migration
//!    resumes where it stopped.
//! 3. A final compare-and-set makes the target the board's layout and lists
//!    the source as *retired*. Readers switch within [`RECORD_TTL`]; writers
//!    keep writing the retired source, so a reader still on it reads exact data.
//! 4. After the grace period ([`crate::RebalanceOptions::grace`], longer than
//!    `RECORD_TTL` plus any read), the source is marked as being deleted
//!    (writers stop writing it), then, `RECORD_TTL` later, its keys are deleted
//!    and it leaves the record. A write that was in flight longer than that can
//!    leave a stray copy in a deleted `single` or `hash` key: a subset of data
//!    the board holds anyway, merged harmlessly if the board ever moves back
//!    (writers log it); stray `range` generations are deleted by their writer.
//!
//! A board whose record names the target or the source is served by processes
//! configured with either, during and after the migration (until the next
//! one), so processes can be reconfigured whenever convenient. A rebalance and
//! a migration never run at once on one board, and a migration waits for the
//! deletion of the previous one's source before it starts.

use std::time::Duration;

use leaderboard_contract::BoardId;
use leaderboard_semantics::ScoreUpdate;

use crate::board::rebalance::now_ms;
use crate::layout::range::meta::{Generation, RangeMeta};
use crate::layout::record::{self, BoardRecord, LayoutMigration, RECORD_TTL, RecordedLayout, RetiredLayout};
use crate::layout::router::Router;
use crate::layout::shards::single_cmd_pipes;
use crate::layout::spec::LayoutSpec;
use crate::layout::{keys, range};
use crate::{Error, RebalanceOptions, Result};

/// How a migration call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationOutcome {
    /// The board already used that layout.
    Unchanged,
    /// The board now uses the target layout, and the source is deleted.
    Done {
        /// Members copied by this call.
        copied: u64,
    },
    /// Stopped after `max_chunks`; call again to resume.
    Paused {
        /// Members copied by this call.
        copied: u64,
    },
}

impl Router {
    /// Moves `board` to the layout `to` online, or resumes such a move. For a
    /// `range` target, `to`'s boundaries are the new board's (resuming keeps
    /// the ones the migration started with).
    ///
    /// # Errors
    /// [`Error::UnknownBoard`] for a board without a record; [`Error::Busy`]
    /// when a migration to another layout or a rebalance is in progress;
    /// [`Error::OperatorLayout`] for a `last` or `sum` board;
    /// [`Error::RebalanceConflict`] when the record changed under this call (an
    /// abort); [`Error::Redis`] when Redis fails (call again to resume).
    pub async fn migrate_layout(
        &self,
        board: &BoardId,
        to: &LayoutSpec,
        options: RebalanceOptions,
    ) -> Result<MigrationOutcome> {
        if board.is_season() {
            return Err(crate::Error::SeasonLayout(board.to_string()));
        }
        let target = RecordedLayout::of(to);
        // The record as stored: this router is configured with the target layout.
        let rules = crate::layout::record::recorded(self.store(), board).await?.map(|r| r.rules).unwrap_or_default();
        if rules.operator.exactly_once() {
            // A copy and the live writes would both count the same records (docs/ingest.md).
            return Err(crate::Error::operator_layout(board, rules.operator, format!("a migration to {target}")));
        }
        let (mut record, mut raw) = self.start_layout_migration(board, to, options.grace).await?;
        let Some(mut migration) = record.migration.clone() else { return Ok(MigrationOutcome::Unchanged) };
        let sources = self.layout_keys(board, record.layout, false).await?;
        let mut copied = 0u64;
        let mut chunks = 0usize;
        while migration.key < sources.len() {
            if options.max_chunks.is_some_and(|max| chunks >= max) {
                return Ok(MigrationOutcome::Paused { copied });
            }
            let chunk = self.read_chunk(board, &sources[migration.key], migration.cursor, options.chunk).await?;
            let refs: Vec<&ScoreUpdate> = chunk.updates.iter().collect();
            self.write_layout(board, target, false, &refs, &record.rules).await?;
            self.recheck_chunk(board, &chunk).await?;
            copied += chunk.updates.len() as u64;
            chunks += 1;
            let cursor = chunk.cursor;
            if cursor == 0 {
                migration.key += 1;
                migration.cursor = 0;
            } else {
                migration.cursor = cursor;
            }
            let next = BoardRecord { migration: Some(migration.clone()), ..record.clone() };
            raw = self.replace_record(board, &raw, &next).await?;
            record = next;
        }
        let mut retired = record.retired.clone();
        retired.push(RetiredLayout { layout: record.layout, retired_at_ms: now_ms(), deleting: false });
        let done = BoardRecord { layout: target, migration: None, previous: Some(record.layout), retired, ..record };
        self.replace_record(board, &raw, &done).await?;
        self.forget(board);
        self.delete_retired_layouts(board, options.grace).await?;
        Ok(MigrationOutcome::Done { copied })
    }

    /// Abandons the layout migration in progress on `board`, if any: writers
    /// stop writing the target once its keys are being deleted, which happens
    /// after `grace` (this call waits). Returns whether one was abandoned.
    ///
    /// # Errors
    /// [`Error::UnknownBoard`], [`Error::Redis`]; [`Error::RebalanceConflict`]
    /// when the record changed meanwhile (the migration finished): call again.
    pub async fn abort_layout_migration(&self, board: &BoardId, grace: Duration) -> Result<bool> {
        let (record, raw) = self.load_record(board).await?;
        let Some(migration) = record.migration.clone() else { return Ok(false) };
        let mut next = BoardRecord { migration: None, ..record };
        next.retired.push(RetiredLayout { layout: migration.to, retired_at_ms: now_ms(), deleting: false });
        self.replace_record(board, &raw, &next).await?;
        self.forget(board);
        self.delete_retired_layouts(board, grace).await?;
        Ok(true)
    }

    /// Deletes the board's retired layouts once `grace` has passed since each
    /// was retired (waiting for the rest of it). Migrations call it; after a
    /// migrator died, the next migration (or this call) finishes the job.
    ///
    /// # Errors
    /// [`Error::UnknownBoard`], [`Error::Redis`].
    pub async fn delete_retired_layouts(&self, board: &BoardId, grace: Duration) -> Result<()> {
        loop {
            let (record, raw) = self.load_record(board).await?;
            let Some(oldest) = record.retired.first().cloned() else { return Ok(()) };
            if !oldest.deleting {
                let due = oldest.retired_at_ms.saturating_add(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX));
                tokio::time::sleep(Duration::from_millis(due.saturating_sub(now_ms()))).await;
                let mut next = record.clone();
                next.retired[0].deleting = true;
                // Lost races only mean the record changed: read it again.
                if record::compare_and_set(self.store(), board, &raw, &next).await? {
                    // Writers that read the record before the change stop writing within RECORD_TTL.
                    tokio::time::sleep(RECORD_TTL).await;
                }
                continue;
            }
            self.delete_layout(board, oldest.layout).await?;
            let mut next = record.clone();
            next.retired.remove(0);
            record::compare_and_set(self.store(), board, &raw, &next).await?;
        }
    }

    /// Deletes every key of one layout of `board`. For `range`: the metadata
    /// first (so a late writer notices and removes what it wrote), then every
    /// generation it lists, then the homes of a `last` or `sum` board.
    pub(crate) async fn delete_layout(&self, board: &BoardId, layout: RecordedLayout) -> Result<()> {
        let store = self.store();
        match layout {
            RecordedLayout::Range => {
                if let Some(loaded) = self.range_boards().reload(store, board).await? {
                    let _: i64 = store.query(redis::cmd("UNLINK").arg(keys::range_meta(board))).await?;
                    let meta = &loaded.meta;
                    for generation in meta.write_generations().chain(meta.retired.iter().map(|r| &r.generation)) {
                        range::delete_generation(store, board, generation).await?;
                    }
                }
                // A `last` or `sum` board's homes (nothing on other boards).
                let homes = keys::tally_homes(board);
                store.run_all(&single_cmd_pipes(homes.iter().map(|home| keys::unlink_shard(home)))).await?;
                self.range_boards().forget(board);
            }
            other => {
                for key in self.layout_keys(board, other, true).await? {
                    let _: i64 = store.query(&keys::unlink_shard(&key)).await?;
                }
            }
        }
        Ok(())
    }

    /// The sorted sets holding `board` in `layout` (for `range`, the active
    /// generation's shards). Unless `while_rebalancing`, a range board in the
    /// middle of a rebalance is refused with [`Error::Busy`]: its shards are moving.
    pub(crate) async fn layout_keys(
        &self,
        board: &BoardId,
        layout: RecordedLayout,
        while_rebalancing: bool,
    ) -> Result<Vec<String>> {
        Ok(match layout {
            RecordedLayout::Single => vec![keys::single(board)],
            RecordedLayout::Hash { shards } => (0..shards).map(|i| keys::hash_shard(board, shards, i)).collect(),
            RecordedLayout::Range => {
                let loaded = self.range_boards().reload_existing(self.store(), board).await?;
                if !while_rebalancing && loaded.meta.migration.is_some() {
                    return Err(Error::Busy { board: board.to_string(), what: "a rebalance is in progress".into() });
                }
                range::shard_keys(board, &loaded.meta.active)
            }
        })
    }

    /// Records the migration to `to` (or finds the one to resume); returns
    /// the record with `migration` set, or unset when there is nothing to do.
    async fn start_layout_migration(
        &self,
        board: &BoardId,
        to: &LayoutSpec,
        grace: Duration,
    ) -> Result<(BoardRecord, String)> {
        let target = RecordedLayout::of(to);
        loop {
            let (record, raw) = self.load_record(board).await?;
            match &record.migration {
                Some(m) if m.to == target => return Ok((record, raw)),
                Some(m) => {
                    let what = format!("a migration to {} is in progress", m.to);
                    return Err(Error::Busy { board: board.to_string(), what });
                }
                None if record.layout == target => return Ok((record, raw)),
                None if !record.retired.is_empty() => {
                    // The previous migration's source is still being deleted: finish that first.
                    self.delete_retired_layouts(board, grace).await?;
                }
                None => {
                    // Fails with Busy while a rebalance runs: its shards are moving.
                    self.layout_keys(board, record.layout, false).await?;
                    if let LayoutSpec::Range { boundaries } = to {
                        // A generation number no key of this board used before, so stale
                        // metadata cached anywhere cannot be mistaken for this one.
                        let fresh = RangeMeta {
                            active: Generation { generation: now_ms(), boundaries: boundaries.clone() },
                            migration: None,
                            retired: Vec::new(),
                        };
                        let _: () = self
                            .store()
                            .query(redis::cmd("SET").arg(keys::range_meta(board)).arg(fresh.to_json()))
                            .await?;
                        self.range_boards().forget(board);
                    }
                    let next = BoardRecord {
                        migration: Some(LayoutMigration { to: target, key: 0, cursor: 0 }),
                        ..record.clone()
                    };
                    if record::compare_and_set(self.store(), board, &raw, &next).await? {
                        self.forget(board);
                        return Ok((next.clone(), next.to_stored()));
                    }
                }
            }
        }
    }

    async fn load_record(&self, board: &BoardId) -> Result<(BoardRecord, String)> {
        record::load(self.store(), board).await?.ok_or_else(|| Error::UnknownBoard(board.to_string()))
    }

    /// Compare-and-set of the record; returns the new stored text.
    async fn replace_record(&self, board: &BoardId, raw: &str, next: &BoardRecord) -> Result<String> {
        if record::compare_and_set(self.store(), board, raw, next).await? {
            return Ok(next.to_stored());
        }
        let current = record::load(self.store(), board).await?.map_or_else(|| "deleted".into(), |(_, raw)| raw);
        Err(Error::RebalanceConflict { board: board.to_string(), current })
    }
}
