//! Writes of `last` and `sum` boards (docs/ingest.md#exactly-once-operators):
//! each shard takes its records through the `TALLY` script, which applies
//! each record once, atomically with the shard's applied offsets.
//!
//! The script runs where a player's place is fixed by their id: the board's
//! one sorted set (`single`), their `hash` shard, or, on `range`, their home
//! ([`keys::tally_home`]), so "applied" and "offset recorded" are one atomic
//! step on the node that holds the player, whatever happens to the other
//! shards of the batch. On `range` the homes version each change and the
//! writer then places the new values in the score-range shards
//! ([`crate::layout::range`]). A migration between layouts is refused
//! ([`Error::OperatorLayout`]): a copy and the live writes would count the
//! same records twice.

use std::collections::{HashMap, HashSet};

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::model::ScoreUpdate;
use leaderboard_semantics::tally::Source;
use leaderboard_semantics::{Operator, Rules};

use crate::connection::store::Store;
use crate::layout::hash::shard_of;
use crate::layout::keys;
use crate::layout::record::RecordedLayout;
use crate::layout::router::Closed;
use crate::layout::scripts::place::{self, Placement};
use crate::layout::scripts::{self, Reached, Tallied};
use crate::{Error, Result};

/// What a write of updates did besides applying them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Updates a closed season's fence refused: nothing of them was written
    /// (ingest dead-letters their events as `season_closed`).
    pub closed: Vec<Closed>,
    /// `sum` updates refused because the score would pass 2^53 - 1: their
    /// records are dead letters (`out_of_bounds`), then [`crate::Router::settle`]d.
    pub overflowed: Vec<Overflowed>,
    /// `last` and `sum` updates skipped because their record was applied before.
    pub replayed: u64,
    /// `last` and `sum` updates skipped as a re-sent `id` within the board's `dedup_window`.
    pub duplicates: u64,
}

impl Applied {
    /// Adds what another write did.
    pub fn extend(&mut self, other: Self) {
        self.closed.extend(other.closed);
        self.overflowed.extend(other.overflowed);
        self.replayed += other.replayed;
        self.duplicates += other.duplicates;
    }
}

/// A `sum` update refused for overflowing, remembered by its shard until settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overflowed {
    /// The board or season.
    pub board: BoardId,
    /// The player.
    pub player: PlayerId,
    /// The record.
    pub source: Source,
    /// The shard that refused it.
    pub(crate) shard: String,
}

/// What writing one board's `last` or `sum` updates to one layout did, by index in the batch.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub closed: Vec<usize>,
    /// Index and the shard that refused it.
    pub overflowed: Vec<(usize, String)>,
    pub replayed: u64,
    pub duplicates: u64,
    /// `range`: the state of every player of the batch in their home, to place in the shards.
    pub homes: Vec<HomeState>,
}

/// The players of one `range` home as it held them right after a write.
#[derive(Debug)]
pub(crate) struct HomeState {
    /// The home's key.
    pub home: String,
    /// Every player of the batch in this home that has a value.
    pub placements: Vec<Placement>,
}

/// Writes `updates` (in record order per partition) to `board`'s `layout`.
///
/// # Errors
/// [`Error::Redis`] when Redis fails (the updates may be partly applied:
/// applying them again applies each at most once).
pub(crate) async fn apply(
    store: &Store,
    board: &BoardId,
    layout: RecordedLayout,
    updates: &[&ScoreUpdate],
    rules: &Rules,
) -> Result<Written> {
    let mut writes = Vec::with_capacity(updates.len());
    for u in updates {
        let Some(source) = u.source.as_ref() else {
            return Err(Error::Corrupt(format!("an update of {board} ({}) without its record", rules.operator)));
        };
        let value = if rules.operator == Operator::Sum { u.score } else { rules.key(u.score) };
        writes.push(Tallied { value, time_ms: u.time_ms, player: &u.player, meta: u.meta.as_ref(), source });
    }
    // Grouped by shard index: the key is named once per shard, not once per update.
    let shards = match layout {
        RecordedLayout::Hash { shards } => shards,
        RecordedLayout::Range => keys::HOMES,
        RecordedLayout::Single => 1,
    };
    let key_of = |i: usize| match layout {
        RecordedLayout::Hash { shards } => keys::hash_shard(board, shards, i),
        RecordedLayout::Range => keys::tally_home(board, i),
        RecordedLayout::Single => keys::single(board),
    };
    let versioned = layout == RecordedLayout::Range;
    let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); shards];
    for (i, u) in updates.iter().enumerate() {
        by_shard[shard_of(&u.player, shards)].push(i);
    }
    let groups: Vec<(String, Vec<usize>)> =
        by_shard.into_iter().enumerate().filter(|(_, g)| !g.is_empty()).map(|(i, g)| (key_of(i), g)).collect();
    // `range` only: each home's distinct players, whose state is read after the writes.
    let players: Vec<Vec<&PlayerId>> = if versioned {
        groups
            .iter()
            .map(|(_, group)| {
                let mut seen = HashSet::new();
                group.iter().map(|&i| &updates[i].player).filter(|p| seen.insert(*p)).collect()
            })
            .collect()
    } else {
        vec![Vec::new(); groups.len()]
    };
    let pipes: Vec<redis::Pipeline> = groups
        .iter()
        .zip(&players)
        .map(|((key, group), players)| {
            let mut pipe = shard_pipeline(board, key, group, &writes, rules, versioned);
            if versioned {
                // Right after the writes, on the same node: at least as new as what they did.
                let index = keys::index_for(key, rules.ties);
                pipe.add_command(place::state(key, index.as_deref(), players.iter().copied()));
            }
            pipe
        })
        .collect();
    let replies = store.run_all(&pipes).await?;
    if crate::failpoint::triggered("store::tally_reply_lost") {
        // Fault tests: Redis applied the write, and its reply never arrived.
        let lost = std::io::Error::new(std::io::ErrorKind::TimedOut, "fail point: the reply was lost");
        return Err(Error::Redis(redis::RedisError::from(lost)));
    }
    let mut written = Written::default();
    for (((key, group), players), mut replies) in groups.iter().zip(&players).zip(replies) {
        if versioned {
            let state = replies.pop().ok_or_else(|| Error::Corrupt(format!("{key}: no state reply")))?;
            written.homes.push(HomeState { home: key.clone(), placements: place::parse_state(state, players)? });
        }
        for (chunk, reply) in group.chunks(scripts::ADD_CHUNK).zip(replies) {
            let reply = scripts::parse_tally(reply, key)?;
            if reply.closed {
                written.closed.extend(chunk);
                continue;
            }
            written.replayed += reply.replayed;
            written.duplicates += reply.duplicates;
            written.overflowed.extend(reply.refused.iter().map(|&j| (chunk[j], key.clone())));
        }
    }
    Ok(written)
}

/// One shard's chunks, each naming what the ones before it reached.
fn shard_pipeline(
    board: &BoardId,
    key: &str,
    group: &[usize],
    writes: &[Tallied<'_>],
    rules: &Rules,
    versioned: bool,
) -> redis::Pipeline {
    let index = keys::index_for(key, rules.ties);
    let fence = keys::fence_for(board, key);
    let mut pipe = redis::pipe();
    let mut reached: Vec<Reached> = Vec::new();
    for chunk in group.chunks(scripts::ADD_CHUNK) {
        let chunk: Vec<Tallied<'_>> = chunk.iter().map(|&i| writes[i]).collect();
        pipe.add_command(scripts::tally(key, index.as_deref(), fence.as_deref(), rules, &reached, &chunk, versioned));
        for w in &chunk {
            match reached.iter_mut().find(|r| r.is(w.source)) {
                Some(r) => r.next = r.next.max(w.source.offset + 1),
                None => reached.push(Reached::after(w.source)),
            }
        }
    }
    pipe
}

/// Forgets refusals whose dead letters are sent: a replay no longer reports them.
///
/// # Errors
/// [`Error::Redis`] when Redis fails (settling again is harmless).
pub(crate) async fn settle(store: &Store, overflowed: &[Overflowed]) -> Result<()> {
    let mut by_shard: HashMap<&str, Vec<&Source>> = HashMap::new();
    for o in overflowed {
        by_shard.entry(o.shard.as_str()).or_default().push(&o.source);
    }
    for (shard, sources) in by_shard {
        let _: i64 = store.query(&scripts::settle(shard, sources.into_iter())).await?;
    }
    Ok(())
}
