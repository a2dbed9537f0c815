//! An in-memory reference model of the contract's score and rank semantics,
//! under each board's rules ([`crate::rules`]).
//!
//! Tests and loadgen's verifier compare every layout against it. It is written
//! for obviousness, not speed: a map of best scores plus a sorted view rebuilt
//! lazily after writes. Its lists, ranks and percentiles work in scores and
//! times directly, not in the ranking keys Redis stores, so comparing checks
//! that conversion too.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use leaderboard_contract::{BoardId, Meta, PlayerId};

use crate::model::{Entry, Page, ScoreUpdate, Standing, percentile};
use crate::rules::{Order, Rules, Ties};
use crate::tally::{RecentIds, combine};

/// The reference model of every board.
#[derive(Debug, Default, Clone)]
pub struct Oracle {
    boards: HashMap<BoardId, OracleBoard>,
    rules: HashMap<BoardId, Rules>,
}

/// A player's best: the score, when they reached it, and the metadata of the event that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Best {
    score: u64,
    time_ms: u64,
    meta: Option<Meta>,
}

/// The reference model of one board.
#[derive(Debug, Default, Clone)]
pub struct OracleBoard {
    rules: Rules,
    best: HashMap<PlayerId, Best>,
    sorted: OnceLock<Vec<(PlayerId, Best)>>,
    /// `last` and `sum` boards: every record applied (or refused) once, by topic, partition and offset.
    seen: HashSet<(Arc<str>, i32, i64)>,
    /// `last` and `sum` boards: each player's remembered idempotency keys.
    ids: HashMap<PlayerId, RecentIds>,
}

/// What one update did to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (on `best` boards: considered; it may not have improved anything).
    Applied,
    /// Outside the board's bounds: a dead letter (`out_of_bounds`).
    OutOfBounds,
    /// Its record was applied before (a redelivery): skipped.
    Replayed,
    /// A re-sent `id` within the board's `dedup_window`: skipped.
    Duplicate,
    /// The sum would exceed 2^53 - 1: a dead letter (`out_of_bounds`).
    Overflow,
}

impl Oracle {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a board's rules (before its first update: order and ties never change afterwards).
    pub fn set_rules(&mut self, board: &BoardId, rules: Rules) {
        self.rules.insert(board.clone(), rules);
        if let Some(b) = self.boards.get_mut(board) {
            b.rules = rules;
            b.sorted = OnceLock::new();
        }
    }

    /// Applies an update under the board's rules and operator. Updates out of
    /// the board's bounds change nothing (ingest dead-letters them).
    pub fn apply(&mut self, update: &ScoreUpdate) {
        self.apply_counted(update);
    }

    /// [`Oracle::apply`], saying what the update did.
    pub fn apply_counted(&mut self, update: &ScoreUpdate) -> Outcome {
        let rules = self.rules.get(&update.board).copied().unwrap_or_default();
        if !rules.accepts(update.score) {
            return Outcome::OutOfBounds;
        }
        let board =
            self.boards.entry(update.board.clone()).or_insert_with(|| OracleBoard { rules, ..OracleBoard::default() });
        if rules.operator.exactly_once() {
            board.tally(update)
        } else {
            board.apply(&update.player, update.score, update.time_ms, update.meta.clone());
            Outcome::Applied
        }
    }

    /// One board, to change, if any update touched it.
    pub fn board_mut(&mut self, board: &BoardId) -> Option<&mut OracleBoard> {
        self.boards.get_mut(board)
    }

    /// One board's state, if it has any.
    pub fn board(&self, board: &BoardId) -> Option<&OracleBoard> {
        self.boards.get(board)
    }

    /// All boards.
    pub fn boards(&self) -> impl Iterator<Item = (&BoardId, &OracleBoard)> {
        self.boards.iter()
    }
}

impl OracleBoard {
    /// Applies best-score semantics to one player: a better score wins; on
    /// `earliest` boards an equal score reached earlier moves the time back.
    /// The entry's metadata is that of the update that won (an update that
    /// changes nothing never replaces it, so among equal scores the first
    /// applied keeps its metadata).
    pub fn apply(&mut self, player: &PlayerId, score: u64, time_ms: u64, meta: Option<Meta>) {
        let new = Best { score, time_ms, meta };
        let rules = self.rules;
        match self.best.get_mut(player) {
            Some(best) => {
                if rules.improves(rules.key(new.score), new.time_ms, rules.key(best.score), best.time_ms) {
                    *best = new;
                }
            }
            None => {
                self.best.insert(player.clone(), new);
            }
        }
        self.sorted = OnceLock::new();
    }

    /// Applies a `last` or `sum` update (docs/contract.md#write-operators):
    /// once per record, once per `id` within the window, refused when a sum
    /// overflows. The entry keeps the time it reached its score (an event
    /// that leaves the score as it was keeps the earlier time) and shows the
    /// `meta` of the latest event that carried one.
    fn tally(&mut self, update: &ScoreUpdate) -> Outcome {
        let window = i64::try_from(self.rules.dedup_window.as_millis()).unwrap_or(i64::MAX);
        if let Some(source) = &update.source {
            if !self.seen.insert((source.topic.clone(), source.partition, source.offset)) {
                return Outcome::Replayed;
            }
            if let Some(id) = source.id
                && self.ids.get(&update.player).is_some_and(|ids| ids.repeats(id, source.at_ms, window))
            {
                return Outcome::Duplicate;
            }
        }
        let old = self.best.get(&update.player);
        let Ok(score) = combine(self.rules.operator, old.map(|b| b.score), update.score) else {
            return Outcome::Overflow;
        };
        let time_ms = match old {
            Some(b) if b.score == score => b.time_ms,
            _ => update.time_ms,
        };
        let meta = update.meta.clone().or_else(|| old.and_then(|b| b.meta.clone()));
        if let Some(source) = &update.source
            && let Some(id) = source.id
        {
            self.ids.entry(update.player.clone()).or_default().remember(id, source.at_ms, window);
        }
        self.best.insert(update.player.clone(), Best { score, time_ms, meta });
        self.sorted = OnceLock::new();
        Outcome::Applied
    }

    /// Takes `player` off the board (an erasure, a ban); whether they were on it.
    pub fn remove(&mut self, player: &PlayerId) -> bool {
        let removed = self.best.remove(player).is_some();
        if removed {
            self.sorted = OnceLock::new();
        }
        removed
    }

    /// The board's rules.
    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// `Less` when score `a` is better than `b` (sorts first).
    fn cmp_scores(&self, a: u64, b: u64) -> Ordering {
        match self.rules.order {
            Order::Desc => b.cmp(&a),
            Order::Asc => a.cmp(&b),
        }
    }

    /// Board order: better score, then (on `earliest` boards) earlier time, then id.
    fn cmp(&self, a: (&PlayerId, &Best), b: (&PlayerId, &Best)) -> Ordering {
        let by_time = match self.rules.ties {
            Ties::Earliest => a.1.time_ms.cmp(&b.1.time_ms),
            Ties::Shared => Ordering::Equal,
        };
        self.cmp_scores(a.1.score, b.1.score)
            .then(by_time)
            .then_with(|| a.0.as_str().as_bytes().cmp(b.0.as_str().as_bytes()))
    }

    fn sorted(&self) -> &[(PlayerId, Best)] {
        self.sorted.get_or_init(|| {
            let mut v: Vec<(PlayerId, Best)> = self.best.iter().map(|(p, b)| (p.clone(), b.clone())).collect();
            v.sort_by(|a, b| self.cmp((&a.0, &a.1), (&b.0, &b.1)));
            v
        })
    }

    /// Players with a strictly better score than `score`.
    fn strictly_above(&self, score: u64) -> u64 {
        self.sorted().partition_point(|(_, b)| self.cmp_scores(b.score, score) == Ordering::Less) as u64
    }

    fn position(&self, player: &PlayerId) -> Option<usize> {
        let best = self.best.get(player)?;
        Some(self.sorted().partition_point(|(p, b)| self.cmp((p, b), (player, best)) == Ordering::Less))
    }

    /// Players on the board.
    pub fn total(&self) -> u64 {
        self.best.len() as u64
    }

    /// A player's best score.
    pub fn score(&self, player: &PlayerId) -> Option<u64> {
        self.best.get(player).map(|b| b.score)
    }

    /// The metadata a player's entry shows.
    pub fn meta(&self, player: &PlayerId) -> Option<&Meta> {
        self.best.get(player).and_then(|b| b.meta.as_ref())
    }

    /// Every player's best score.
    pub fn scores(&self) -> impl Iterator<Item = (&PlayerId, u64)> {
        self.best.iter().map(|(p, b)| (p, b.score))
    }

    /// A player's standing.
    pub fn standing(&self, player: &PlayerId) -> Option<Standing> {
        let score = self.score(player)?;
        let (ahead, equal) = self.ahead_and_tied(player, score)?;
        Some(Standing {
            score,
            rank: ahead + 1,
            total: self.total(),
            percentile: percentile(self.total(), ahead, equal),
            meta: self.meta(player).cloned(),
        })
    }

    /// The players ahead of `player` (of score `score`) and those sharing their place (themselves
    /// included; 1 on `earliest` boards).
    fn ahead_and_tied(&self, player: &PlayerId, score: u64) -> Option<(u64, u64)> {
        Some(match self.rules.ties {
            Ties::Earliest => (self.position(player)? as u64, 1),
            Ties::Shared => {
                let not_behind =
                    self.sorted().partition_point(|(_, b)| self.cmp_scores(b.score, score) != Ordering::Greater);
                let above = self.strictly_above(score);
                (above, not_behind as u64 - above)
            }
        })
    }

    /// The standings of `players` (repeats once), as the store's `Router::lookup`
    /// answers: found players in board order, each with its rank and its
    /// place in the list (on `shared` boards 1 + listed players with a
    /// strictly better score; on `earliest` boards the position in the list),
    /// and the missing ones in the order asked.
    pub fn lookup(&self, players: &[PlayerId]) -> crate::Lookup {
        let mut asked: Vec<&PlayerId> = Vec::new();
        for p in players {
            if !asked.contains(&p) {
                asked.push(p);
            }
        }
        let mut found: Vec<(&PlayerId, &Best)> = asked.iter().filter_map(|p| Some((*p, self.best.get(*p)?))).collect();
        found.sort_by(|a, b| self.cmp(*a, *b));
        let entries = found
            .iter()
            .enumerate()
            .filter_map(|(i, (p, b))| {
                let st = self.standing(p)?;
                let list_rank = match self.rules.ties {
                    Ties::Earliest => i as u64 + 1,
                    Ties::Shared => {
                        1 + found.iter().filter(|(_, o)| self.cmp_scores(o.score, b.score) == Ordering::Less).count()
                            as u64
                    }
                };
                let (_, tied) = self.ahead_and_tied(p, st.score)?;
                Some(crate::Listed {
                    player: (*p).clone(),
                    score: st.score,
                    rank: st.rank,
                    tied,
                    list_rank,
                    meta: st.meta,
                })
            })
            .collect();
        let missing = asked.iter().filter(|p| self.score(p).is_none()).map(|p| (*p).clone()).collect();
        crate::Lookup { total: self.total(), entries, missing }
    }

    /// Rows at positions `offset..offset + limit`.
    pub fn top(&self, offset: u64, limit: u64) -> Page {
        let sorted = self.sorted();
        let start = (offset as usize).min(sorted.len());
        let end = (offset.saturating_add(limit) as usize).min(sorted.len());
        Page { total: self.total(), entries: self.rank_rows(start, end) }
    }

    /// The player's row with up to `radius` rows above and below.
    pub fn around(&self, player: &PlayerId, radius: u64) -> Option<Vec<Entry>> {
        let pos = self.position(player)?;
        let start = pos.saturating_sub(radius as usize);
        let end = (pos + radius as usize + 1).min(self.sorted().len());
        Some(self.rank_rows(start, end))
    }

    /// Rows at positions `start..end`, ranked by the standings' rule.
    fn rank_rows(&self, start: usize, end: usize) -> Vec<Entry> {
        self.sorted()[start..end]
            .iter()
            .map(|(p, b)| Entry {
                rank: self.standing(p).map_or(0, |s| s.rank),
                player: p.clone(),
                score: b.score,
                meta: b.meta.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(player: &str, score: u64, time_ms: u64) -> ScoreUpdate {
        ScoreUpdate {
            board: BoardId::new("b").expect("valid"),
            player: PlayerId::new(player).expect("valid"),
            score,
            time_ms,
            meta: None,
            source: None,
        }
    }

    fn b() -> BoardId {
        BoardId::new("b").expect("valid")
    }

    fn p(s: &str) -> PlayerId {
        PlayerId::new(s).expect("valid")
    }

    fn with_meta(player: &str, score: u64, time_ms: u64, name: &str) -> ScoreUpdate {
        let meta = Meta::parse(&format!(r#"{{"name":"{name}"}}"#)).expect("meta");
        ScoreUpdate { meta: Some(meta), ..update(player, score, time_ms) }
    }

    fn name(o: &Oracle, player: &str) -> Option<String> {
        o.board(&b()).expect("exists").meta(&p(player)).and_then(|m| m.string_field("name"))
    }

    /// docs/contract.md#entry-metadata: the entry shows the metadata of the
    /// event that set its score, and only an improvement replaces it.
    #[test]
    fn metadata_follows_the_event_that_set_the_score() {
        let mut o = Oracle::new();
        o.apply(&with_meta("a", 5, 0, "first"));
        o.apply(&with_meta("a", 5, 0, "equal, later"));
        o.apply(&with_meta("a", 4, 0, "worse"));
        assert_eq!(name(&o, "a").as_deref(), Some("first"), "equal and worse scores keep it");
        o.apply(&update("a", 6, 0));
        assert_eq!(name(&o, "a"), None, "an improvement without metadata leaves none");
        o.apply(&with_meta("a", 7, 0, "best"));
        o.apply(&update("a", 7, 0));
        assert_eq!(name(&o, "a").as_deref(), Some("best"));
        let board = o.board(&b()).expect("exists");
        assert_eq!(board.top(0, 1).entries[0].meta, board.standing(&p("a")).expect("a").meta);

        let mut earliest = Oracle::new();
        earliest.set_rules(&b(), Rules { ties: Ties::Earliest, ..Rules::default() });
        earliest.apply(&with_meta("a", 5, 20, "reached at 20"));
        earliest.apply(&with_meta("a", 5, 10, "reached at 10"));
        earliest.apply(&with_meta("a", 5, 30, "reached at 30"));
        assert_eq!(name(&earliest, "a").as_deref(), Some("reached at 10"), "the event that reached it first");
    }

    #[test]
    fn contract_example_ranks_and_order() {
        let mut o = Oracle::new();
        for (p, s) in [("d", 5), ("c", 7), ("a", 9), ("b", 7), ("a", 3)] {
            o.apply(&update(p, s, 0));
        }
        let board = o.board(&b()).expect("exists");
        let page = board.top(0, 10);
        let rows: Vec<(&str, u64, u64)> = page.entries.iter().map(|e| (e.player.as_str(), e.score, e.rank)).collect();
        assert_eq!(rows, [("a", 9, 1), ("b", 7, 2), ("c", 7, 2), ("d", 5, 4)]);
        let c = board.standing(&p("c")).expect("present");
        assert_eq!((c.rank, c.total), (2, 4));
        assert!((c.percentile - 25.0).abs() < 1e-9);
        let around: Vec<String> =
            board.around(&p("c"), 1).expect("present").iter().map(|e| e.player.to_string()).collect();
        assert_eq!(around, ["b", "c", "d"]);
    }

    #[test]
    fn zero_scores_percentile() {
        let mut o = Oracle::new();
        o.apply(&update("a", 0, 0));
        o.apply(&update("b", 0, 0));
        let board = o.board(&b()).expect("exists");
        let s = board.standing(&p("a")).expect("present");
        assert_eq!(s.rank, 1);
        assert!(s.percentile.abs() < 1e-9);
    }

    #[test]
    fn asc_earliest_board_ranks_by_lowest_score_then_first_to_reach_it() {
        let mut o = Oracle::new();
        o.set_rules(
            &b(),
            Rules { order: Order::Asc, ties: Ties::Earliest, min_score: 1, max_score: 1000, ..Rules::default() },
        );
        for (player, score, time) in
            [("a", 50, 10), ("b", 30, 20), ("c", 30, 5), ("a", 30, 30), ("b", 30, 1), ("d", 0, 1), ("e", 9999, 1)]
        {
            o.apply(&update(player, score, time));
        }
        let board = o.board(&b()).expect("exists");
        let top = board.top(0, 10);
        let rows: Vec<(&str, u64, u64)> = top.entries.iter().map(|e| (e.player.as_str(), e.score, e.rank)).collect();
        // b reached 30 at t=1 (a replayed earlier event), c at 5, a at 30; d and e were out of bounds.
        assert_eq!(rows, [("b", 30, 1), ("c", 30, 2), ("a", 30, 3)]);
        let a = board.standing(&p("a")).expect("present");
        assert_eq!((a.rank, a.total), (3, 3));
        assert!(a.percentile.abs() < 1e-9, "nobody is behind a");
        let lookup = board.lookup(&[p("a"), p("c")]);
        let listed: Vec<(&str, u64)> = lookup.entries.iter().map(|l| (l.player.as_str(), l.list_rank)).collect();
        assert_eq!(listed, [("c", 1), ("a", 2)]);
    }
}
