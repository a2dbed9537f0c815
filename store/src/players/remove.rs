//! Taking a player out of storage: one board (every layout it is stored with
//! and, for `range`, every generation), or every board and season at once.
//!
//! Removal writes around the closed-season fence on purpose: erasing a
//! player, or a ban that reaches closed seasons, amends those seasons. It
//! also removes the player's id from a `range` shard's pending moves, so no
//! trace of the id is left in the board's keys. A closed season a removal
//! reaches records when it was amended (its entry's `amended_at_ms`).

use leaderboard_contract::{BoardId, PlayerId};

use crate::Result;
use crate::board::rebalance::now_ms;
use crate::connection::reply::as_u64;
use crate::layout::range::meta;
use crate::layout::range::shard_keys;
use crate::layout::record::{self, BoardRecord, RecordedLayout};
use crate::layout::router::Router;
use crate::layout::{hash, keys, member, scripts};
use crate::players::registry::{self, Ban};

/// Which of a board's seasons a removal reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seasons {
    /// Open seasons only: closed ones stay as they closed.
    Open,
    /// Every season, closed ones included (they are amended).
    All,
}

/// An erasure: when (Redis's clock), and where the player was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// The erasure's time, in milliseconds since the Unix epoch: records stamped before it are never applied.
    pub at_ms: i64,
    /// Where the player was taken out of.
    pub removed: Removed,
}

/// Where a removal everywhere found the player.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// The boards and seasons (by stored name) the player was taken out of (where they had a score).
    pub boards: Vec<BoardId>,
    /// The closed seasons among them (amended).
    pub amended: Vec<BoardId>,
}

impl Router {
    /// Erases `player` (DESIGN.md "Players: erasure and bans"): marks them
    /// erased now (by Redis's clock) first, then removes them from every board and
    /// season, closed ones included, then raises the registry's version again
    /// (readers that see it see the removal). The order is what makes a batch
    /// written meanwhile safe (module docs of [`crate::players`]).
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails (run it again: both steps are idempotent).
    pub async fn erase_player(&self, player: &PlayerId) -> Result<Erased> {
        let at_ms = registry::mark_erased(self.store(), player).await?;
        let removed = self.remove_everywhere(player, |_| true, Seasons::All).await?;
        registry::touch(self.store()).await?;
        Ok(Erased { at_ms, removed })
    }

    /// Bans `player` with `ban`, recorded first, then removes them from the
    /// boards it covers (and their closed seasons when `ban.closed_seasons`).
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a ban beyond its bounds; [`crate::Error::Redis`] when Redis fails.
    pub async fn ban_player(&self, player: &PlayerId, ban: &Ban) -> Result<Removed> {
        registry::ban(self.store(), player, ban).await?;
        let seasons = if ban.closed_seasons { Seasons::All } else { Seasons::Open };
        let removed = self.remove_everywhere(player, |board| ban.boards.covers(board), seasons).await?;
        registry::touch(self.store()).await?;
        Ok(removed)
    }

    /// Removes `player` from `board` (a board or a stored season), from every
    /// layout its record lists, retired ones included; whether the player was
    /// there. Nothing happens for a board without a record.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails.
    pub async fn remove_player(&self, board: &BoardId, player: &PlayerId) -> Result<bool> {
        let Some(record) = record::recorded(self.store(), board).await? else { return Ok(false) };
        let member = member::encode(player);
        // One pipeline per key: on a Cluster each shard may live on another node.
        let pipes: Vec<redis::Pipeline> = self
            .player_keys(board, player, &record)
            .await?
            .iter()
            .map(|PlayerKey { key, range }| {
                let mut p = redis::pipe();
                match keys::index_for(key, record.rules.ties) {
                    None => p.cmd("ZREM").arg(key).arg(&member),
                    Some(index) => p.add_command(scripts::timed_remove(key, &index, std::iter::once(player))),
                };
                if *range {
                    p.cmd("SREM").arg(keys::pending_moves(key)).arg(&member).ignore();
                }
                p
            })
            .collect();
        let mut removed = 0;
        for replies in self.store().run_all(&pipes).await? {
            removed += replies.first().map_or(Ok(0), as_u64)?;
        }
        self.forget(board);
        Ok(removed > 0)
    }

    /// Removes `player` from every board `covers` accepts and from their
    /// seasons (closed ones only with [`Seasons::All`]).
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails; [`crate::Error::Corrupt`] for an unreadable registry of seasons.
    pub async fn remove_everywhere(
        &self,
        player: &PlayerId,
        covers: impl Fn(&BoardId) -> bool,
        seasons: Seasons,
    ) -> Result<Removed> {
        let mut removed = Removed::default();
        for board in record::boards(self.store()).await? {
            if !covers(&board) {
                continue;
            }
            if self.remove_player(&board, player).await? {
                removed.boards.push(board.clone());
            }
            for season in self.seasons(&board).await? {
                let stored = board.season(&season.id);
                if !season.closed() {
                    if self.remove_player(&stored, player).await? {
                        removed.boards.push(stored);
                    }
                    continue;
                }
                // A closed season is marked amended before the player leaves it, so a run cut
                // short between the two steps is finished by the next (it finds them still there).
                if seasons == Seasons::Open || self.standing(&stored, player).await?.is_none() {
                    continue;
                }
                self.amend_season(&board, &season.id, now_ms().cast_signed()).await?;
                self.remove_player(&stored, player).await?;
                removed.amended.push(stored.clone());
                removed.boards.push(stored);
            }
        }
        Ok(removed)
    }

    /// Every key `player` may be stored under on `board`.
    async fn player_keys(&self, board: &BoardId, player: &PlayerId, record: &BoardRecord) -> Result<Vec<PlayerKey>> {
        let mut layouts = vec![record.layout];
        layouts.extend(record.migration.iter().map(|m| m.to));
        layouts.extend(record.retired.iter().map(|r| r.layout));
        let mut found = Vec::new();
        for layout in layouts {
            match layout {
                RecordedLayout::Single => found.push(PlayerKey { key: keys::single(board), range: false }),
                RecordedLayout::Hash { shards } => {
                    let key = keys::hash_shard(board, shards, hash::shard_of(player, shards));
                    found.push(PlayerKey { key, range: false });
                }
                RecordedLayout::Range => {
                    let Some(loaded) = meta::load(self.store(), &keys::range_meta(board)).await? else { continue };
                    let m = loaded.meta;
                    let generations = std::iter::once(&m.active)
                        .chain(m.migration.as_ref().map(|g| &g.target))
                        .chain(m.retired.iter().map(|r| &r.generation));
                    for generation in generations {
                        found.extend(
                            shard_keys(board, generation).into_iter().map(|key| PlayerKey { key, range: true }),
                        );
                    }
                }
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        found.dedup_by(|a, b| a.key == b.key);
        Ok(found)
    }
}

/// A key a player may be stored under.
struct PlayerKey {
    /// The shard's sorted set.
    key: String,
    /// Whether it is a `range` shard (with pending moves beside it).
    range: bool,
}
