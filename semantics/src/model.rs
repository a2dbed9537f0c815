//! The values the store reads and writes, and the ranking arithmetic every
//! layout and the oracle share: board order, ranks with ties, percentiles,
//! and which of a player's updates counts.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::hash::Hash;

use leaderboard_contract::{BoardId, Meta, PlayerId};
use serde::{Deserialize, Serialize};

use crate::rules::{Rules, Ties};
use crate::tally::Source;

/// An update of one player on one board. On `best` boards the player's score
/// becomes at least `score`; on `last` and `sum` boards ([`crate::tally`])
/// `score` replaces or adds to it, exactly once per record (`source`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScoreUpdate {
    /// The board.
    pub board: BoardId,
    /// The player.
    pub player: PlayerId,
    /// The candidate best score.
    pub score: u64,
    /// When the player reached it, in milliseconds since the Unix epoch (the
    /// event's `ts`, else its Kafka timestamp): breaks ties on `ties: earliest` boards.
    pub time_ms: u64,
    /// The event's metadata: the entry shows it while this update's score is the player's.
    pub meta: Option<Meta>,
    /// The record behind the update, on `last` and `sum` boards: applied once
    /// by it. `None` (a test's or a recovery's direct write): applied as given.
    pub source: Option<Source>,
}

/// One row of a list: ranks follow the contract (1 + players strictly above).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// 1 + the number of players with a strictly greater score.
    pub rank: u64,
    /// The player.
    pub player: PlayerId,
    /// The player's best score.
    pub score: u64,
    /// The metadata of the event that set the score, when it carried any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// Where one player stands on a board.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Standing {
    /// The player's best score.
    pub score: u64,
    /// 1 + the number of players with a strictly greater score.
    pub rank: u64,
    /// Players on the board.
    pub total: u64,
    /// Share of players with a strictly lower score, in percent.
    pub percentile: f64,
    /// The metadata of the event that set the score, when it carried any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

impl Standing {
    /// A standing from the players `ahead` of the player (a strictly better
    /// score; on `earliest` boards every player sorting before them) and
    /// those sharing their score (themselves included; 1 on `earliest` boards).
    pub fn ranked(score: u64, ahead: u64, equal: u64, total: u64, ties: Ties) -> Self {
        let equal = if ties == Ties::Earliest { 1 } else { equal };
        Self { score, rank: ahead + 1, total, percentile: percentile(total, ahead, equal), meta: None }
    }

    /// The same standing, showing `meta`.
    #[must_use]
    pub fn with_meta(self, meta: Option<Meta>) -> Self {
        Self { meta, ..self }
    }
}

/// Computes the contract's percentile: the share of players strictly below, in percent.
pub fn percentile(total: u64, strictly_above: u64, equal: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let below = total.saturating_sub(strictly_above).saturating_sub(equal);
    below as f64 * 100.0 / total as f64
}

/// A page of a board's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    /// Players on the board when the page was read.
    pub total: u64,
    /// The rows, ordered by score descending then player id ascending.
    pub entries: Vec<Entry>,
}

/// One shard of a board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardStats {
    /// Shard index (for `range`, 0 holds the lowest ranking keys: the worst scores,
    /// so the highest ones on `asc` boards).
    pub index: usize,
    /// The Redis key.
    pub key: String,
    /// Lowest score the shard accepts (`range` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_score: Option<u64>,
    /// Highest score the shard accepts, `None` when unbounded or not a `range` shard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_score: Option<u64>,
    /// Members in the shard.
    pub size: u64,
}

/// A board's layout and shard sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardStats {
    /// The board's rules.
    pub rules: Rules,
    /// `single`, `hash` or `range`.
    pub strategy: &'static str,
    /// The layout in configuration syntax, e.g. `hash:16`.
    pub layout: String,
    /// Players on the board.
    pub total: u64,
    /// The shards.
    pub shards: Vec<ShardStats>,
    /// `range` only: the worst rank error the precomputed sizes can cause, as
    /// measured over the last refresh interval (see the crate docs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank_error_bound: Option<u64>,
    /// `range` only: the layout generation (bumped by every rebalance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// `range` only: whether a rebalance is in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebalancing: Option<bool>,
    /// The layout the board is being migrated to, while a migration runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrating_to: Option<String>,
}

/// Ranks a run of entries that sit at consecutive global positions.
///
/// `first_position` is the 0-based position of the first entry and
/// `above_first` the number of players strictly above it. An entry whose score
/// differs from its predecessor's has everyone before it strictly above, so its
/// rank is its position + 1; equal scores share a rank, unless `ties` is
/// `earliest`, where every rank is the position + 1.
pub fn assign_ranks(rows: Vec<Row>, first_position: u64, above_first: u64, ties: Ties) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::with_capacity(rows.len());
    for (i, Row { player, score, meta, .. }) in rows.into_iter().enumerate() {
        let rank = match out.last() {
            _ if ties == Ties::Earliest => first_position + i as u64 + 1,
            None => above_first + 1,
            Some(prev) if prev.score == score => prev.rank,
            Some(_) => first_position + i as u64 + 1,
        };
        out.push(Entry { rank, player, score, meta });
    }
    out
}

/// One row of a list as a shard holds it: the ranking key (see
/// [`crate::rules`]) and, on `ties: earliest` boards, the time the player reached it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The player.
    pub player: PlayerId,
    /// The ranking key (the score on `desc` boards).
    pub score: u64,
    /// When the player reached it (`earliest` boards; 0 elsewhere, so it never decides).
    pub time_ms: u64,
    /// The entry's metadata, when it has any.
    pub meta: Option<Meta>,
}

impl Row {
    /// A row of a `shared` board.
    pub fn new(player: PlayerId, score: u64) -> Self {
        Self { player, score, time_ms: 0, meta: None }
    }

    /// Board order: see [`board_order`].
    pub fn order(a: &Self, b: &Self) -> std::cmp::Ordering {
        board_order(a.score, a.time_ms, &a.player, b.score, b.time_ms, &b.player)
    }
}

/// Board order (docs/contract.md#order-and-ties): ranking key descending (better first), then the
/// time the score was reached ascending (it is 0 on `shared` boards), then
/// player id ascending, byte-wise. The one comparator every list, merge and
/// the oracle use.
pub fn board_order(
    a_score: u64,
    a_time: u64,
    a_player: &PlayerId,
    b_score: u64,
    b_time: u64,
    b_player: &PlayerId,
) -> std::cmp::Ordering {
    b_score
        .cmp(&a_score)
        .then(a_time.cmp(&b_time))
        .then_with(|| a_player.as_str().as_bytes().cmp(b_player.as_str().as_bytes()))
}

/// Most players one lookup may ask for (docs/contract.md#pages-and-around: 1 to 100).
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
    /// Players on the board with their score, themselves included (1 on `earliest` boards, whose
    /// ranks are positions): with the total, their percentile ([`Listed::standing`]).
    pub tied: u64,
    /// Their place inside the list, with the board's tie rule.
    pub list_rank: u64,
    /// The metadata of the event that set their score, when it carried any.
    pub meta: Option<Meta>,
}

impl Listed {
    /// Their standing on a board of `total` players (the player route's answer).
    pub fn standing(&self, total: u64, ties: Ties) -> Standing {
        Standing::ranked(self.score, self.rank.saturating_sub(1), self.tied, total, ties).with_meta(self.meta.clone())
    }
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

/// A score reached at a time: what "best" compares ([`Rules::improves`]).
pub trait Scored {
    /// The score.
    fn score(&self) -> u64;
    /// When it was reached, in milliseconds since the Unix epoch.
    fn time_ms(&self) -> u64;
}

impl Scored for ScoreUpdate {
    fn score(&self) -> u64 {
        self.score
    }

    fn time_ms(&self) -> u64 {
        self.time_ms
    }
}

/// The best of `items` per key (`key_of`), each judged by its key's rules
/// (`rules_of`): a better ranking key, or on `earliest` boards an equal one
/// reached earlier; among equals, the first. The one rule ingest's batching
/// and every layout's write apply.
pub fn best_per_key<'a, K, T>(
    items: impl IntoIterator<Item = &'a T>,
    key_of: impl Fn(&'a T) -> K,
    rules_of: impl Fn(&K) -> Rules,
) -> HashMap<K, &'a T>
where
    K: Eq + Hash,
    T: Scored + 'a,
{
    let items = items.into_iter();
    let mut best: HashMap<K, &'a T> = HashMap::with_capacity(items.size_hint().0);
    for item in items {
        match best.entry(key_of(item)) {
            Slot::Occupied(mut held) => {
                let r = rules_of(held.key());
                let b = *held.get();
                if r.improves(r.key(item.score()), item.time_ms(), r.key(b.score()), b.time_ms()) {
                    held.insert(item);
                }
            }
            Slot::Vacant(slot) => {
                slot.insert(item);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PlayerId {
        PlayerId::new(s).expect("valid")
    }

    #[test]
    fn ties_share_a_rank() {
        let rows = vec![Row::new(p("a"), 9), Row::new(p("b"), 7), Row::new(p("c"), 7), Row::new(p("d"), 5)];
        let ranks: Vec<u64> = assign_ranks(rows, 0, 0, Ties::Shared).iter().map(|e| e.rank).collect();
        assert_eq!(ranks, [1, 2, 2, 4]);
    }

    #[test]
    fn a_page_inside_a_tie_group_keeps_the_group_rank() {
        // Positions 5.. where 3 players are strictly above the first row's score.
        let rows = vec![Row::new(p("x"), 4), Row::new(p("y"), 4), Row::new(p("z"), 2)];
        let ranks: Vec<u64> = assign_ranks(rows, 5, 3, Ties::Shared).iter().map(|e| e.rank).collect();
        assert_eq!(ranks, [4, 4, 8]);
    }

    #[test]
    fn percentile_counts_strictly_lower() {
        assert!((percentile(4, 1, 2) - 25.0).abs() < 1e-9);
        assert!((percentile(1, 0, 1)).abs() < 1e-9);
        assert!((percentile(0, 0, 0)).abs() < 1e-9);
    }
}
