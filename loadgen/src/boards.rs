//! The boards the simulated players play on, and which player plays where.
//!
//! The `players` ids are spread over `K` boards: player `i` plays on board
//! `i mod K`, so every board gets the same share of players and of the most
//! active ones (activity is Zipf over player indexes). One board is called
//! `<board>`; several are `<board>-1` ... `<board>-K`.

use anyhow::Context as _;
use leaderboard_contract::BoardId;

/// Most boards one run drives: each needs its own oracle, cache entry and top-100 check.
pub const MAX_BOARDS: usize = 1000;

/// The boards of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardSet {
    ids: Vec<BoardId>,
}

impl BoardSet {
    /// `count` boards named after `name`, for `players` players.
    ///
    /// # Errors
    /// When `count` is 0 or above [`MAX_BOARDS`], when there are fewer players
    /// than boards (a board without players would verify nothing), or when a
    /// name is not a valid board id.
    pub fn new(name: &str, count: usize, players: usize) -> anyhow::Result<Self> {
        anyhow::ensure!((1..=MAX_BOARDS).contains(&count), "--boards must be within 1..={MAX_BOARDS}, got {count}");
        anyhow::ensure!(players >= count, "{players} players cannot fill {count} boards");
        let ids = if count == 1 {
            vec![BoardId::new(name.to_string()).context("--board")?]
        } else {
            (1..=count)
                .map(|k| {
                    BoardId::new(format!("{name}-{k}"))
                        .with_context(|| format!("--board {name:?} with --boards {count}"))
                })
                .collect::<anyhow::Result<_>>()?
        };
        Ok(Self { ids })
    }

    /// Number of boards.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no boards (never: construction requires one).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The boards, in order.
    pub fn ids(&self) -> &[BoardId] {
        &self.ids
    }

    /// The position of player `index`'s board.
    pub fn position_of(&self, index: usize) -> usize {
        index % self.ids.len()
    }

    /// The board player `index` plays on.
    pub fn of(&self, index: usize) -> &BoardId {
        &self.ids[self.position_of(index)]
    }

    /// The indexes of the players on the board at `position`, out of `players`.
    pub fn players_on(&self, position: usize, players: usize) -> impl Iterator<Item = usize> + use<> {
        (position..players).step_by(self.ids.len())
    }
}

/// `global`, or `lt-1 ... lt-3 (3 boards)`.
impl std::fmt::Display for BoardSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ids.as_slice() {
            [one] => write!(f, "{one}"),
            [first, .., last] => write!(f, "{first} ... {last} ({} boards)", self.ids.len()),
            [] => f.write_str("no board"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_board_keeps_its_name_and_several_are_numbered() {
        let one = BoardSet::new("global", 1, 10).expect("one");
        assert_eq!(one.ids().iter().map(BoardId::as_str).collect::<Vec<_>>(), ["global"]);
        let three = BoardSet::new("lt", 3, 10).expect("three");
        assert_eq!(three.ids().iter().map(BoardId::as_str).collect::<Vec<_>>(), ["lt-1", "lt-2", "lt-3"]);
        assert_eq!((one.to_string(), three.to_string()), ("global".into(), "lt-1 ... lt-3 (3 boards)".into()));
    }

    #[test]
    fn every_player_plays_on_exactly_one_board_and_boards_are_balanced() {
        let boards = BoardSet::new("b", 3, 10).expect("boards");
        let mut seen: Vec<usize> = Vec::new();
        for k in 0..boards.len() {
            let on: Vec<usize> = boards.players_on(k, 10).collect();
            assert!(on.iter().all(|&i| boards.position_of(i) == k));
            seen.extend(on);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let sizes: Vec<usize> = (0..3).map(|k| boards.players_on(k, 10).count()).collect();
        assert_eq!(sizes, [4, 3, 3]);
        assert_eq!(boards.of(4).as_str(), "b-2");
    }

    #[test]
    fn impossible_sets_are_refused_with_the_reason() {
        let err = |r: anyhow::Result<BoardSet>| format!("{:#}", r.expect_err("refused"));
        assert!(err(BoardSet::new("b", 0, 10)).contains("--boards"));
        assert!(err(BoardSet::new("b", MAX_BOARDS + 1, usize::MAX)).contains("--boards"));
        assert!(err(BoardSet::new("b", 5, 4)).contains("cannot fill"));
        assert!(err(BoardSet::new("bad name", 1, 4)).contains("--board"));
        assert!(err(BoardSet::new(&"x".repeat(64), 2, 4)).contains("--boards 2"));
    }
}
