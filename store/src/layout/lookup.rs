//! Standings of a list of players (friends, a clan) in one call.
//!
//! | layout | round trips | Redis work |
//! |---|---|---|
//! | `single` | 1 script | per player: one score, one count |
//! | `hash:S` | 2, one command per shard each: the players' scores and counts in their own shards, then counts above those scores (and, with `ties: shared`, equal to them) in every other shard | per player: one score and `S` counts (`2S` shared) |
//! | `range` | 1 script per shard, all in parallel, with the sizes that rank needs | per player: `S` score probes, one count |
//!
//! Ranks follow the board's rule (equal scores share a rank); so do list
//! ranks, the place inside the list. The api takes at most [`MAX_LOOKUP`]
//! players per call, which bounds the work above.

use std::collections::HashSet;

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::model::board_order;
use leaderboard_semantics::rules::Ties;
use leaderboard_semantics::{Listed, Lookup};
use redis::Value;

use crate::Result;
use crate::connection::reply::{as_array, as_u64};
use crate::connection::store::Store;
use crate::layout::record::RecordedLayout;
use crate::layout::router::Router;
use crate::layout::shards::{Answer, Found};
use crate::layout::{hash, keys, scripts};

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
        let (layout, rules) = self.read_layout(board).await?;
        let ties = rules.ties;
        let Answer { total, found } = match layout {
            RecordedLayout::Single => single(store, board, &unique, ties).await?,
            RecordedLayout::Hash { shards } => sharded(store, board, shards, &unique, ties).await?,
            RecordedLayout::Range => self.range_boards().lookup(store, board, &unique, ties).await?,
        };
        let mut answer = assemble(total, &unique, found, ties);
        for e in &mut answer.entries {
            e.score = rules.score(e.score);
        }
        Ok(answer)
    }
}

/// Orders the found players, gives list ranks, and lists the missing ones.
fn assemble(total: u64, players: &[&PlayerId], found: Vec<Option<Found>>, ties: Ties) -> Lookup {
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for (player, found) in players.iter().zip(found) {
        match found {
            Some(f) => rows.push(((*player).clone(), f)),
            None => missing.push((*player).clone()),
        }
    }
    rows.sort_by(|(a, fa), (b, fb)| board_order(fa.score, fa.time_ms, a, fb.score, fb.time_ms, b));
    let mut entries: Vec<Listed> = Vec::with_capacity(rows.len());
    for (i, (player, f)) in rows.into_iter().enumerate() {
        // Equal scores share a place, as they share a rank on the board (not on `earliest` boards).
        let list_rank = match entries.last() {
            Some(prev) if ties == Ties::Shared && prev.score == f.score => prev.list_rank,
            _ => i as u64 + 1,
        };
        entries.push(Listed { player, score: f.score, rank: f.rank, tied: f.tied, list_rank, meta: f.meta });
    }
    Lookup { total, entries, missing }
}

async fn single(store: &Store, board: &BoardId, players: &[&PlayerId], ties: Ties) -> Result<Answer> {
    let key = keys::single(board);
    let index = keys::index_for(&key, ties);
    let reply = store.query(&scripts::lookup(&key, index.as_deref(), players.iter().copied())).await?;
    let looked = scripts::parse_lookup(reply)?;
    Ok(Answer { total: looked.card, found: looked.found.into_iter().map(|f| f.map(|f| Found::new(&f, 0))).collect() })
}

async fn sharded(store: &Store, board: &BoardId, shards: usize, players: &[&PlayerId], ties: Ties) -> Result<Answer> {
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
                let index = keys::index_for(key, ties);
                pipe.add_command(scripts::lookup(key, index.as_deref(), own.iter().map(|&i| players[i])));
            }
            pipe
        })
        .collect();
    let mut total = 0;
    let mut own_found: Vec<Option<(usize, scripts::LookedUp)>> = vec![None; players.len()];
    for ((shard, own), reply) in mine.iter().enumerate().zip(store.run_all(&pipes).await?) {
        let reply = reply.into_iter().next().unwrap_or(Value::Nil);
        if own.is_empty() {
            total += as_u64(&reply)?;
            continue;
        }
        let looked = scripts::parse_lookup(reply)?;
        total += looked.card;
        for (&i, f) in own.iter().zip(looked.found) {
            own_found[i] = f.map(|f| (shard, f));
        }
    }
    // Step 2: in every other shard, the members ahead of each found player.
    let mut asked: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut pipes = Vec::new();
    for (shard, key) in keys.iter().enumerate() {
        let players_here: Vec<usize> =
            (0..players.len()).filter(|&i| own_found[i].as_ref().is_some_and(|(own, _)| *own != shard)).collect();
        if players_here.is_empty() {
            continue;
        }
        let anchors = players_here.iter().filter_map(|&i| {
            let (_, f) = own_found[i].as_ref()?;
            // Shared ties count better scores only: an empty member.
            Some((f.score, if ties == Ties::Earliest { f.member.as_slice() } else { &[][..] }))
        });
        let mut pipe = redis::pipe();
        pipe.add_command(scripts::before(key, anchors));
        if ties == Ties::Shared {
            let scores = players_here.iter().filter_map(|&i| own_found[i].as_ref().map(|(_, f)| f.score));
            pipe.add_command(scripts::tied(key, scores));
        }
        pipes.push(pipe);
        asked.push((shard, players_here));
    }
    let mut ahead: Vec<u64> = vec![0; players.len()];
    let mut tied: Vec<u64> = vec![0; players.len()];
    for ((_, players_here), reply) in asked.iter().zip(store.run_all(&pipes).await?) {
        let mut replies = reply.into_iter();
        let counts = as_array(replies.next().unwrap_or(Value::Nil))?;
        for (&i, count) in players_here.iter().zip(&counts) {
            ahead[i] += as_u64(count)?;
        }
        if let Some(equal) = replies.next() {
            for (&i, count) in players_here.iter().zip(&as_array(equal)?) {
                tied[i] += as_u64(count)?;
            }
        }
    }
    let found = own_found
        .into_iter()
        .zip(ahead.into_iter().zip(tied))
        .map(|(f, (a, t))| {
            f.map(|(_, f)| {
                let found = Found::new(&f, a);
                Found { tied: found.tied + t, ..found }
            })
        })
        .collect();
    Ok(Answer { total, found })
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
            Some(Found { score: 5, rank: 9, tied: 2, time_ms: 0, meta: None }),
            None,
            Some(Found { score: 9, rank: 1, tied: 1, time_ms: 0, meta: None }),
            Some(Found { score: 5, rank: 9, tied: 2, time_ms: 0, meta: None }),
            None,
        ];
        let lookup = assemble(40, &[&cid, &eve, &ann, &bob, &dee], found.clone(), Ties::Shared);
        let listed: Vec<(&str, u64, u64)> =
            lookup.entries.iter().map(|l| (l.player.as_str(), l.rank, l.list_rank)).collect();
        assert_eq!(listed, [("ann", 1, 1), ("bob", 9, 2), ("cid", 9, 2)]);
        assert_eq!(lookup.missing, [eve.clone(), dee.clone()]);
        assert_eq!(lookup.total, 40);
        // On an `earliest` board the list follows the times, and places are positions.
        let timed: Vec<Option<Found>> =
            found.into_iter().zip([30, 0, 1, 20, 0]).map(|(f, time_ms)| f.map(|f| Found { time_ms, ..f })).collect();
        let lookup = assemble(40, &[&cid, &eve, &ann, &bob, &dee], timed, Ties::Earliest);
        let listed: Vec<(&str, u64)> = lookup.entries.iter().map(|l| (l.player.as_str(), l.list_rank)).collect();
        assert_eq!(listed, [("ann", 1), ("bob", 2), ("cid", 3)]);
    }
}
