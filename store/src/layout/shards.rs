//! What every sharded layout's reads share: one-command pipelines (one per
//! shard, so each runs on the shard's node), shard sizes, and a player's
//! standing as a layout found it.

use redis::Pipeline;

use crate::Result;
use crate::connection::reply::as_u64;
use crate::connection::store::Store;
use crate::layout::{member, scripts};

/// One pipeline per command, so [`Store::run_all`] sends each to its own node.
pub(crate) fn single_cmd_pipes(cmds: impl Iterator<Item = redis::Cmd>) -> Vec<Pipeline> {
    cmds.map(|c| {
        let mut p = redis::pipe();
        p.add_command(c);
        p
    })
    .collect()
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

/// Most tries of an around whose player moved between its two round trips
/// (to another shard, or to another score; each needs a better score, so a
/// second try is rare and a third one rarer still).
pub(crate) const AROUND_ATTEMPTS: usize = 3;

/// A player's score and board rank, as a layout found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// Their ranking key.
    pub score: u64,
    /// Their rank on the board.
    pub rank: u64,
    /// Players with their score, themselves included (1 on `earliest` boards).
    pub tied: u64,
    /// When they reached it (`earliest` boards; 0 elsewhere).
    pub time_ms: u64,
    /// Their entry's metadata.
    pub meta: Option<leaderboard_contract::Meta>,
}

impl Found {
    /// A player found in a shard, with `ahead` players ahead of them and `tied` sharing their
    /// score (themselves included; 1 on `earliest` boards), counted over every shard.
    pub(crate) fn ranked(found: &scripts::LookedUp, ahead: u64, tied: u64) -> Self {
        let time_ms = member::decode_any(&found.member).and_then(|d| d.time_ms).unwrap_or(0);
        Self { score: found.score, rank: 1 + ahead, tied, time_ms, meta: found.meta.clone() }
    }

    /// A player found in a shard with `above_shard` players in the shards ranked above it.
    pub(crate) fn new(found: &scripts::LookedUp, above_shard: u64) -> Self {
        Self::ranked(found, above_shard + found.before, found.tied)
    }
}

/// What a layout answers a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Players on the board.
    pub total: u64,
    /// Per player asked, in the order asked: what the layout found.
    pub found: Vec<Option<Found>>,
}
