//! Standings of a list of players (friends, a clan) in one call.
//!
//! | layout | round trips | Redis work |
//! |---|---|---|
//! | `single` | 1 script | per player: one score, one count |
//! | `hash:S` | 2, one command per shard each: the players' scores and counts in their own shards, then counts above those scores in every other shard | per player: one score and `S` counts |
//! | `range` | 1 script per shard, all in parallel, with the sizes that rank needs | per player: `S` score probes, one count |
//!
//! Ranks follow the board's rule (equal scores share a rank); so do list
//! ranks, the place inside the list. The api takes at most [`MAX_LOOKUP`]
//! players per call, which bounds the work above.

use std::collections::HashSet;

use leaderboard_contract::{BoardId, PlayerId};
use redis::Value;

use crate::board_record::RecordedLayout;
use crate::model::board_order;
use crate::router::Router;
use crate::store::{Store, as_array, as_u64};
use crate::{Result, hash, keys, scripts};

/// Most players one lookup may ask for (DESIGN.md: 1 to 100).
pub const MAX_LOOKUP: usize = 100;

/// One listed player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The player.
    pub player: PlayerId,
    /// Their best score.
    pub score: u64,
    /// Their rank on the board.
    pub rank: u64,
    /// Their place inside the list, with the board's tie rule.
    pub list_rank: u64,
}

/// The answer of a lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    /// Players on the board.
    pub total: u64,
    /// The players found, in board order.
    pub entries: Vec<Listed>,
    /// The players without a score on the board, in the order asked.
    pub missing: Vec<PlayerId>,
}

/// A player's score and board rank, as a layout found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub score: u64,
    pub rank: u64,
}

/// What a layout answers: the board's total and, per player asked, what it found.
pub(crate) type Answer = (u64, Vec<Option<Found>>);

impl Router {
    /// The standings of `players` on `board` (each asked once, whatever the
    /// repeats), ranked on the board and inside the list.
    ///
    /// # Errors
    /// [`crate::Error::Redis`] when Redis fails; [`crate::Error::LayoutMismatch`] as other reads.
    pub async fn lookup(&self, board: &BoardId, players: &[PlayerId]) -> Result<Lookup> {
        let mut seen = HashSet::new();
        let unique: Vec<&PlayerId> = players.iter().filter(|p| seen.insert(*p)).collect();
        if unique.is_empty() {
            return Ok(Lookup { total: self.total(board).await?, ..Lookup::default() });
        }
        let store = self.store();
        let (total, found) = match self.read_layout(board).await? {
            RecordedLayout::Single => single(store, board, &unique).await?,
            RecordedLayout::Hash { shards } => sharded(store, board, shards, &unique).await?,
            RecordedLayout::Range => self.range_boards().lookup(store, board, &unique).await?,
        };
        Ok(assemble(total, &unique, found))
    }
}

/// Orders the found players, gives list ranks, and lists the missing ones.
fn assemble(total: u64, players: &[&PlayerId], found: Vec<Option<Found>>) -> Lookup {
    let mut entries = Vec::new();
    let mut missing = Vec::new();
    for (player, found) in players.iter().zip(found) {
        match found {
            Some(Found { score, rank }) => {
                entries.push(Listed { player: (*player).clone(), score, rank, list_rank: 0 });
            }
            None => missing.push((*player).clone()),
        }
    }
    entries.sort_by(|a, b| board_order(a.score, &a.player, b.score, &b.player));
    for i in 0..entries.len() {
        // Equal scores share a place, as they share a rank on the board.
        entries[i].list_rank =
            if i > 0 && entries[i - 1].score == entries[i].score { entries[i - 1].list_rank } else { i as u64 + 1 };
    }
    Lookup { total, entries, missing }
}

/// Turns `LOOKUP` findings (score, members above it in the key) into ranks in a one-key board.
fn ranked(found: Vec<Option<(u64, u64)>>) -> Vec<Option<Found>> {
    found.into_iter().map(|f| f.map(|(score, above)| Found { score, rank: above + 1 })).collect()
}

async fn single(store: &Store, board: &BoardId, players: &[&PlayerId]) -> Result<Answer> {
    let reply = store.query(&scripts::lookup(&keys::single(board), players.iter().copied())).await?;
    let looked = scripts::parse_lookup(reply)?;
    Ok((looked.card, ranked(looked.found)))
}

async fn sharded(store: &Store, board: &BoardId, shards: usize, players: &[&PlayerId]) -> Result<Answer> {
    let keys: Vec<String> = (0..shards).map(|i| keys::hash_shard(board, shards, i)).collect();
    let mut mine: Vec<Vec<usize>> = vec![Vec::new(); shards];
    for (i, p) in players.iter().enumerate() {
        mine[hash::shard_of(p, shards)].push(i);
    }
    // Step 1: each shard's size, and its own players' scores and counts above them there.
    let pipes: Vec<redis::Pipeline> = keys
        .iter()
        .zip(&mine)
        .map(|(key, own)| {
            let mut pipe = redis::pipe();
            if own.is_empty() {
                pipe.cmd("ZCARD").arg(key);
            } else {
                pipe.add_command(scripts::lookup(key, own.iter().map(|&i| players[i])));
            }
            pipe
        })
        .collect();
    let mut total = 0;
    let mut own_found: Vec<Option<(usize, u64, u64)>> = vec![None; players.len()];
    for ((shard, own), reply) in mine.iter().enumerate().zip(store.run_all(&pipes).await?) {
        let reply = reply.into_iter().next().unwrap_or(Value::Nil);
        if own.is_empty() {
            total += as_u64(&reply)?;
            continue;
        }
        let looked = scripts::parse_lookup(reply)?;
        total += looked.card;
        for (&i, f) in own.iter().zip(looked.found) {
            own_found[i] = f.map(|(score, above)| (shard, score, above));
        }
    }
    // Step 2: in every other shard, the members above each found score.
    let mut asked: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut pipes = Vec::new();
    for (shard, key) in keys.iter().enumerate() {
        let players_here: Vec<usize> =
            (0..players.len()).filter(|&i| own_found[i].is_some_and(|(own, _, _)| own != shard)).collect();
        if players_here.is_empty() {
            continue;
        }
        let scores = players_here.iter().filter_map(|&i| own_found[i].map(|(_, score, _)| score));
        let mut pipe = redis::pipe();
        pipe.add_command(scripts::count_above(key, scores));
        pipes.push(pipe);
        asked.push((shard, players_here));
    }
    let mut above: Vec<u64> = own_found.iter().map(|f| f.map_or(0, |(_, _, a)| a)).collect();
    for ((_, players_here), reply) in asked.iter().zip(store.run_all(&pipes).await?) {
        let counts = as_array(reply.into_iter().next().unwrap_or(Value::Nil))?;
        for (&i, count) in players_here.iter().zip(&counts) {
            above[i] += as_u64(count)?;
        }
    }
    let found = own_found.iter().zip(above).map(|(f, a)| f.map(|(_, score, _)| Found { score, rank: a + 1 })).collect();
    Ok((total, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PlayerId {
        PlayerId::new(s).expect("id")
    }

    #[test]
    fn list_ranks_share_places_on_ties_and_missing_keep_their_order() {
        let (ann, bob, cid, dee, eve) = (p("ann"), p("bob"), p("cid"), p("dee"), p("eve"));
        let found = vec![
            Some(Found { score: 5, rank: 9 }),
            None,
            Some(Found { score: 9, rank: 1 }),
            Some(Found { score: 5, rank: 9 }),
            None,
        ];
        let lookup = assemble(40, &[&cid, &eve, &ann, &bob, &dee], found);
        let listed: Vec<(&str, u64, u64)> =
            lookup.entries.iter().map(|l| (l.player.as_str(), l.rank, l.list_rank)).collect();
        assert_eq!(listed, [("ann", 1, 1), ("bob", 9, 2), ("cid", 9, 2)]);
        assert_eq!(lookup.missing, [eve, dee]);
        assert_eq!(lookup.total, 40);
    }
}
