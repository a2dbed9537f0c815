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
//! A standing runs `LOCATE` on every shard in parallel (1 round trip): every
//! shard returns its size, and the one that holds the player its score and the
//! count above it inside the shard. The rank is one plus the sizes of all
//! higher shards plus that count, the total the sum of the sizes: all from the same round trip,
//! so rank, total and percentile describe one moment (the contract's one
//! snapshot, docs/contract.md#freshness). Finding the player's shard needs every shard anyway (the score
//! is not known before), so the sizes come for free. Reads never create a
//! board: a board without metadata answers empty and leaves nothing behind.
//! Pages and around-lists read live sizes in their first round trip and the
//! rows in a second, so lists are exact.
//!
//! # Rank-error bound
//! A standing is exact but for the players of in-flight batches (a player
//! moving up is briefly in two shards). The board statistics also keep shard
//! sizes cached for `size_refresh` (default 1 s; once older, one reader
//! refreshes them, single flight, holding a lock guard that a cancelled reader
//! drops, while the others use the previous ones) and report as
//! [`leaderboard_semantics::BoardStats::rank_error_bound`] the largest change of any prefix sum
//! between the last two refreshes: how much the board moved in `size_refresh`,
//! which loadgen's verifier waits to reach 0 before comparing.
//!
//! # Generations
//! Shard keys carry a generation number. A rebalance ([`crate::board::rebalance`])
//! fills a new generation while writers write to both; every write batch ends
//! by re-reading the metadata, and re-applies itself to any generation it did
//! not know about, so no write is lost to a rebalance that started mid-batch.
//! Reads fetch the metadata alongside their data and retry once if the active
//! generation changed. A replaced generation is deleted only after a grace
//! period ([`crate::RebalanceOptions::grace`]), so a read's second round trip
//! on it still finds it.
//!
//! # Parts
//! This file holds the boards' state (metadata, cached sizes) and the read and
//! write entry points; `range/read.rs` the shards' reads (standings, pages, arounds),
//! `range/write.rs` the shards' writes (adds, then removals from the shard left).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::model::{Entry, Page, ScoreUpdate, ShardStats, Standing};
use leaderboard_semantics::rules::Ties;

use crate::connection::store::Store;
use crate::layout::shards::{Answer, Found, cards, single_cmd_pipes};
use crate::layout::{keys, scripts};
use crate::{Error, Result};

pub mod meta;
pub(crate) mod place;
mod read;
mod write;

use meta::{Generation, LoadedMeta, RangeMeta};
pub use read::sizes_above;
use read::{Around, around_in, locate_everywhere, page};
use write::remove_from_generation;
pub(crate) use write::{delete_generation, write_generation};

/// How many times a write re-checks the metadata before giving up: each
/// re-check follows a rebalance step, which takes far longer than a batch.
const MAX_META_RETRIES: usize = 8;

/// Shard sizes of one generation, as prefix sums.
#[derive(Debug, Clone)]
struct SizeCache {
    generation: u64,
    /// `above[i]` = members in shards `i+1..`.
    above: Vec<u64>,
    read_at: Instant,
    drift: u64,
}

#[derive(Debug)]
struct BoardState {
    meta: RwLock<Arc<LoadedMeta>>,
    sizes: RwLock<Option<SizeCache>>,
    /// Held by the one reader refreshing the sizes. A reader dropped
    /// mid-refresh (a request timeout, a client hanging up) drops the guard
    /// with it, so the next reader refreshes: no flag can be left set.
    refresh: tokio::sync::Mutex<()>,
}

/// Per-process state of every `range` board that exists: cached metadata and
/// sizes. A board enters only once its metadata exists in Redis (a writer
/// created it), so reading made-up board names grows nothing, here or in Redis.
#[derive(Debug)]
pub(crate) struct RangeBoards {
    initial: Vec<u64>,
    size_refresh: Duration,
    boards: DashMap<BoardId, Arc<BoardState>>,
}

pub(crate) fn shard_keys(board: &BoardId, generation: &Generation) -> Vec<String> {
    (0..generation.shard_count()).map(|i| keys::range_shard(board, generation.generation, i)).collect()
}

impl RangeBoards {
    pub(crate) fn new(initial: Vec<u64>, size_refresh: Duration) -> Self {
        Self { initial, size_refresh, boards: DashMap::new() }
    }

    /// Forgets a board's cached state.
    pub(crate) fn forget(&self, board: &BoardId) {
        self.boards.remove(board);
    }

    fn cache(&self, board: &BoardId, loaded: LoadedMeta) -> Arc<BoardState> {
        let state = Arc::new(BoardState {
            meta: RwLock::new(Arc::new(loaded)),
            sizes: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        });
        self.boards.entry(board.clone()).or_insert(state).clone()
    }

    /// The state of an existing board; `None` (and nothing cached) when it does not exist.
    async fn existing(&self, store: &Store, board: &BoardId) -> Result<Option<Arc<BoardState>>> {
        if let Some(s) = self.boards.get(board) {
            return Ok(Some(s.clone()));
        }
        let loaded = meta::load(store, &keys::range_meta(board)).await?;
        Ok(loaded.map(|l| self.cache(board, l)))
    }

    /// Creates a board's metadata with the configured boundaries when it has none.
    pub(crate) async fn create(&self, store: &Store, board: &BoardId) -> Result<()> {
        self.created(store, board).await.map(|_| ())
    }

    /// The state of a board a writer writes to, creating its metadata when absent.
    async fn created(&self, store: &Store, board: &BoardId) -> Result<Arc<BoardState>> {
        if let Some(s) = self.boards.get(board) {
            return Ok(s.clone());
        }
        let loaded = meta::load_or_create(store, &keys::range_meta(board), &self.initial).await?;
        Ok(self.cache(board, loaded))
    }

    fn cached_meta(state: &BoardState) -> Result<Arc<LoadedMeta>> {
        Ok(state.meta.read().map_err(|_| Error::Corrupt("poisoned metadata lock".into()))?.clone())
    }

    /// Re-reads a board's metadata from Redis and caches it; `None` when the board does not exist.
    pub(crate) async fn reload(&self, store: &Store, board: &BoardId) -> Result<Option<Arc<LoadedMeta>>> {
        let Some(fresh) = meta::load(store, &keys::range_meta(board)).await? else {
            self.boards.remove(board);
            return Ok(None);
        };
        let fresh = Arc::new(fresh);
        let state = self.cache(board, (*fresh).clone());
        if let Ok(mut guard) = state.meta.write() {
            *guard = fresh.clone();
        }
        Ok(Some(fresh))
    }

    /// Like [`RangeBoards::reload`], for operations that need the board to exist.
    pub(crate) async fn reload_existing(&self, store: &Store, board: &BoardId) -> Result<Arc<LoadedMeta>> {
        self.reload(store, board).await?.ok_or_else(|| Error::UnknownBoard(board.to_string()))
    }

    /// Writes a batch to every generation the metadata lists. `create`: the
    /// board is new when it has no metadata (`range` is its current layout);
    /// otherwise (`range` is the target or the remains of a layout migration)
    /// a board without metadata has no `range` keys to write, and none are made.
    pub(crate) async fn apply(
        &self,
        store: &Store,
        board: &BoardId,
        updates: &[&ScoreUpdate],
        create: bool,
        ties: Ties,
    ) -> Result<Vec<usize>> {
        let state = if create {
            self.created(store, board).await?
        } else {
            match self.existing(store, board).await? {
                Some(state) => state,
                None => return Ok(Vec::new()),
            }
        };
        let players: Vec<&PlayerId> = updates.iter().map(|u| &u.player).collect();
        let write =
            |generation: Generation| async move { write_generation(store, board, &generation, updates, ties).await };
        self.each_generation(store, board, &state, &players, ties, write).await
    }

    /// Runs `write` on every generation the metadata lists, then re-reads it:
    /// a generation a rebalance added meanwhile is written too, and the
    /// `players` are taken back from one it retired meanwhile. Returns the
    /// indexes `write` reported refused by a closed season's fence.
    async fn each_generation<F, Fut>(
        &self,
        store: &Store,
        board: &BoardId,
        state: &BoardState,
        players: &[&PlayerId],
        ties: Ties,
        write: F,
    ) -> Result<Vec<usize>>
    where
        F: Fn(Generation) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<usize>>>,
    {
        let mut known = Self::cached_meta(state)?;
        let mut written: Vec<u64> = Vec::new();
        // Seasons are never rebalanced (one generation), so the fence refuses an update everywhere or nowhere.
        let mut refused: Vec<usize> = Vec::new();
        for generation in known.meta.write_generations() {
            refused.extend(write(generation.clone()).await?);
            written.push(generation.generation);
        }
        for _ in 0..MAX_META_RETRIES {
            let Some(fresh) = self.reload(store, board).await? else {
                // The layout was deleted while this batch ran (its metadata goes first):
                // what the batch wrote is stray; generations are never reused, so deleting them is safe.
                for generation in known.meta.write_generations() {
                    delete_generation(store, board, generation).await?;
                }
                return Ok(refused);
            };
            // Only a change of generations matters; the rebalance's scan position does not.
            if fresh.meta.write_set() == known.meta.write_set() {
                refused.sort_unstable();
                refused.dedup();
                return Ok(refused);
            }
            for generation in fresh.meta.write_generations() {
                if !written.contains(&generation.generation) {
                    refused.extend(write(generation.clone()).await?);
                    written.push(generation.generation);
                }
            }
            // Generations retired while this batch ran: take back what we wrote there.
            for generation in known.meta.write_generations() {
                if !fresh.meta.write_generations().any(|g| g.generation == generation.generation) {
                    remove_from_generation(store, board, generation, players, ties).await?;
                }
            }
            known = fresh;
        }
        Err(Error::Contended(board.to_string()))
    }

    /// Runs `read` against the active generation, retrying once if a rebalance
    /// switched generations while it ran; `missing` when the board does not exist.
    async fn read<T, F, Fut>(&self, store: &Store, board: &BoardId, missing: T, read: F) -> Result<T>
    where
        F: Fn(Arc<LoadedMeta>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let Some(state) = self.existing(store, board).await? else { return Ok(missing) };
        let meta = Self::cached_meta(&state)?;
        let check = async { meta::load(store, &keys::range_meta(board)).await };
        let (value, now) = futures::future::try_join(read(meta.clone()), check).await?;
        match now {
            Some(now) if now.meta.active.generation == meta.meta.active.generation => Ok(value),
            // Switched generations (or the board was deleted) meanwhile: read again.
            _ => match self.reload(store, board).await? {
                Some(fresh) => read(fresh).await,
                None => Ok(missing),
            },
        }
    }

    /// The board's sizes for `generation`: the cached ones while younger than
    /// `size_refresh`; once older, one reader refreshes them (single flight)
    /// while the others keep answering with the old ones.
    async fn sizes(
        &self,
        store: &Store,
        board: &BoardId,
        state: &BoardState,
        generation: &Generation,
    ) -> Result<SizeCache> {
        let cached = state.sizes.read().ok().and_then(|g| g.clone()).filter(|c| c.generation == generation.generation);
        if let Some(c) = &cached {
            if c.read_at.elapsed() < self.size_refresh {
                return Ok(c.clone());
            }
            return match state.refresh.try_lock() {
                Ok(_refreshing) => self.refresh_sizes_of(store, board, generation, state, Some(c)).await,
                Err(_) => Ok(c.clone()), // another reader is refreshing them
            };
        }
        // No sizes for this generation: wait for a refresh in flight rather than start a second one.
        let _refreshing = state.refresh.lock().await;
        let cached = state.sizes.read().ok().and_then(|g| g.clone());
        match cached {
            Some(c) if c.generation == generation.generation && c.read_at.elapsed() < self.size_refresh => Ok(c),
            previous => self.refresh_sizes_of(store, board, generation, state, previous.as_ref()).await,
        }
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
        let cache = SizeCache { generation: generation.generation, above, read_at: Instant::now(), drift };
        if let Ok(mut g) = state.sizes.write() {
            *g = Some(cache.clone());
        }
        Ok(cache)
    }

    /// Forces a refresh of a board's precomputed sizes (nothing for a board that does not exist).
    pub(crate) async fn refresh_sizes(&self, store: &Store, board: &BoardId) -> Result<()> {
        let Some(meta) = self.reload(store, board).await? else { return Ok(()) };
        let Some(state) = self.existing(store, board).await? else { return Ok(()) };
        let _refreshing = state.refresh.lock().await;
        let previous = state.sizes.read().ok().and_then(|g| g.clone());
        self.refresh_sizes_of(store, board, &meta.meta.active, &state, previous.as_ref()).await?;
        Ok(())
    }

    /// A player's standing, from one round trip: every shard reports its
    /// size and, the one holding the player, their place in it. Rank, total and
    /// percentile therefore come from the same reading (one snapshot), never
    /// from sizes cached at another moment.
    pub(crate) async fn standing(
        &self,
        store: &Store,
        board: &BoardId,
        player: &PlayerId,
        ties: Ties,
    ) -> Result<Option<Standing>> {
        self.read(store, board, None, |meta| async move {
            let keys = shard_keys(board, &meta.meta.active);
            let (cards, best) = locate_everywhere(store, &keys, player, ties).await?;
            let Some((shard, found)) = best else { return Ok(None) };
            let ahead = cards[shard + 1..].iter().sum::<u64>() + found.ahead(ties);
            let equal = if ties == Ties::Earliest { 1 } else { found.equal };
            let total = cards.iter().sum::<u64>().max(ahead + equal);
            Ok(Some(Standing::ranked(found.score, ahead, equal, total, ties).with_meta(found.meta)))
        })
        .await
    }

    pub(crate) async fn top(
        &self,
        store: &Store,
        board: &BoardId,
        offset: u64,
        limit: u64,
        ties: Ties,
    ) -> Result<Page> {
        self.read(store, board, Page { total: 0, entries: Vec::new() }, |meta| async move {
            let keys = shard_keys(board, &meta.meta.active);
            let cards = cards(store, &keys).await?;
            let entries = page(store, &keys, &cards, offset, limit, ties).await?;
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
        ties: Ties,
    ) -> Result<Option<Vec<Entry>>> {
        self.read(store, board, None, |meta| async move {
            let keys = shard_keys(board, &meta.meta.active);
            for _ in 0..crate::layout::shards::AROUND_ATTEMPTS {
                let (cards, best) = locate_everywhere(store, &keys, player, ties).await?;
                let Some((shard, _)) = best else { return Ok(None) };
                let shape = Around { keys: &keys, cards: &cards, own: shard, radius, ties };
                if let Some(rows) = around_in(store, &shape, player).await? {
                    return Ok(Some(rows));
                }
            }
            Err(Error::Contended(board.to_string()))
        })
        .await
    }

    /// Standings of some players (at least one): `LOOKUP` on every shard at
    /// once; a player's copy in the highest shard is theirs (a player moving
    /// up is briefly in two), ranked with the sizes of the same round trip.
    pub(crate) async fn lookup(
        &self,
        store: &Store,
        board: &BoardId,
        players: &[&PlayerId],
        ties: Ties,
    ) -> Result<Answer> {
        self.read(store, board, Answer { total: 0, found: vec![None; players.len()] }, |meta| async move {
            let keys = shard_keys(board, &meta.meta.active);
            let pipes = single_cmd_pipes(keys.iter().map(|k| {
                let index = keys::index_for(k, ties);
                scripts::lookup(k, index.as_deref(), players.iter().copied())
            }));
            let looked = store
                .run_all(&pipes)
                .await?
                .into_iter()
                .map(|reply| scripts::parse_lookup(reply.into_iter().next().unwrap_or_default()))
                .collect::<Result<Vec<_>>>()?;
            let cards: Vec<u64> = looked.iter().map(|l| l.card).collect();
            let above_shard = sizes_above(&cards);
            let found = (0..players.len())
                .map(|i| {
                    (0..looked.len()).rev().find_map(|shard| {
                        let found = looked[shard].found.get(i)?.as_ref()?;
                        Some(Found::new(found, above_shard[shard]))
                    })
                })
                .collect();
            Ok(Answer { total: cards.iter().sum(), found })
        })
        .await
    }

    pub(crate) async fn total(&self, store: &Store, board: &BoardId) -> Result<u64> {
        self.read(store, board, 0, |meta| async move {
            Ok(cards(store, &shard_keys(board, &meta.meta.active)).await?.iter().sum())
        })
        .await
    }

    /// The board's shards, rank-error bound and metadata; `None` when the board does not exist.
    pub(crate) async fn stats(&self, store: &Store, board: &BoardId) -> Result<Option<RangeStats>> {
        let Some(meta) = self.reload(store, board).await? else { return Ok(None) };
        let Some(state) = self.existing(store, board).await? else { return Ok(None) };
        let generation = &meta.meta.active;
        let keys = shard_keys(board, generation);
        let cards = cards(store, &keys).await?;
        let rank_error_bound = self.sizes(store, board, &state, generation).await?.drift;
        let shards = keys
            .into_iter()
            .zip(cards)
            .enumerate()
            .map(|(index, (key, size))| {
                let (min, max) = generation.range_of(index);
                ShardStats { index, key, min_score: Some(min), max_score: max, size }
            })
            .collect();
        Ok(Some(RangeStats { shards, rank_error_bound, meta: meta.meta.clone() }))
    }
}

/// What [`RangeBoards::stats`] reports about a board.
#[derive(Debug, Clone)]
pub(crate) struct RangeStats {
    pub shards: Vec<ShardStats>,
    pub rank_error_bound: u64,
    pub meta: RangeMeta,
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

    /// Updates setting each `(player, score)` on `board`.
    fn updates(board: &BoardId, players: impl Iterator<Item = (String, u64)>) -> Vec<ScoreUpdate> {
        players
            .map(|(id, score)| ScoreUpdate {
                board: board.clone(),
                player: PlayerId::new(id).expect("id"),
                score,
                time_ms: 0,
                meta: None,
                source: None,
            })
            .collect()
    }

    /// A private Redis, a range board of three shards with `players` players, its state and active generation.
    async fn board_with(
        redis: &testkit::PrivateRedis,
        boards: &RangeBoards,
        players: u64,
    ) -> (Store, BoardId, Arc<BoardState>, Generation) {
        let store =
            Store::connect(&crate::RedisTarget::parse(&redis.url()).expect("url"), crate::StoreOptions::default())
                .await
                .expect("private redis");
        let board = BoardId::new("sizes").expect("board");
        let initial = updates(&board, (0..players).map(|i| (format!("p{i}"), i)));
        boards.apply(&store, &board, &initial.iter().collect::<Vec<_>>(), true, Ties::Shared).await.expect("apply");
        let state = boards.existing(&store, &board).await.expect("load").expect("the board exists");
        let generation = RangeBoards::cached_meta(&state).expect("meta").meta.active.clone();
        (store, board, state, generation)
    }

    /// The bug: an around read its window at the global position the sizes of
    /// its first round trip gave; players who arrived above in between shifted
    /// the board, and the window missed the player it was around. Here they
    /// arrive between the two round trips by construction.
    #[tokio::test]
    async fn an_around_keeps_its_player_when_players_arrive_between_its_round_trips() {
        let redis = testkit::PrivateRedis::start();
        let boards = RangeBoards::new(vec![10, 20], Duration::from_secs(1));
        // p0..p29 with scores 0..29: shards [0, 10), [10, 20), [20, ..).
        let (store, board, _, generation) = board_with(&redis, &boards, 30).await;
        let keys = shard_keys(&board, &generation);
        let ids = |rows: &[Entry]| rows.iter().map(|e| e.player.to_string()).collect::<Vec<_>>();
        // Eight players arrive between the round trips, in the player's shard just above
        // them: their score, and ids sorting first ("a" < "p").
        let cases = [("p15", ["a0-6", "a0-7", "p15", "p14", "p13"]), ("p11", ["a1-6", "a1-7", "p11", "p10", "p9"])];
        for (round, (player, want)) in cases.into_iter().enumerate() {
            let player = PlayerId::new(player).expect("id");
            let (cards, best) = locate_everywhere(&store, &keys, &player, Ties::Shared).await.expect("locate");
            let (own, found) = best.expect("the player is on the board");
            let arrivals = updates(&board, (0..8).map(|i| (format!("a{round}-{i}"), found.score)));
            boards
                .apply(&store, &board, &arrivals.iter().collect::<Vec<_>>(), true, Ties::Shared)
                .await
                .expect("apply");
            // The fault happened: a window at the position the first round trip gave misses the player.
            let position = sizes_above(&cards)[own] + found.position;
            let stale = page(&store, &keys, &cards, position - 2, 5, Ties::Shared).await.expect("page");
            assert!(!stale.iter().any(|e| e.player == player), "around {player}: {:?}", ids(&stale));
            let shape = Around { keys: &keys, cards: &cards, own, radius: 2, ties: Ties::Shared };
            let rows = around_in(&store, &shape, &player).await.expect("around").expect("the player is still there");
            assert_eq!(ids(&rows), want, "around {player}");
            // The arrivals share the player's rank; the next two come one place apart (p11's window
            // crosses into the shard below).
            let ranks: Vec<u64> = rows.iter().map(|e| e.rank).collect();
            let (r, tied) = (ranks[2], 9);
            assert_eq!(ranks, [r, r, r, r + tied, r + tied + 1], "around {player}");
        }
        // Two players above p18 move up to the next shard between the round trips.
        let player = PlayerId::new("p18").expect("id");
        let (cards, best) = locate_everywhere(&store, &keys, &player, Ties::Shared).await.expect("locate");
        let moved = updates(&board, [("p17".to_string(), 20), ("p16".to_string(), 21)].into_iter());
        boards.apply(&store, &board, &moved.iter().collect::<Vec<_>>(), true, Ties::Shared).await.expect("apply");
        let shape = Around { keys: &keys, cards: &cards, own: best.expect("found").0, radius: 2, ties: Ties::Shared };
        let rows = around_in(&store, &shape, &player).await.expect("around").expect("p18 stays in its shard");
        // Above p18 now: p19, then the lowest of the shard above, p20 (20, after p17's 20 by id).
        assert_eq!(ids(&rows), ["p20", "p19", "p18", "a0-0", "a0-1"], "p16 and p17 left p18's shard");
    }

    fn zcard_calls(redis: &testkit::PrivateRedis) -> u64 {
        let port = redis.url().rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        testkit::command_calls(port, "zcard")
    }

    /// The bug: a refresh cancelled mid-flight left a flag set, and sizes never
    /// refreshed again. The refresh here is cancelled while Redis holds it
    /// (`CLIENT PAUSE`), by construction; afterwards the next read refreshes.
    #[tokio::test]
    async fn a_refresh_cancelled_midway_leaves_nothing_behind() {
        let redis = testkit::PrivateRedis::start();
        let boards = RangeBoards::new(vec![10, 20], Duration::from_millis(1));
        let (store, board, state, generation) = board_with(&redis, &boards, 15).await;
        let first = boards.sizes(&store, &board, &state, &generation).await.expect("sizes");
        assert_eq!(first.above, [5, 0, 0], "scores 0..15 over boundaries 10 and 20");
        let more = updates(&board, (15..25).map(|i| (format!("p{i}"), i)));
        boards.apply(&store, &board, &more.iter().collect::<Vec<_>>(), true, Ties::Shared).await.expect("apply");
        tokio::time::sleep(Duration::from_millis(5)).await; // the sizes age past size_refresh

        let pauser =
            Store::connect(&crate::RedisTarget::parse(&redis.url()).expect("url"), crate::StoreOptions::default())
                .await
                .expect("second connection");
        let _: String = pauser.query(redis::cmd("CLIENT").arg("PAUSE").arg(1500).arg("ALL")).await.expect("pause");
        let cancelled =
            tokio::time::timeout(Duration::from_millis(200), boards.sizes(&store, &board, &state, &generation)).await;
        assert!(cancelled.is_err(), "the refresh was held by the pause and cancelled");

        // Once Redis answers again, a read refreshes (it waits out the rest of the pause).
        let after = boards.sizes(&store, &board, &state, &generation).await.expect("sizes");
        assert_eq!(after.above, [15, 5, 0], "sizes refreshed after the cancelled refresh");
        assert!(after.read_at > first.read_at);
    }

    /// Many readers finding stale sizes at once start one refresh, not one each.
    #[tokio::test]
    async fn stale_sizes_are_refreshed_once_for_many_readers() {
        let redis = testkit::PrivateRedis::start();
        let boards = RangeBoards::new(vec![10, 20], Duration::from_millis(1));
        let (store, board, state, generation) = board_with(&redis, &boards, 30).await;
        boards.sizes(&store, &board, &state, &generation).await.expect("sizes");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let before = zcard_calls(&redis);
        let readers = (0..32).map(|_| boards.sizes(&store, &board, &state, &generation));
        let all = futures::future::try_join_all(readers).await.expect("sizes");
        assert!(all.iter().all(|s| s.above == [20, 10, 0]));
        assert_eq!(zcard_calls(&redis) - before, generation.shard_count() as u64, "one refresh: one ZCARD per shard");
    }

    /// Reading a board that does not exist creates nothing, in Redis or in this cache.
    #[tokio::test]
    async fn reading_unknown_boards_creates_nothing() {
        let redis = testkit::PrivateRedis::start();
        let boards = RangeBoards::new(vec![10, 20], Duration::from_secs(1));
        let store =
            Store::connect(&crate::RedisTarget::parse(&redis.url()).expect("url"), crate::StoreOptions::default())
                .await
                .expect("private redis");
        let player = PlayerId::new("nobody").expect("id");
        for i in 0..500 {
            let board = BoardId::new(format!("unknown-{i}")).expect("board");
            assert_eq!(boards.standing(&store, &board, &player, Ties::Shared).await.expect("standing"), None);
            assert_eq!(boards.top(&store, &board, 0, 10, Ties::Shared).await.expect("top").total, 0);
            assert_eq!(boards.around(&store, &board, &player, 3, Ties::Shared).await.expect("around"), None);
            assert_eq!(boards.total(&store, &board).await.expect("total"), 0);
            assert!(boards.stats(&store, &board).await.expect("stats").is_none());
        }
        let keys: u64 = store.query(&redis::cmd("DBSIZE")).await.expect("dbsize");
        assert_eq!(keys, 0, "no key was created");
        assert!(boards.boards.is_empty(), "no board was cached");
    }
}
