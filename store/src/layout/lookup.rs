//! Standings of a list of players (friends, a clan) in one call.
//!
//! | layout | round trips | Redis work |
//! |---|---|---|
//! | `single` | 1 script | per player: one score, one count |
//! | `hash:S` | 2: the players' scores in their own shards, then one script per shard with its size and the counts ahead of (and, with `ties: shared`, equal to) each score, so rank, ties and total come from one moment of each shard | per player: one score and `S` counts (`2S` shared) |
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

use crate::connection::store::Store;
use crate::layout::record::RecordedLayout;
use crate::layout::router::Router;
use crate::layout::shards::{Answer, Found, single_cmd_pipes};
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
    // Step 1: the players' scores (and members, metadata) in their own shards.
    let asked: Vec<(&String, &Vec<usize>)> = keys.iter().zip(&mine).filter(|(_, own)| !own.is_empty()).collect();
    let pipes = single_cmd_pipes(asked.iter().map(|(key, own)| {
        let index = keys::index_for(key, ties);
        scripts::lookup(key, index.as_deref(), own.iter().map(|&i| players[i]))
    }));
    let mut found: Vec<Option<scripts::LookedUp>> = vec![None; players.len()];
    for ((_, own), reply) in asked.iter().zip(store.run_all(&pipes).await?) {
        let looked = scripts::parse_lookup(reply.into_iter().next().unwrap_or(Value::Nil))?;
        for (&i, f) in own.iter().zip(looked.found) {
            found[i] = f;
        }
    }
    crate::failpoint::hold_here("store::hash_lookup_between_round_trips");
    // Step 2: every shard's size and, around each found player's score, the members ahead and
    // tied, in one script per shard: rank, ties and total come from the same moment of each shard
    // (as a single player's standing does), never a size from before a count.
    let located: Vec<usize> = (0..players.len()).filter(|&i| found[i].is_some()).collect();
    let pipes = single_cmd_pipes(keys.iter().map(|key| {
        let anchors = located.iter().filter_map(|&i| {
            let f = found[i].as_ref()?;
            // Shared ties count better scores only: an empty member.
            Some((f.score, if ties == Ties::Earliest { f.member.as_slice() } else { &[][..] }))
        });
        scripts::ranks(key, anchors)
    }));
    let mut total = 0;
    let mut counts: Vec<(u64, u64)> = vec![(0, 0); players.len()];
    for reply in store.run_all(&pipes).await? {
        let (card, per_anchor) = scripts::parse_ranks(reply.into_iter().next().unwrap_or(Value::Nil))?;
        total += card;
        for (&i, (ahead, tied)) in located.iter().zip(per_anchor) {
            counts[i].0 += ahead;
            counts[i].1 += tied;
        }
    }
    let found = found
        .into_iter()
        .zip(counts)
        .map(|(f, (ahead, tied))| f.map(|f| Found::ranked(&f, ahead, if ties == Ties::Earliest { 1 } else { tied })))
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
