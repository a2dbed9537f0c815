//! An in-memory reference model of the contract's score and rank semantics.
//!
//! Tests and loadgen's verifier compare every layout against it. It is written
//! for obviousness, not speed: a map of best scores plus a sorted view rebuilt
//! lazily after writes.

use std::collections::HashMap;
use std::sync::OnceLock;

use leaderboard_contract::{BoardId, PlayerId};

use crate::model::{Entry, Page, ScoreUpdate, Standing, assign_ranks, percentile};

/// The reference model of every board.
#[derive(Debug, Default, Clone)]
pub struct Oracle {
    boards: HashMap<BoardId, OracleBoard>,
}

/// The reference model of one board.
#[derive(Debug, Default, Clone)]
pub struct OracleBoard {
    best: HashMap<PlayerId, u64>,
    sorted: OnceLock<Vec<(u64, PlayerId)>>,
}

impl Oracle {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies best-score semantics: the player's score becomes `max(old, new)`.
    pub fn apply(&mut self, update: &ScoreUpdate) {
        self.boards.entry(update.board.clone()).or_default().apply(&update.player, update.score);
    }

    /// One board, if any update touched it.
    pub fn board(&self, board: &BoardId) -> Option<&OracleBoard> {
        self.boards.get(board)
    }

    /// All boards.
    pub fn boards(&self) -> impl Iterator<Item = (&BoardId, &OracleBoard)> {
        self.boards.iter()
    }
}

impl OracleBoard {
    /// Applies best-score semantics to one player.
    pub fn apply(&mut self, player: &PlayerId, score: u64) {
        let best = self.best.entry(player.clone()).or_insert(score);
        if score > *best {
            *best = score;
        }
        self.sorted = OnceLock::new();
    }

    fn sorted(&self) -> &[(u64, PlayerId)] {
        self.sorted.get_or_init(|| {
            let mut v: Vec<(u64, PlayerId)> = self.best.iter().map(|(p, &s)| (s, p.clone())).collect();
            v.sort_by(|a, b| crate::model::board_order(a.0, &a.1, b.0, &b.1));
            v
        })
    }

    fn strictly_above(&self, score: u64) -> u64 {
        self.sorted().partition_point(|(s, _)| *s > score) as u64
    }

    fn position(&self, player: &PlayerId, score: u64) -> usize {
        self.sorted()
            .partition_point(|(s, p)| *s > score || (*s == score && p.as_str().as_bytes() < player.as_str().as_bytes()))
    }

    /// Players on the board.
    pub fn total(&self) -> u64 {
        self.best.len() as u64
    }

    /// A player's best score.
    pub fn score(&self, player: &PlayerId) -> Option<u64> {
        self.best.get(player).copied()
    }

    /// Every player's best score.
    pub fn scores(&self) -> impl Iterator<Item = (&PlayerId, u64)> {
        self.best.iter().map(|(p, &s)| (p, s))
    }

    /// A player's standing.
    pub fn standing(&self, player: &PlayerId) -> Option<Standing> {
        let score = self.score(player)?;
        let above = self.strictly_above(score);
        let equal = self.strictly_above(score.saturating_sub(1)) - above;
        let equal = if score == 0 { self.total() - above } else { equal };
        Some(Standing {
            score,
            rank: above + 1,
            total: self.total(),
            percentile: percentile(self.total(), above, equal),
        })
    }

    /// The standings of `players` (repeats once), as [`crate::Router::lookup`]
    /// answers: found players in board order, each with its rank and its
    /// place in the list (1 + listed players with a strictly greater score),
    /// and the missing ones in the order asked.
    pub fn lookup(&self, players: &[PlayerId]) -> crate::Lookup {
        let mut asked: Vec<&PlayerId> = Vec::new();
        for p in players {
            if !asked.contains(&p) {
                asked.push(p);
            }
        }
        let scores: Vec<u64> = asked.iter().filter_map(|p| self.score(p)).collect();
        let mut entries: Vec<crate::Listed> = asked
            .iter()
            .filter_map(|p| {
                let st = self.standing(p)?;
                let list_rank = 1 + scores.iter().filter(|&&s| s > st.score).count() as u64;
                Some(crate::Listed { player: (*p).clone(), score: st.score, rank: st.rank, list_rank })
            })
            .collect();
        entries.sort_by(|a, b| crate::model::board_order(a.score, &a.player, b.score, &b.player));
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
        let score = self.score(player)?;
        let pos = self.position(player, score);
        let start = pos.saturating_sub(radius as usize);
        let end = (pos + radius as usize + 1).min(self.sorted().len());
        Some(self.rank_rows(start, end))
    }

    fn rank_rows(&self, start: usize, end: usize) -> Vec<Entry> {
        let rows: Vec<(PlayerId, u64)> = self.sorted()[start..end].iter().map(|(s, p)| (p.clone(), *s)).collect();
        let above = rows.first().map_or(0, |(_, s)| self.strictly_above(*s));
        assign_ranks(rows, start as u64, above)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(player: &str, score: u64) -> ScoreUpdate {
        ScoreUpdate { board: BoardId::new("b").expect("valid"), player: PlayerId::new(player).expect("valid"), score }
    }

    #[test]
    fn contract_example_ranks_and_order() {
        let mut o = Oracle::new();
        for (p, s) in [("d", 5), ("c", 7), ("a", 9), ("b", 7), ("a", 3)] {
            o.apply(&update(p, s));
        }
        let board = o.board(&BoardId::new("b").expect("valid")).expect("exists");
        let page = board.top(0, 10);
        let rows: Vec<(&str, u64, u64)> = page.entries.iter().map(|e| (e.player.as_str(), e.score, e.rank)).collect();
        assert_eq!(rows, [("a", 9, 1), ("b", 7, 2), ("c", 7, 2), ("d", 5, 4)]);
        let c = board.standing(&PlayerId::new("c").expect("valid")).expect("present");
        assert_eq!((c.rank, c.total), (2, 4));
        assert!((c.percentile - 25.0).abs() < 1e-9);
        let around: Vec<String> = board
            .around(&PlayerId::new("c").expect("valid"), 1)
            .expect("present")
            .iter()
            .map(|e| e.player.to_string())
            .collect();
        assert_eq!(around, ["b", "c", "d"]);
    }

    #[test]
    fn zero_scores_percentile() {
        let mut o = Oracle::new();
        o.apply(&update("a", 0));
        o.apply(&update("b", 0));
        let board = o.board(&BoardId::new("b").expect("valid")).expect("exists");
        let s = board.standing(&PlayerId::new("a").expect("valid")).expect("present");
        assert_eq!(s.rank, 1);
        assert!(s.percentile.abs() < 1e-9);
    }
}
