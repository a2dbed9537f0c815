//! Adaptive boundaries for the `range` layout.
//!
//! Fixed score ranges leave most players in the lowest shard. Two tools fix
//! that:
//! - [`equal_population`] and [`Router::propose_boundaries`] compute
//!   boundaries that split the players into shards of equal size (exact
//!   quantiles read with `ZRANGE` by rank, O(shards * log n)).
//! - [`Router::rebalance`] moves a live board to new boundaries while ingest
//!   writes and readers read.
//!
//! # The online rebalance
//! 1. A compare-and-set on the metadata records a *migration* to generation
//!    `g+1` with the new boundaries. From then on writers write to both
//!    generations (a writer that started its batch before the change sees it in
//!    its closing metadata check and re-applies the batch to `g+1`).
//! 2. The rebalancer `ZSCAN`s every shard of `g` in chunks and applies each chunk
//!    to `g+1` with the normal write protocol. `ZSCAN` returns every member
//!    present for the whole scan; anything written during it reaches `g+1`
//!    through step 1. `ZADD GT` makes copying and dual writes commute, so
//!    nothing is lost or counted twice. A player erased or banned while a
//!    chunk is on its way is left out of it or taken out of `g+1` after it
//!    ([`crate::board::copy`]).
//! 3. After each chunk the scan position is saved in the metadata, so an
//!    interrupted rebalance resumes where it stopped when started again with
//!    the same boundaries (a different target is refused).
//! 4. A final compare-and-set makes `g+1` active and records `g` as retired;
//!    readers switch on their next request (they check the metadata on every
//!    read). `g`'s keys are deleted only after a grace period
//!    ([`RebalanceOptions::grace`]) longer than any read, so a read that made
//!    its first round trip on `g` makes its second one on intact data too.
//!    Late writers into `g` remove what they wrote there.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::ScoreUpdate;
use redis::Value;

use crate::connection::reply::{as_score, as_u64};
use crate::layout::range::meta::{self, Generation, Migration, RangeMeta, Retired};
use crate::layout::router::Router;
use crate::layout::scripts::place::Placement;
use crate::layout::spec::{LayoutSpec, validate_boundaries};
use crate::layout::{keys, range, shards};
use crate::{Error, Result};

/// Boundaries that split `sorted_scores` (ascending) into `shards` shards of
/// equal population. Equal scores never straddle a boundary, so heavy ties
/// yield fewer shards.
pub fn equal_population(sorted_scores: &[u64], shards: usize) -> Vec<u64> {
    let n = sorted_scores.len();
    let quantiles = (1..shards).filter_map(|k| sorted_scores.get(k * n / shards).copied());
    boundaries_from_quantiles(quantiles)
}

fn boundaries_from_quantiles(quantiles: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for q in quantiles {
        if q > 0 && out.last().is_none_or(|&last| q > last) {
            out.push(q);
        }
    }
    out
}

/// How a rebalance call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceOutcome {
    /// The board already used these boundaries.
    Unchanged,
    /// The board now uses the new generation.
    Done {
        /// The generation now active.
        generation: u64,
        /// Members copied by this call.
        copied: u64,
    },
    /// Stopped after `max_chunks`; call again to resume.
    Paused {
        /// Members copied by this call.
        copied: u64,
    },
}

/// Tuning of a rebalance.
#[derive(Debug, Clone, Copy)]
pub struct RebalanceOptions {
    /// `ZSCAN COUNT` hint: members copied per step.
    pub chunk: usize,
    /// Stop after this many chunks (the next call resumes); `None` runs to the end.
    pub max_chunks: Option<usize>,
    /// How long the replaced generation's keys are kept after the switch, so
    /// reads that started on it finish on it. Must exceed the longest read
    /// (the api's `--request-timeout`, 1 s by default).
    pub grace: Duration,
}

impl Default for RebalanceOptions {
    fn default() -> Self {
        Self { chunk: 1000, max_chunks: None, grace: Duration::from_secs(10) }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Router {
    /// Proposes equal-population boundaries for `shards` shards from the board's
    /// current scores (exact quantiles), for a rebalance or a migration to `range`.
    ///
    /// # Errors
    /// [`Error::UnknownBoard`] for a `range` board that does not exist; [`Error::Redis`] when Redis fails.
    pub async fn propose_boundaries(&self, board: &BoardId, shards: usize) -> Result<Vec<u64>> {
        let (keys, cards) = match self.spec() {
            LayoutSpec::Single => {
                let key = keys::single(board);
                let card: u64 = self.store().query(redis::cmd("ZCARD").arg(&key)).await?;
                (vec![key], vec![card])
            }
            LayoutSpec::Range { .. } => {
                let meta = self.range_boards().reload_existing(self.store(), board).await?;
                let keys = range::shard_keys(board, &meta.meta.active);
                let cards = shards::cards(self.store(), &keys).await?;
                (keys, cards)
            }
            LayoutSpec::Hash { shards: n } => {
                let keys: Vec<String> = (0..*n).map(|i| keys::hash_shard(board, *n, i)).collect();
                let cards = shards::cards(self.store(), &keys).await?;
                let total: u64 = cards.iter().sum();
                let mut quantiles = Vec::new();
                for k in 1..shards as u64 {
                    quantiles.push(self.score_at(&keys, k * total / shards as u64).await?);
                }
                return Ok(boundaries_from_quantiles(quantiles.into_iter()));
            }
        };
        let total: u64 = cards.iter().sum();
        let mut quantiles = Vec::new();
        for k in 1..shards as u64 {
            // Ascending position k*total/shards, found in the shard that holds it.
            let mut pos = k * total / shards as u64;
            for (key, &card) in keys.iter().zip(&cards) {
                if pos < card {
                    let reply: Vec<Value> =
                        self.store().query(redis::cmd("ZRANGE").arg(key).arg(pos).arg(pos).arg("WITHSCORES")).await?;
                    if let Some(score) = reply.get(1) {
                        quantiles.push(as_score(score)?);
                    }
                    break;
                }
                pos -= card;
            }
        }
        Ok(boundaries_from_quantiles(quantiles.into_iter()))
    }

    /// The score at ascending position `pos` over several sorted sets: the
    /// smallest score with more than `pos` members at or below it, found by
    /// bisecting the score range (one parallel `ZCOUNT` round per step, at most 54 steps).
    async fn score_at(&self, keys: &[String], pos: u64) -> Result<u64> {
        let (mut lo, mut hi) = (0u64, leaderboard_contract::MAX_SCORE);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let pipes: Vec<redis::Pipeline> = keys
                .iter()
                .map(|key| {
                    let mut pipe = redis::pipe();
                    pipe.cmd("ZCOUNT").arg(key).arg("-inf").arg(mid);
                    pipe
                })
                .collect();
            let mut at_or_below = 0u64;
            for reply in self.store().run_all(&pipes).await? {
                at_or_below += reply.first().map(as_u64).transpose()?.unwrap_or(0);
            }
            if at_or_below > pos {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    /// Moves a `range` board to `boundaries` online, or resumes such a move.
    ///
    /// # Errors
    /// [`Error::NotRange`] on other layouts, [`Error::InvalidLayout`] for bad
    /// boundaries, [`Error::RebalanceConflict`] when a rebalance to other
    /// boundaries is in progress, [`Error::Redis`] when Redis fails (call
    /// again to resume).
    pub async fn rebalance(
        &self,
        board: &BoardId,
        boundaries: Vec<u64>,
        options: RebalanceOptions,
    ) -> Result<RebalanceOutcome> {
        if !matches!(self.spec(), LayoutSpec::Range { .. }) {
            return Err(Error::NotRange(self.spec().strategy()));
        }
        if board.is_season() {
            return Err(Error::SeasonLayout(board.to_string()));
        }
        validate_boundaries(&boundaries)?;
        let store = self.store();
        let meta_key = keys::range_meta(board);
        let (mut meta, mut raw) = self.start_migration(board, &boundaries).await?;
        let Some(mut migration) = meta.migration.clone() else { return Ok(RebalanceOutcome::Unchanged) };
        let source = meta.active.clone();
        let rules = self.rules(board).await?;
        let ties = rules.ties;
        // A `last` or `sum` board is copied from its homes, with each player's version, so the copy
        // and the writers' placements commute (docs/layouts.md#range-boards-of-last-and-sum).
        let tally = rules.operator.exactly_once();
        let sources = if tally { keys::HOMES } else { source.shard_count() };
        let mut copied = 0u64;
        let mut chunks = 0usize;
        while migration.shard < sources {
            if options.max_chunks.is_some_and(|max| chunks >= max) {
                return Ok(RebalanceOutcome::Paused { copied });
            }
            let key = if tally {
                keys::tally_home(board, migration.shard)
            } else {
                keys::range_shard(board, source.generation, migration.shard)
            };
            let chunk = self.read_chunk(board, &key, migration.cursor, options.chunk).await?;
            if tally {
                let players: Vec<&PlayerId> = chunk.updates.iter().map(|u| &u.player).collect();
                let placements = range::place::states(store, &key, &players, ties).await?;
                let placements: Vec<&Placement> = placements.iter().collect();
                range::place::place_generation(store, board, &migration.target, &placements, ties).await?;
            } else {
                let refs: Vec<&ScoreUpdate> = chunk.updates.iter().collect();
                if !range::write_generation(store, board, &migration.target, &refs, ties).await?.is_empty() {
                    return Err(crate::Error::SeasonLayout(board.to_string()));
                }
            }
            self.recheck_chunk(board, &chunk).await?;
            copied += chunk.updates.len() as u64;
            chunks += 1;
            let cursor = chunk.cursor;
            if cursor == 0 {
                migration.shard += 1;
                migration.cursor = 0;
            } else {
                migration.cursor = cursor;
            }
            let next =
                RangeMeta { active: source.clone(), migration: Some(migration.clone()), retired: meta.retired.clone() };
            if !meta::compare_and_set(store, &meta_key, &raw, &next).await? {
                return Err(self.conflict(board).await);
            }
            raw = next.to_json();
            meta = next;
        }
        let target = migration.target.clone();
        let mut retired = meta.retired.clone();
        retired.push(Retired { generation: source, retired_at_ms: now_ms() });
        let done = RangeMeta { active: target.clone(), migration: None, retired };
        if !meta::compare_and_set(store, &meta_key, &raw, &done).await? {
            return Err(self.conflict(board).await);
        }
        self.range_boards().reload(store, board).await?;
        self.delete_retired(board, options.grace).await?;
        Ok(RebalanceOutcome::Done { generation: target.generation, copied })
    }

    /// Deletes the keys of the board's replaced generations once `grace` has
    /// passed since each was replaced (waiting for the rest of it), and drops
    /// them from the metadata. Rebalances call it; after a rebalancer died
    /// during its grace period, the next rebalance (or this call) finishes the job.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails; [`Error::UnknownBoard`] when the board has no metadata.
    pub async fn delete_retired(&self, board: &BoardId, grace: Duration) -> Result<()> {
        let store = self.store();
        let meta_key = keys::range_meta(board);
        loop {
            let loaded = self.range_boards().reload_existing(store, board).await?;
            let Some(oldest) = loaded.meta.retired.first().cloned() else { return Ok(()) };
            let due = oldest.retired_at_ms.saturating_add(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX));
            let wait = due.saturating_sub(now_ms());
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            for key in range::shard_keys(board, &oldest.generation) {
                let _: i64 = store.query(&keys::unlink_shard(&key)).await?;
            }
            let mut next = loaded.meta.clone();
            next.retired.retain(|r| r.generation.generation != oldest.generation.generation);
            // A lost race only means someone else changed the metadata: read it again.
            meta::compare_and_set(store, &meta_key, &loaded.raw, &next).await?;
        }
    }

    /// Records the migration (or finds the one to resume); returns the metadata
    /// with `migration` set, or unset when there is nothing to do.
    async fn start_migration(&self, board: &BoardId, boundaries: &[u64]) -> Result<(RangeMeta, String)> {
        let store = self.store();
        let meta_key = keys::range_meta(board);
        if let Some(record) = crate::layout::record::recorded(store, board).await?
            && (record.layout != crate::layout::record::RecordedLayout::Range || record.migration.is_some())
        {
            let what = format!("its layout is {} (record {})", record.layout, record.to_stored());
            return Err(Error::Busy { board: board.to_string(), what });
        }
        loop {
            let loaded = self.range_boards().reload_existing(store, board).await?;
            let (meta, raw) = (loaded.meta.clone(), loaded.raw.clone());
            match &meta.migration {
                Some(m) if m.target.boundaries == boundaries => return Ok((meta, raw)),
                Some(m) => {
                    return Err(Error::RebalanceConflict {
                        board: board.to_string(),
                        current: format!("{:?}", m.target.boundaries),
                    });
                }
                None if meta.active.boundaries == boundaries => return Ok((meta, raw)),
                None => {
                    // The newest generation ever used, retired ones included, is never reused.
                    let newest =
                        meta.retired.iter().map(|r| r.generation.generation).fold(meta.active.generation, u64::max);
                    let target = Generation { generation: newest + 1, boundaries: boundaries.to_vec() };
                    let next = RangeMeta {
                        active: meta.active.clone(),
                        migration: Some(Migration { target, shard: 0, cursor: 0 }),
                        retired: meta.retired.clone(),
                    };
                    if meta::compare_and_set(store, &meta_key, &raw, &next).await? {
                        self.range_boards().reload(store, board).await?;
                        return Ok((next.clone(), next.to_json()));
                    }
                }
            }
        }
    }

    /// The board's range metadata: active generation, rebalance in progress
    /// (target and scan position), generations waiting for deletion.
    ///
    /// # Errors
    /// [`Error::NotRange`] on other layouts; [`Error::UnknownBoard`] when the
    /// board does not exist; [`Error::Redis`] when Redis fails.
    pub async fn range_meta(&self, board: &BoardId) -> Result<RangeMeta> {
        if !matches!(self.spec(), LayoutSpec::Range { .. }) {
            return Err(Error::NotRange(self.spec().strategy()));
        }
        Ok(self.range_boards().reload_existing(self.store(), board).await?.meta.clone())
    }

    /// Abandons the rebalance in progress on the board, if any: writers stop
    /// writing to the target generation (a writer that was writing there takes
    /// its writes back), and the target's keys are deleted after `grace` (this
    /// call waits for it). Returns whether a rebalance was abandoned.
    ///
    /// # Errors
    /// As [`Router::range_meta`]; [`Error::RebalanceConflict`] when the metadata
    /// changed meanwhile (the rebalancer finished or moved on): call again.
    pub async fn abort_rebalance(&self, board: &BoardId, grace: Duration) -> Result<bool> {
        if !matches!(self.spec(), LayoutSpec::Range { .. }) {
            return Err(Error::NotRange(self.spec().strategy()));
        }
        let store = self.store();
        let loaded = self.range_boards().reload_existing(store, board).await?;
        let Some(migration) = loaded.meta.migration.clone() else { return Ok(false) };
        let mut next = loaded.meta.clone();
        next.migration = None;
        next.retired.push(Retired { generation: migration.target, retired_at_ms: now_ms() });
        if !meta::compare_and_set(store, &keys::range_meta(board), &loaded.raw, &next).await? {
            return Err(self.conflict(board).await);
        }
        self.range_boards().reload(store, board).await?;
        self.delete_retired(board, grace).await?;
        Ok(true)
    }

    async fn conflict(&self, board: &BoardId) -> Error {
        let current = match self.range_boards().reload_existing(self.store(), board).await {
            Ok(m) => m.raw.clone(),
            Err(e) => e.to_string(),
        };
        Error::RebalanceConflict { board: board.to_string(), current }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_population_splits_evenly() {
        let scores: Vec<u64> = (0..100).collect();
        assert_eq!(equal_population(&scores, 4), vec![25, 50, 75]);
        assert_eq!(equal_population(&scores, 1), Vec::<u64>::new());
    }

    #[test]
    fn ties_and_zeros_collapse_boundaries() {
        let scores = [0, 0, 0, 0, 0, 0, 5, 5, 5, 9];
        assert_eq!(equal_population(&scores, 5), vec![5]);
        assert_eq!(equal_population(&[], 4), Vec::<u64>::new());
    }
}
