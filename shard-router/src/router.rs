//! [`Router`]: the one interface ingest and api use, whatever the layout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use leaderboard_contract::{BoardId, PlayerId};

use crate::board_record::Verified;
use crate::model::{BoardStats, Entry, Page, ScoreUpdate, Standing};
use crate::range::RangeBoards;
use crate::spec::LayoutSpec;
use crate::store::Store;
use crate::{Result, hash, single};

/// Tuning of a [`Router`].
#[derive(Debug, Clone, Copy)]
pub struct RouterOptions {
    /// `range` only: how long precomputed shard sizes are used before a reader refreshes them.
    pub size_refresh: Duration,
}

impl Default for RouterOptions {
    fn default() -> Self {
        Self { size_refresh: Duration::from_secs(1) }
    }
}

/// Reads and writes boards through one layout. Cheap to clone; clones share
/// connections and caches.
#[derive(Debug, Clone)]
pub struct Router {
    store: Store,
    spec: LayoutSpec,
    range: Arc<RangeBoards>,
    verified: Arc<Verified>,
}

impl Router {
    /// A router over `store` using `spec`.
    pub fn new(store: Store, spec: LayoutSpec, options: RouterOptions) -> Self {
        let initial = match &spec {
            LayoutSpec::Range { boundaries } => boundaries.clone(),
            _ => Vec::new(),
        };
        let range = Arc::new(RangeBoards::new(initial, options.size_refresh));
        Self { store, spec, range, verified: Arc::default() }
    }

    /// The layout.
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

    /// Fails with [`crate::Error::LayoutMismatch`] when `board` is stored with
    /// another layout; a write records the layout of a new board.
    async fn check(&self, board: &BoardId, write: bool) -> Result<()> {
        self.verified.check(&self.store, &self.spec, board, write).await
    }

    /// Forgets what this router verified about `board` (after its record changed).
    pub fn forget(&self, board: &BoardId) {
        self.verified.forget(board);
        self.range.forget(board);
    }

    /// Applies a batch of best-score updates.
    ///
    /// Updates of one player on one board are coalesced to the highest score
    /// first. Applying a batch any number of times, in any order relative to
    /// other batches, leaves the same state: every write is a `ZADD GT`.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails; the batch may then be partly
    /// applied, and applying it again is safe. [`crate::Error::LayoutMismatch`]
    /// when a board is stored with another layout (nothing of it is written).
    pub async fn apply(&self, updates: &[ScoreUpdate]) -> Result<()> {
        let mut best: HashMap<(&BoardId, &PlayerId), &ScoreUpdate> = HashMap::with_capacity(updates.len());
        for u in updates {
            best.entry((&u.board, &u.player))
                .and_modify(|b| {
                    if u.score > b.score {
                        *b = u;
                    }
                })
                .or_insert(u);
        }
        let mut by_board: HashMap<&BoardId, Vec<&ScoreUpdate>> = HashMap::new();
        for ((board, _), u) in best {
            by_board.entry(board).or_default().push(u);
        }
        let writes = by_board.into_iter().map(|(board, batch)| async move {
            self.check(board, true).await?;
            match &self.spec {
                LayoutSpec::Single => single::apply(&self.store, board, &batch).await,
                LayoutSpec::Hash { shards } => hash::apply(&self.store, board, *shards, &batch).await,
                LayoutSpec::Range { .. } => self.range.apply(&self.store, board, &batch).await,
            }
        });
        futures::future::try_join_all(writes).await?;
        Ok(())
    }

    /// The player's score, rank, the board's total and the player's percentile;
    /// `None` when the player has no score on the board.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn standing(&self, board: &BoardId, player: &PlayerId) -> Result<Option<Standing>> {
        self.check(board, false).await?;
        match &self.spec {
            LayoutSpec::Single => single::standing(&self.store, board, player).await,
            LayoutSpec::Hash { shards } => hash::standing(&self.store, board, *shards, player).await,
            LayoutSpec::Range { .. } => self.range.standing(&self.store, board, player).await,
        }
    }

    /// Rows at positions `offset..offset + limit` (score descending, then player ascending).
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn top(&self, board: &BoardId, offset: u64, limit: u64) -> Result<Page> {
        self.check(board, false).await?;
        match &self.spec {
            LayoutSpec::Single => single::top(&self.store, board, offset, limit).await,
            LayoutSpec::Hash { shards } => hash::top(&self.store, board, *shards, offset, limit).await,
            LayoutSpec::Range { .. } => self.range.top(&self.store, board, offset, limit).await,
        }
    }

    /// The player's row with up to `radius` rows above and below it; `None`
    /// when the player has no score on the board.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn around(&self, board: &BoardId, player: &PlayerId, radius: u64) -> Result<Option<Vec<Entry>>> {
        self.check(board, false).await?;
        match &self.spec {
            LayoutSpec::Single => single::around(&self.store, board, player, radius).await,
            LayoutSpec::Hash { shards } => hash::around(&self.store, board, *shards, player, radius).await,
            LayoutSpec::Range { .. } => self.range.around(&self.store, board, player, radius).await,
        }
    }

    /// The board's layout, total and per-shard sizes.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn stats(&self, board: &BoardId) -> Result<BoardStats> {
        self.check(board, false).await?;
        let strategy = self.spec.strategy();
        match &self.spec {
            LayoutSpec::Single | LayoutSpec::Hash { .. } => {
                let shards = match &self.spec {
                    LayoutSpec::Hash { shards } => hash::shards(&self.store, board, *shards).await?,
                    _ => single::shards(&self.store, board).await?,
                };
                Ok(BoardStats {
                    strategy,
                    layout: self.spec.to_string(),
                    total: shards.iter().map(|s| s.size).sum(),
                    shards,
                    rank_error_bound: None,
                    generation: None,
                    rebalancing: None,
                })
            }
            LayoutSpec::Range { boundaries } => match self.range.stats(&self.store, board).await? {
                Some(stats) => Ok(BoardStats {
                    strategy,
                    layout: LayoutSpec::Range { boundaries: stats.meta.active.boundaries.clone() }.to_string(),
                    total: stats.shards.iter().map(|s| s.size).sum(),
                    shards: stats.shards,
                    rank_error_bound: Some(stats.rank_error_bound),
                    generation: Some(stats.meta.active.generation),
                    rebalancing: Some(stats.meta.migration.is_some()),
                }),
                // No such board: nothing to report, and nothing created.
                None => Ok(BoardStats {
                    strategy,
                    layout: LayoutSpec::Range { boundaries: boundaries.clone() }.to_string(),
                    total: 0,
                    shards: Vec::new(),
                    rank_error_bound: None,
                    generation: None,
                    rebalancing: None,
                }),
            },
        }
    }

    /// Deletes the board: every key of its layout (for `range`, every
    /// generation, retired and in the making, and the metadata), its layout
    /// record and its name in `lb:boards`. Deleting a board that does not
    /// exist does nothing.
    ///
    /// # Errors
    /// [`crate::Error::LayoutMismatch`] when the board is stored with another
    /// layout (nothing is deleted); [`crate::Error::Redis`] when Redis fails.
    pub async fn delete_board(&self, board: &BoardId) -> Result<()> {
        self.check(board, false).await?;
        let mut doomed = vec![crate::keys::layout(board)];
        match &self.spec {
            LayoutSpec::Single => doomed.push(crate::keys::single(board)),
            LayoutSpec::Hash { shards } => {
                doomed.extend((0..*shards).map(|i| crate::keys::hash_shard(board, *shards, i)));
            }
            LayoutSpec::Range { .. } => {
                if let Some(loaded) = self.range.reload(&self.store, board).await? {
                    let meta = &loaded.meta;
                    let generations = meta.write_generations().chain(meta.retired.iter().map(|r| &r.generation));
                    for key in generations.flat_map(|g| crate::range::shard_keys(board, g)) {
                        doomed.push(crate::keys::pending_moves(&key));
                        doomed.push(key);
                    }
                }
                doomed.push(crate::keys::range_meta(board));
            }
        }
        // One command per key: on a cluster the keys live in different slots.
        let pipes: Vec<redis::Pipeline> = doomed
            .iter()
            .map(|key| {
                let mut pipe = redis::pipe();
                pipe.cmd("UNLINK").arg(key).ignore();
                pipe
            })
            .collect();
        self.store.run_all(&pipes).await?;
        let _: i64 =
            self.store.query(redis::cmd("SREM").arg(crate::board_record::BOARDS_KEY).arg(board.as_str())).await?;
        self.forget(board);
        Ok(())
    }

    /// Players on the board.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn total(&self, board: &BoardId) -> Result<u64> {
        self.check(board, false).await?;
        match &self.spec {
            LayoutSpec::Single => self.store.query(redis::cmd("ZCARD").arg(crate::keys::single(board))).await,
            LayoutSpec::Hash { shards } => {
                Ok(hash::shards(&self.store, board, *shards).await?.iter().map(|s| s.size).sum())
            }
            LayoutSpec::Range { .. } => self.range.total(&self.store, board).await,
        }
    }

    /// `range` only: re-reads the layout metadata and the precomputed shard
    /// sizes now instead of when they next age out. A no-op for other layouts.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn refresh_sizes(&self, board: &BoardId) -> Result<()> {
        match &self.spec {
            LayoutSpec::Range { .. } => self.range.refresh_sizes(&self.store, board).await,
            _ => Ok(()),
        }
    }
}
