//! The simulated players: who plays, what they score, and the best scores that result.
//!
//! - Player `i` is `p-<i, zero-padded to 8 digits>`, so id order is index order.
//! - Who plays next follows a Zipf law over player indexes (exponent
//!   configurable): a few players play a lot, most rarely.
//! - A player's first best score comes from [`Population::initial_score`], a
//!   deterministic heavy-tailed function of the seed and index, so seeding
//!   Redis and the oracle agree without storing anything.
//! - Each game either beats the personal best (probability `improve_share`,
//!   by a small gain) or lands below it. Bests only go up.
//!
//! The population *is* the oracle: `best[i]` is the player's best score, kept
//! up to date as events are generated.
//!
//! Operators ([`Population::with_operator`], docs/contract.md#write-operators):
//! on `sum` boards each game is an increment of 1 to 250 and `best[i]` the
//! player's total; on `last` boards a game lands anywhere from half the
//! player's score to 250 above it, and `best[i]` is the latest. Every such
//! event is applied once, so the oracle counts each game once; it also counts
//! each player's applied games, to tell which of their ids ingest still
//! remembers ([`Population::remembers`]).
//!
//! Board rules: the population works in ranking keys (higher is better);
//! [`Scoring`] turns a key into the score an event carries (on an `asc` board
//! a lap time, lower is better). On `earliest` boards it also keeps when each
//! player reached their best (the `ts` of that event; 0 for seeded scores).
//!
//! Erasures ([`crate::marks`]): the events of the players to erase are kept
//! ([`Population::watch`]) with the Kafka timestamp the broker acknowledged,
//! so that after the run [`Population::erase`] can keep only the ones stamped
//! at or after the erasure.

use std::collections::HashMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// Formats the id of player `index`.
pub fn player_id(index: usize) -> String {
    format!("p-{index:08}")
}

/// The validated id of player `index`.
///
/// # Panics
/// Never: `p-` followed by digits is always a valid player id.
pub fn player(index: usize) -> leaderboard_contract::PlayerId {
    leaderboard_contract::PlayerId::new(player_id(index)).expect("p-<digits> is a valid player id")
}

/// Parses an id produced by [`player_id`].
pub fn player_index(id: &str) -> Option<usize> {
    id.strip_prefix("p-").filter(|d| d.len() >= 8).and_then(|d| d.parse().ok())
}

/// How a run's ranking keys become event scores under the boards' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scoring {
    /// The boards' order.
    pub order: leaderboard_semantics::Order,
    /// The boards' operator: on `sum` boards the freshness probe's markers are increments of 1.
    pub operator: leaderboard_semantics::Operator,
}

impl Scoring {
    /// On `asc` boards an event's score is this minus the player's key: lap
    /// times far above any key a run reaches, and lower for better players.
    pub const ASC_BASE: u64 = 1_000_000_000_000;

    /// The score an event carries for ranking key `key`.
    pub fn score(self, key: u64) -> u64 {
        match self.order {
            leaderboard_semantics::Order::Desc => key,
            leaderboard_semantics::Order::Asc => Self::ASC_BASE.saturating_sub(key),
        }
    }

    /// The ranking key of a score (the inverse of [`Scoring::score`]).
    pub fn key(self, score: u64) -> u64 {
        self.score(score)
    }
}

/// The players and their best scores.
#[derive(Debug)]
pub struct Population {
    seed: u64,
    best: Vec<u64>,
    /// `earliest` boards: when each player reached their best.
    reached: Option<Vec<u64>>,
    zipf: Zipf<f64>,
    improve_share: f64,
    rng: SmallRng,
    /// Boards with a reset: each player's best per season.
    seasons: Option<crate::seasons::SeasonOracle>,
    /// Watched players' events, in the order they were sent.
    logs: HashMap<usize, Vec<Played>>,
    /// How games combine.
    operator: leaderboard_semantics::Operator,
    /// `last` and `sum` runs: each player's games applied so far.
    applied: Option<Vec<u32>>,
}

/// One event of a watched player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Played {
    /// Its ranking key.
    pub key: u64,
    /// Its `ts` (the event's own time, by the run's clock).
    pub ts_ms: u64,
    /// Its Kafka timestamp: as set on the record, then as the broker acknowledged it.
    pub kafka_ms: i64,
    /// Whether the broker acknowledged it.
    pub delivered: bool,
}

/// One generated game result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Game {
    /// The player's index.
    pub player: usize,
    /// The game's score (on `sum` boards, the increment).
    pub score: u64,
    /// Whether it changed the player's score (beat their best, on `best` boards).
    pub improved: bool,
}

impl Population {
    /// `players` players, seeded with their initial scores.
    ///
    /// # Errors
    /// When `zipf_exponent` is not positive or `players` is 0.
    pub fn new(seed: u64, players: usize, zipf_exponent: f64, improve_share: f64) -> anyhow::Result<Self> {
        Self::with_times(seed, players, zipf_exponent, improve_share, false)
    }

    /// Like [`Population::new`]; with `times`, it also keeps when each player
    /// reached their best (8 bytes per player), for `earliest` boards.
    ///
    /// # Errors
    /// As [`Population::new`].
    pub fn with_times(
        seed: u64,
        players: usize,
        zipf_exponent: f64,
        improve_share: f64,
        times: bool,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(players > 0, "at least one player");
        anyhow::ensure!((0.0..=1.0).contains(&improve_share), "improve share must be within 0..=1");
        let zipf = Zipf::new(players as f64, zipf_exponent).map_err(|e| anyhow::anyhow!("zipf exponent: {e}"))?;
        let best = (0..players).map(|i| Self::initial_score(seed, i)).collect();
        let reached = times.then(|| vec![0; players]);
        let rng = SmallRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
        Ok(Self {
            seed,
            best,
            reached,
            zipf,
            improve_share,
            rng,
            seasons: None,
            logs: HashMap::new(),
            operator: leaderboard_semantics::Operator::Best,
            applied: None,
        })
    }

    /// Games combine by `operator` ([`crate::population`]); `last` and `sum`
    /// also count each player's games (4 bytes per player).
    #[must_use]
    pub fn with_operator(mut self, operator: leaderboard_semantics::Operator) -> Self {
        self.operator = operator;
        self.applied = operator.exactly_once().then(|| vec![0; self.best.len()]);
        self
    }

    /// How games combine.
    pub fn operator(&self) -> leaderboard_semantics::Operator {
        self.operator
    }

    /// `last` and `sum` runs: the games of `player` applied so far.
    pub fn applied(&self, player: usize) -> u32 {
        self.applied.as_ref().map_or(0, |a| a[player])
    }

    /// Whether ingest still remembers the `id` of the game of `player` after
    /// which [`Population::applied`] read `applied_at`: it keeps each
    /// player's newest [`IDS_PER_PLAYER`](leaderboard_semantics::tally::IDS_PER_PLAYER)
    /// (every game carries an id, and the run is far shorter than the window),
    /// so re-sending that event is a duplicate ingest skips.
    pub fn remembers(&self, player: usize, applied_at: u32) -> bool {
        let newer = self.applied(player).saturating_sub(applied_at) as usize;
        newer < leaderboard_semantics::tally::IDS_PER_PLAYER
    }

    /// Also keeps each player's best per season of `reset` ([`crate::seasons`]).
    #[must_use]
    pub fn with_seasons(mut self, reset: leaderboard_semantics::season::Reset) -> Self {
        self.seasons = Some(crate::seasons::SeasonOracle::new(reset, self.best.len(), self.reached.is_some()));
        self
    }

    /// The seasons' oracle, on runs with a reset.
    pub fn seasons(&self) -> Option<&crate::seasons::SeasonOracle> {
        self.seasons.as_ref()
    }

    /// Records that `game` was sent stamped `ts_ms` (its Kafka timestamp
    /// `kafka_ms`): when an improving game reached its best, and its season's
    /// best. Returns where a watched player's event is kept, for
    /// [`Population::delivered`].
    ///
    /// # Errors
    /// As [`crate::seasons::SeasonOracle::record`].
    pub fn record_game(&mut self, game: Game, ts_ms: u64, kafka_ms: i64) -> anyhow::Result<Option<usize>> {
        if game.improved {
            self.record_reached(game.player, ts_ms);
        }
        if let Some(seasons) = &mut self.seasons {
            seasons.record(game.player, game.score, ts_ms)?;
        }
        Ok(self.logs.get_mut(&game.player).map(|log| {
            log.push(Played { key: game.score, ts_ms, kafka_ms, delivered: false });
            log.len() - 1
        }))
    }

    /// Keeps every event of `players` from now on (for erasures).
    pub fn watch(&mut self, players: impl IntoIterator<Item = usize>) {
        for p in players {
            self.logs.entry(p).or_default();
        }
    }

    /// The broker acknowledged event `slot` of `player` ([`Population::record_game`]),
    /// with this timestamp when it says (`LogAppendTime` topics stamp their own).
    pub fn delivered(&mut self, player: usize, slot: usize, kafka_ms: Option<i64>) {
        if let Some(e) = self.logs.get_mut(&player).and_then(|log| log.get_mut(slot)) {
            e.delivered = true;
            e.kafka_ms = kafka_ms.unwrap_or(e.kafka_ms);
        }
    }

    /// The events of a watched player, in the order they were sent.
    pub fn played(&self, player: usize) -> &[Played] {
        self.logs.get(&player).map_or(&[], Vec::as_slice)
    }

    /// The oracle after `player` was erased at `at_ms`: only their delivered
    /// events stamped (Kafka timestamp) at or after it count, on the all-time
    /// board and in every season (a new start); none: the player is absent.
    ///
    /// # Errors
    /// When the player's events were not kept ([`Population::watch`]).
    pub fn erase(&mut self, player: usize, at_ms: i64) -> anyhow::Result<()> {
        let log = self.logs.get(&player).ok_or_else(|| anyhow::anyhow!("player {player}'s events were not kept"))?;
        let kept: Vec<(u64, u64)> =
            log.iter().filter(|e| e.delivered && e.kafka_ms >= at_ms).map(|e| (e.key, e.ts_ms)).collect();
        let (best, reached) = match self.operator {
            leaderboard_semantics::Operator::Best => {
                // The best, reached by the earliest event that carries it.
                let best = kept.iter().map(|&(key, _)| key).max().unwrap_or(0);
                (best, kept.iter().filter(|&&(key, _)| key == best).map(|&(_, ts)| ts).min().unwrap_or(0))
            }
            // A new start: the kept events applied in order, each change dated by its event.
            operator => kept.iter().fold((0, 0), |(value, at), &(key, ts)| {
                let next = leaderboard_semantics::tally::combine(operator, Some(value), key).unwrap_or(value);
                if next == value { (value, at) } else { (next, ts) }
            }),
        };
        self.best[player] = best;
        if let Some(reached_at) = &mut self.reached {
            reached_at[player] = reached;
        }
        if let Some(seasons) = &mut self.seasons {
            seasons.replace(player, &kept)?;
        }
        Ok(())
    }

    /// The oracle after `player` was banned from their board: absent from it and its seasons.
    pub fn remove(&mut self, player: usize) {
        self.best[player] = 0;
        if let Some(reached) = &mut self.reached {
            reached[player] = 0;
        }
        if let Some(seasons) = &mut self.seasons {
            seasons.remove(player);
        }
    }

    /// The deterministic first best score of player `index`: heavy-tailed, mostly
    /// a few thousand, rarely above a million.
    pub fn initial_score(seed: u64, index: usize) -> u64 {
        let mut x = seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // splitmix64: a fixed, well-mixed function of (seed, index).
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        let u = (x >> 11) as f64 / (1u64 << 53) as f64; // uniform [0, 1)
        // Pareto-like tail: 1000 / (1 - u)^0.7, capped.
        (1000.0 / (1.0 - u).max(1e-9).powf(0.7)).min(5.0e7) as u64
    }

    /// Number of players.
    pub fn len(&self) -> usize {
        self.best.len()
    }

    /// Whether there are no players (never: construction requires one).
    pub fn is_empty(&self) -> bool {
        self.best.is_empty()
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Best scores by player index: the oracle; 0: the player is not on the board.
    pub fn best(&self) -> &[u64] {
        &self.best
    }

    /// When each player reached their best (`earliest` runs only).
    pub fn reached(&self) -> Option<&[u64]> {
        self.reached.as_deref()
    }

    /// Records that an improving game of `player` was stamped `ts_ms`.
    pub fn record_reached(&mut self, player: usize, ts_ms: u64) {
        if let Some(reached) = &mut self.reached {
            reached[player] = ts_ms;
        }
    }

    /// Generates the next game and updates the oracle.
    pub fn next_game(&mut self) -> Game {
        let player = (self.zipf.sample(&mut self.rng) as usize).saturating_sub(1).min(self.best.len() - 1);
        let best = self.best[player];
        if let Some(applied) = &mut self.applied {
            applied[player] += 1;
        }
        match self.operator {
            leaderboard_semantics::Operator::Best => {
                if self.rng.random_bool(self.improve_share) {
                    // An additive gain: a personal best improves by a few hundred points at
                    // most, however often the player plays (a multiplicative one would make
                    // the most active players' scores explode).
                    let gain = self.rng.random_range(1..=250);
                    let score = (best + gain).min(leaderboard_contract::MAX_SCORE);
                    self.best[player] = score;
                    Game { player, score, improved: true }
                } else {
                    let score = if best == 0 { 0 } else { self.rng.random_range(best / 2..=best) };
                    Game { player, score, improved: false }
                }
            }
            leaderboard_semantics::Operator::Sum => {
                let gain = self.rng.random_range(1..=250);
                self.best[player] = (best + gain).min(leaderboard_contract::MAX_SCORE);
                Game { player, score: gain, improved: true }
            }
            leaderboard_semantics::Operator::Last => {
                let score = self.rng.random_range((best / 2).max(1)..=best + 250);
                self.best[player] = score;
                Game { player, score, improved: score != best }
            }
        }
    }

    /// A uniformly random player index (for rank lookups).
    pub fn random_player(&mut self) -> usize {
        self.rng.random_range(0..self.best.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_like_indexes() {
        assert_eq!(player_id(42), "p-00000042");
        assert_eq!(player_index("p-00000042"), Some(42));
        assert_eq!(player_index("probe-1"), None);
        assert!(player_id(9) < player_id(10));
    }

    #[test]
    fn bests_only_go_up_and_improve_share_holds() {
        let mut pop = Population::new(7, 10_000, 1.1, 0.2).expect("population");
        let before = pop.best().to_vec();
        let mut improved = 0;
        for _ in 0..50_000 {
            let g = pop.next_game();
            assert!(g.score <= pop.best()[g.player], "a game never exceeds the recorded best");
            improved += usize::from(g.improved);
        }
        assert!(pop.best().iter().zip(&before).all(|(a, b)| a >= b));
        let share = improved as f64 / 50_000.0;
        assert!((0.18..0.22).contains(&share), "improve share {share}");
    }

    #[test]
    fn activity_is_skewed_and_initial_scores_deterministic() {
        let mut pop = Population::new(1, 100_000, 1.1, 0.0).expect("population");
        let hot = (0..20_000).filter(|_| pop.next_game().player < 100).count();
        assert!(hot > 20_000 / 5, "the top 0.1% of players play far more than 0.1% of games ({hot})");
        assert_eq!(Population::initial_score(3, 5), Population::initial_score(3, 5));
        assert!(pop.best().iter().all(|&s| (1000..=50_000_000).contains(&s)));
    }
}
