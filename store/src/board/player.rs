//! Taking one player out of one board's storage: every layout its record
//! lists (retired ones and a migration's target included) and, for `range`,
//! every generation, with the player's id in a shard's pending moves (and
//! their home, on boards of `last` or `sum`).
//!
//! Removal writes around the closed-season fence on purpose: erasing a
//! player, or a ban that reaches closed seasons, amends those seasons
//! ([`crate::players::remove`] marks them amended first).

use leaderboard_contract::{BoardId, PlayerId};

use crate::Result;
use crate::connection::reply::as_u64;
use crate::layout::range::meta;
use crate::layout::range::shard_keys;
use crate::layout::record::{self, BoardRecord, RecordedLayout};
use crate::layout::router::Router;
use crate::layout::{hash, keys, member, scripts};

impl Router {
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
                    None => {
                        p.cmd("ZREM").arg(key).arg(&member);
                        p.cmd("HDEL").arg(keys::entry_meta(key)).arg(&member).ignore();
                    }
                    Some(index) => {
                        p.add_command(scripts::timed_remove(key, &index, std::iter::once(player)));
                    }
                }
                if *range {
                    p.cmd("SREM").arg(keys::pending_moves(key)).arg(&member).ignore();
                }
                if record.rules.operator.exactly_once() {
                    // Their idempotency keys and versions are theirs too; a later record is a new start.
                    p.cmd("HDEL").arg(keys::recent_ids(key)).arg(&member).ignore();
                    if record.keeps_homes() {
                        p.cmd("HDEL").arg(keys::versions(key)).arg(&member).ignore();
                        p.cmd("HDEL").arg(keys::unplaced(key)).arg(&member).ignore();
                    }
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
                    if record.rules.operator.exactly_once() {
                        let key = keys::tally_home(board, hash::shard_of(player, keys::HOMES));
                        found.push(PlayerKey { key, range: false });
                    }
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
