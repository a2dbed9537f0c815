//! The `range` layout: shards over disjoint score ranges.
//!
//! # Writes and moves
//! A player lives in the shard whose range holds their best score. A batch is
//! written in up to three steps, each one round trip to every node involved,
//! in parallel:
//! 1. `ADD` (a script per target shard): `ZADD GT` every player into the shard
//!    of their new score, reporting which players *arrived* (were not in that
//!    shard). Most updates improve a score inside the same shard and stop here.
//! 2. For arrivals only: `ZREM` them from every lower shard, and `ZMSCORE` every
//!    higher shard to see whether they already have a better score there.
//! 3. Arrivals found higher up (a stale event) are removed from the shard they
//!    were just added to, and every arrival leaves its shard's pending-moves set.
//!
//! Step 1 records arrivals in a pending-moves set next to the shard, in the
//! same script as the write. If steps 2-3 never finish (Redis fails mid-batch,
//! the writer crashes), the batch is retried or redelivered, and the `ADD`
//! reports those players as arrivals again because they are still pending, so
//! the cleanup always completes. A pending entry whose batch is never
//! redelivered (its player moved higher in the meantime, which cleans every
//! lower shard) is harmless: it only makes that player's next write in this
//! shard do the cleanup once more.
//!
//! The order is *add, then remove*: a concurrent reader may briefly see a
//! moving player in two shards, never in none. Lists skip the lower copy, so
//! no list shows a player twice; counts may include it for the length of one
//! batch (see the rank-error bound below). Two writers racing on one player
//! (possible only while a consumer-group rebalance hands a partition over)
//! converge: each removes its own copy when step 2 sees the other's higher one,
//! and a copy is only ever removed when a higher copy exists, so the best score
//! is never lost.
//!
//! # Reads
//! A standing runs `LOCATE` on every shard in parallel (1 round trip): the
//! shard that holds the player returns its score and the count above it inside
//! the shard. Rank = 1 + the precomputed sizes of all higher shards + that
//! count. Sizes are prefix sums of `ZCARD`s cached for `size_refresh`
//! (default 1 s) and refreshed by the first reader that finds them old.
//! Pages and around-lists read live sizes in their first round trip and the
//! rows in a second, so lists are exact.
//!
//! # Rank-error bound
//! A standing's rank can be off by at most the net number of players that
//! entered or left the shards above the player's shard since the sizes were
//! read, plus the players of in-flight batches (transient duplicates). With a
//! write rate of `w` new arrivals per second into higher shards, that is at
//! most `w * size_refresh + batch size`. [`crate::BoardStats::rank_error_bound`]
//! reports the largest change of any prefix sum between the last two refreshes,
//! the measured form of `w * size_refresh`.
//!
//! # Generations
//! Shard keys carry a generation number. A rebalance ([`crate::rebalance`])
//! fills a new generation while writers write to both; every write batch ends
//! by re-reading the metadata, and re-applies itself to any generation it did
//! not know about, so no write is lost to a rebalance that started mid-batch.
//! Reads fetch the metadata alongside their data and retry once if it changed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use leaderboard_contract::{BoardId, PlayerId};
use redis::Value;

use crate::model::{Entry, Page, ScoreUpdate, ShardStats, Standing, assign_ranks, percentile};
use crate::range_meta::{self, Generation, RangeMeta};
use crate::store::{Store, as_u64};
use crate::{Error, Result, keys, member, scripts};

/// How many times a write re-checks the metadata before giving up: each
/// re-check follows a rebalance step, which takes far longer than a batch.
const MAX_META_RETRIES: usize = 8;

/// Shard sizes of one generation, as prefix sums.
#[derive(Debug, Clone)]
struct SizeCache {
    generation: u64,
    /// `above[i]` = members in shards `i+1..`.
    above: Vec<u64>,
    total: u64,
    read_at: Instant,
    drift: u64,
}

#[derive(Debug)]
struct BoardState {
    meta: RwLock<Arc<(RangeMeta, String)>>,
    sizes: RwLock<Option<SizeCache>>,
    refreshing: AtomicBool,
}

/// Per-process state of every `range` board: cached metadata and sizes.
#[derive(Debug)]
pub(crate) struct RangeBoards {
    initial: Vec<u64>,
    size_refresh: Duration,
    boards: DashMap<BoardId, Arc<BoardState>>,
}

pub(crate) fn shard_keys(board: &BoardId, generation: &Generation) -> Vec<String> {
    (0..generation.shard_count()).map(|i| keys::range_shard(board, generation.generation, i)).collect()
}

fn single_cmd_pipes(cmds: impl Iterator<Item = redis::Cmd>) -> Vec<redis::Pipeline> {
    cmds.map(|c| {
        let mut p = redis::pipe();
        p.add_command(c);
        p
    })
    .collect()
}

impl RangeBoards {
    pub(crate) fn new(initial: Vec<u64>, size_refresh: Duration) -> Self {
        Self { initial, size_refresh, boards: DashMap::new() }
    }

    async fn state(&self, store: &Store, board: &BoardId) -> Result<Arc<BoardState>> {
        if let Some(s) = self.boards.get(board) {
            return Ok(s.clone());
        }
        let loaded = range_meta::load(store, &keys::range_meta(board), &self.initial).await?;
        let state = Arc::new(BoardState {
            meta: RwLock::new(Arc::new(loaded)),
            sizes: RwLock::new(None),
            refreshing: AtomicBool::new(false),
        });
        Ok(self.boards.entry(board.clone()).or_insert(state).clone())
    }

    /// The cached metadata of a board (loading it on first use).
    pub(crate) async fn meta(&self, store: &Store, board: &BoardId) -> Result<Arc<(RangeMeta, String)>> {
        let state = self.state(store, board).await?;
        let meta = state.meta.read().map_err(|_| Error::Corrupt("poisoned metadata lock".into()))?.clone();
        Ok(meta)
    }

    /// Re-reads a board's metadata from Redis and caches it.
    pub(crate) async fn reload(&self, store: &Store, board: &BoardId) -> Result<Arc<(RangeMeta, String)>> {
        let state = self.state(store, board).await?;
        let fresh = Arc::new(range_meta::load(store, &keys::range_meta(board), &self.initial).await?);
        if let Ok(mut guard) = state.meta.write() {
            *guard = fresh.clone();
        }
        Ok(fresh)
    }

    pub(crate) async fn apply(&self, store: &Store, board: &BoardId, updates: &[&ScoreUpdate]) -> Result<()> {
        let mut known = self.meta(store, board).await?;
        let mut written: Vec<u64> = Vec::new();
        for generation in known.0.write_generations() {
            write_generation(store, board, generation, updates).await?;
            written.push(generation.generation);
        }
        for _ in 0..MAX_META_RETRIES {
            let fresh = self.reload(store, board).await?;
            if fresh.1 == known.1 {
                return Ok(());
            }
            for generation in fresh.0.write_generations() {
                if !written.contains(&generation.generation) {
                    write_generation(store, board, generation, updates).await?;
                    written.push(generation.generation);
                }
            }
            // Generations retired while this batch ran: take back what we wrote there.
            for generation in known.0.write_generations() {
                if !fresh.0.write_generations().any(|g| g.generation == generation.generation) {
                    remove_from_generation(store, board, generation, updates).await?;
                }
            }
            known = fresh;
        }
        Err(Error::Contended(board.to_string()))
    }

    /// Runs `read` against the active generation, retrying once if a rebalance
    /// switched generations while it ran.
    async fn read<T, F, Fut>(&self, store: &Store, board: &BoardId, read: F) -> Result<T>
    where
        F: Fn(Arc<(RangeMeta, String)>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let meta = self.meta(store, board).await?;
        let check = async {
            let raw: Option<String> = store.query(redis::cmd("GET").arg(keys::range_meta(board))).await?;
            Ok::<_, Error>(raw)
        };
        let (value, raw) = futures::future::try_join(read(meta.clone()), check).await?;
        if raw.as_deref() == Some(meta.1.as_str()) {
            return Ok(value);
        }
        let fresh = self.reload(store, board).await?;
        read(fresh).await
    }

    async fn sizes(&self, store: &Store, board: &BoardId, generation: &Generation) -> Result<SizeCache> {
        let state = self.state(store, board).await?;
        let cached = state.sizes.read().ok().and_then(|g| g.clone());
        if let Some(c) = &cached {
            let fresh = c.read_at.elapsed() < self.size_refresh;
            if c.generation == generation.generation && (fresh || state.refreshing.load(Ordering::Acquire)) {
                return Ok(c.clone());
            }
        }
        state.refreshing.store(true, Ordering::Release);
        let result = self.refresh_sizes_of(store, board, generation, &state, cached.as_ref()).await;
        state.refreshing.store(false, Ordering::Release);
        result
    }

    async fn refresh_sizes_of(
        &self,
        store: &Store,
        board: &BoardId,
        generation: &Generation,
        state: &BoardState,
        previous: Option<&SizeCache>,
    ) -> Result<SizeCache> {
        let cards = cards(store, &shard_keys(board, generation)).await?;
        let above = sizes_above(&cards);
        let drift = previous
            .filter(|p| p.generation == generation.generation)
            .map_or(0, |p| above.iter().zip(&p.above).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0));
        let cache = SizeCache {
            generation: generation.generation,
            above,
            total: cards.iter().sum(),
            read_at: Instant::now(),
            drift,
        };
        if let Ok(mut g) = state.sizes.write() {
            *g = Some(cache.clone());
        }
        Ok(cache)
    }

    /// Forces a refresh of a board's precomputed sizes.
    pub(crate) async fn refresh_sizes(&self, store: &Store, board: &BoardId) -> Result<()> {
        let meta = self.reload(store, board).await?;
        let state = self.state(store, board).await?;
        let previous = state.sizes.read().ok().and_then(|g| g.clone());
        self.refresh_sizes_of(store, board, &meta.0.active, &state, previous.as_ref()).await?;
        Ok(())
    }

    pub(crate) async fn standing(&self, store: &Store, board: &BoardId, player: &PlayerId) -> Result<Option<Standing>> {
        let found = self
            .read(store, board, |meta| async move {
                let generation = meta.0.active.clone();
                let pipes = single_cmd_pipes(shard_keys(board, &generation).iter().map(|k| scripts::locate(k, player)));
                let replies = store.run_all(&pipes).await?;
                // The highest shard holding the player has their best score.
                let mut best = None;
                for (index, r) in replies.into_iter().enumerate() {
                    let located = scripts::parse_locate(r.into_iter().next().unwrap_or_default())?;
                    if let Some(f) = located.found {
                        best = Some((index, f));
                    }
                }
                Ok(best.map(|b| (generation, b)))
            })
            .await?;
        let Some((generation, (shard, (best, _, above_in_shard, equal)))) = found else { return Ok(None) };
        let sizes = self.sizes(store, board, &generation).await?;
        let rank = 1 + sizes.above.get(shard).copied().unwrap_or(0) + above_in_shard;
        let total = sizes.total.max(rank - 1 + equal);
        Ok(Some(Standing { score: best, rank, total, percentile: percentile(total, rank - 1, equal) }))
    }

    pub(crate) async fn top(&self, store: &Store, board: &BoardId, offset: u64, limit: u64) -> Result<Page> {
        self.read(store, board, |meta| async move {
            let keys = shard_keys(board, &meta.0.active);
            let cards = cards(store, &keys).await?;
            let entries = page(store, &keys, &cards, offset, limit).await?;
            Ok(Page { total: cards.iter().sum(), entries })
        })
        .await
    }

    pub(crate) async fn around(
        &self,
        store: &Store,
        board: &BoardId,
        player: &PlayerId,
        radius: u64,
    ) -> Result<Option<Vec<Entry>>> {
        self.read(store, board, |meta| async move {
            let keys = shard_keys(board, &meta.0.active);
            let pipes = single_cmd_pipes(keys.iter().map(|k| scripts::locate(k, player)));
            let mut cards = Vec::with_capacity(keys.len());
            let mut found = None;
            for (index, r) in store.run_all(&pipes).await?.into_iter().enumerate() {
                let located = scripts::parse_locate(r.into_iter().next().unwrap_or_default())?;
                cards.push(located.card);
                if let Some((_, pos, _, _)) = located.found {
                    found = Some((index, pos));
                }
            }
            let Some((shard, pos)) = found else { return Ok(None) };
            let position = cards[shard + 1..].iter().sum::<u64>() + pos;
            let start = position.saturating_sub(radius);
            let end = position + radius + 1;
            Ok(Some(page(store, &keys, &cards, start, end - start).await?))
        })
        .await
    }

    pub(crate) async fn total(&self, store: &Store, board: &BoardId) -> Result<u64> {
        self.read(store, board, |meta| async move {
            Ok(cards(store, &shard_keys(board, &meta.0.active)).await?.iter().sum())
        })
        .await
    }

    pub(crate) async fn stats(&self, store: &Store, board: &BoardId) -> Result<(Vec<ShardStats>, u64, RangeMeta)> {
        let meta = self.reload(store, board).await?;
        let generation = &meta.0.active;
        let keys = shard_keys(board, generation);
        let cards = cards(store, &keys).await?;
        let drift = self.sizes(store, board, generation).await?.drift;
        let shards = keys
            .into_iter()
            .zip(cards)
            .enumerate()
            .map(|(index, (key, size))| {
                let (min, max) = generation.range_of(index);
                ShardStats { index, key, min_score: Some(min), max_score: max, size }
            })
            .collect();
        Ok((shards, drift, meta.0.clone()))
    }
}

/// Prefix sums from the top: `above[i]` is the number of members in shards
/// `i+1..`, the part of a rank contributed by higher shards.
pub fn sizes_above(cards: &[u64]) -> Vec<u64> {
    let mut above = vec![0; cards.len()];
    for i in (0..cards.len().saturating_sub(1)).rev() {
        above[i] = above[i + 1] + cards[i + 1];
    }
    above
}

/// `ZCARD` of every key, in parallel.
pub(crate) async fn cards(store: &Store, keys: &[String]) -> Result<Vec<u64>> {
    let pipes = single_cmd_pipes(keys.iter().map(|k| {
        let mut c = redis::cmd("ZCARD");
        c.arg(k);
        c
    }));
    store.run_all(&pipes).await?.iter().map(|r| r.first().map_or(Ok(0), as_u64)).collect()
}

/// Rows at global positions `offset..offset + limit`, given each shard's size.
async fn page(store: &Store, keys: &[String], cards: &[u64], offset: u64, limit: u64) -> Result<Vec<Entry>> {
    let end = offset.saturating_add(limit);
    let mut pieces = Vec::new();
    let mut start = 0u64;
    for index in (0..keys.len()).rev() {
        let card = cards[index];
        let (lo, hi) = (offset.max(start), end.min(start + card));
        if lo < hi {
            pieces.push((index, start, lo - start, hi - lo));
        }
        start += card;
    }
    let pipes = single_cmd_pipes(pieces.iter().map(|&(i, _, off, lim)| scripts::page(&keys[i], off, lim)));
    let replies = store.run_all(&pipes).await?;
    let mut out: Vec<Entry> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (&(_, shard_start, local_offset, _), reply) in pieces.iter().zip(replies) {
        let rows = scripts::parse_page(reply.into_iter().next().unwrap_or_default())?;
        let ranked = assign_ranks(rows.rows, shard_start + local_offset, shard_start + rows.above_first);
        // A player moving up is briefly in two shards; the higher copy is listed first.
        out.extend(ranked.into_iter().filter(|e| seen.insert(e.player.clone())));
    }
    Ok(out)
}

/// Writes a batch into one generation with the add-then-remove protocol
/// (also the rebalancer's copy step).
pub(crate) async fn write_generation(
    store: &Store,
    board: &BoardId,
    generation: &Generation,
    updates: &[&ScoreUpdate],
) -> Result<()> {
    let keys = shard_keys(board, generation);
    let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
    for (i, u) in updates.iter().enumerate() {
        by_shard[generation.shard_of(u.score)].push(i);
    }
    // Step 1: add, learning who arrived.
    let mut chunks = Vec::new();
    let mut pipes = Vec::new();
    for (shard, idxs) in by_shard.iter().enumerate() {
        for chunk in idxs.chunks(scripts::ADD_CHUNK) {
            let mut p = redis::pipe();
            let pending = keys::pending_moves(&keys[shard]);
            p.add_command(scripts::add(
                &keys[shard],
                &pending,
                chunk.iter().map(|&i| (updates[i].score, &updates[i].player)),
            ));
            pipes.push(p);
            chunks.push((shard, chunk));
        }
    }
    let mut arrivals: Vec<(usize, usize)> = Vec::new(); // (update index, target shard)
    for (&(shard, chunk), reply) in chunks.iter().zip(store.run_all(&pipes).await?) {
        for j in scripts::parse_add(reply.into_iter().next().unwrap_or_default())? {
            arrivals.push((chunk[j], shard));
        }
    }
    if arrivals.is_empty() {
        return Ok(());
    }
    // Step 2: remove arrivals from lower shards; look for better copies in higher ones.
    let mut pipes = Vec::new();
    let mut probes: Vec<Vec<usize>> = Vec::new(); // per pipe: arrival indexes probed by ZMSCORE
    for (shard, key) in keys.iter().enumerate() {
        let from_above: Vec<&(usize, usize)> = arrivals.iter().filter(|(_, t)| *t > shard).collect();
        let from_below: Vec<usize> = (0..arrivals.len()).filter(|&a| arrivals[a].1 < shard).collect();
        if from_above.is_empty() && from_below.is_empty() {
            continue;
        }
        let mut p = redis::pipe();
        for chunk in from_above.chunks(scripts::ADD_CHUNK) {
            let cmd = p.cmd("ZREM").arg(key);
            for (i, _) in chunk {
                cmd.arg(member::encode(&updates[*i].player));
            }
            p.ignore();
        }
        for chunk in from_below.chunks(scripts::ADD_CHUNK) {
            let cmd = p.cmd("ZMSCORE").arg(key);
            for &a in chunk {
                cmd.arg(member::encode(&updates[arrivals[a].0].player));
            }
        }
        pipes.push(p);
        probes.push(from_below);
    }
    let mut stale = vec![false; arrivals.len()];
    for (probed, replies) in probes.iter().zip(store.run_all(&pipes).await?) {
        let scores = replies.into_iter().flat_map(|r| crate::store::as_array(r).unwrap_or_default());
        for (&a, score) in probed.iter().zip(scores) {
            if score != Value::Nil {
                stale[a] = true;
            }
        }
    }
    // Step 3: where a better copy exists higher up, take back the one just
    // added; then the move is complete and leaves the pending set.
    let mut pipes: Vec<redis::Pipeline> = Vec::new();
    for (shard, key) in keys.iter().enumerate() {
        let arrived: Vec<(Vec<u8>, bool)> = arrivals
            .iter()
            .zip(&stale)
            .filter(|((_, target), _)| *target == shard)
            .map(|((i, _), is_stale)| (member::encode(&updates[*i].player), *is_stale))
            .collect();
        if arrived.is_empty() {
            continue;
        }
        let mut p = redis::pipe();
        let stale_here: Vec<&Vec<u8>> = arrived.iter().filter(|(_, s)| *s).map(|(m, _)| m).collect();
        if !stale_here.is_empty() {
            p.cmd("ZREM").arg(key).arg(stale_here).ignore();
        }
        let all: Vec<&Vec<u8>> = arrived.iter().map(|(m, _)| m).collect();
        p.cmd("SREM").arg(keys::pending_moves(key)).arg(all).ignore();
        pipes.push(p);
    }
    store.run_all(&pipes).await?;
    Ok(())
}

/// Removes the batch's players from every shard of a retired generation.
async fn remove_from_generation(
    store: &Store,
    board: &BoardId,
    generation: &Generation,
    updates: &[&ScoreUpdate],
) -> Result<()> {
    let pipes: Vec<redis::Pipeline> = shard_keys(board, generation)
        .iter()
        .map(|k| {
            let mut p = redis::pipe();
            for chunk in updates.chunks(scripts::ADD_CHUNK) {
                let cmd = p.cmd("ZREM").arg(k);
                for u in chunk {
                    cmd.arg(member::encode(&u.player));
                }
                p.ignore();
            }
            p
        })
        .collect();
    store.run_all(&pipes).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_above_are_prefix_sums_from_the_top() {
        assert_eq!(sizes_above(&[5, 3, 2]), [5, 2, 0]);
        assert_eq!(sizes_above(&[7]), [0]);
        assert!(sizes_above(&[]).is_empty());
    }
}
