//! The oracle of a run's seasons: each player's best per season.
//!
//! Every game is stamped with the run's clock (`--clock`; a simulated one
//! crosses day seasons in seconds) and counts for the season of its stamp,
//! whatever the player's all-time best: a game below the all-time best can
//! be the season's best. Seeded scores count for all-time only (they were
//! reached before the run). A season is 8 bytes per player (16 on `earliest`
//! boards), so a run holds at most [`MAX_SEASONS`] of them.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use leaderboard_semantics::season::Reset;

/// Most seasons one run may span.
pub const MAX_SEASONS: usize = 16;

/// Each player's best in one season; key 0 means no game in it (keys a run
/// produces are at least 500).
#[derive(Debug, Clone)]
pub struct SeasonBests {
    /// Best ranking key by player index; 0: absent.
    pub best: Vec<u64>,
    /// `earliest` boards: when each player first reached that best.
    pub reached: Option<Vec<u64>>,
}

/// Every season a run played in.
#[derive(Debug, Clone)]
pub struct SeasonOracle {
    reset: Reset,
    players: usize,
    times: bool,
    seasons: BTreeMap<String, SeasonBests>,
}

impl SeasonOracle {
    /// An empty oracle for `players` players under `reset`; `times` keeps
    /// when bests were reached (`earliest` boards).
    pub fn new(reset: Reset, players: usize, times: bool) -> Self {
        Self { reset, players, times, seasons: BTreeMap::new() }
    }

    /// Records a game of `player` with ranking key `key` stamped `ts_ms`.
    ///
    /// # Errors
    /// When the run spans more than [`MAX_SEASONS`] seasons, or the stamp has no season.
    pub fn record(&mut self, player: usize, key: u64, ts_ms: u64) -> anyhow::Result<()> {
        let at = i64::try_from(ts_ms)?;
        let season = self.reset.season_at(at).map_err(|e| anyhow::anyhow!("season of {ts_ms}: {e}"))?;
        let full = self.seasons.len() >= MAX_SEASONS;
        let (players, times) = (self.players, self.times);
        let bests = match self.seasons.entry(season.id) {
            Entry::Occupied(held) => held.into_mut(),
            Entry::Vacant(slot) => {
                anyhow::ensure!(!full, "the run spans more than {MAX_SEASONS} seasons: shorten it or slow the clock");
                slot.insert(SeasonBests { best: vec![0; players], reached: times.then(|| vec![0; players]) })
            }
        };
        if key > bests.best[player] {
            bests.best[player] = key;
            if let Some(reached) = &mut bests.reached {
                // Stamps only grow, so the first time a key is reached is when it first becomes the best.
                reached[player] = ts_ms;
            }
        }
        Ok(())
    }

    /// Forgets `player` in every season, then records `games` (`(key, ts_ms)`,
    /// in the order they were sent) again: the oracle after an erasure.
    ///
    /// # Errors
    /// As [`SeasonOracle::record`].
    pub fn replace(&mut self, player: usize, games: &[(u64, u64)]) -> anyhow::Result<()> {
        self.remove(player);
        for &(key, ts_ms) in games {
            self.record(player, key, ts_ms)?;
        }
        Ok(())
    }

    /// Forgets `player` in every season: absent from them all.
    pub fn remove(&mut self, player: usize) {
        for bests in self.seasons.values_mut() {
            bests.best[player] = 0;
            if let Some(reached) = &mut bests.reached {
                reached[player] = 0;
            }
        }
    }

    /// The seasons, oldest first.
    pub fn seasons(&self) -> impl Iterator<Item = (&str, &SeasonBests)> {
        self.seasons.iter().map(|(id, bests)| (id.as_str(), bests))
    }
}

#[cfg(test)]
mod tests {
    use leaderboard_semantics::season::Every;

    use super::*;

    const DAY0: u64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

    #[test]
    fn games_count_for_the_season_of_their_stamp_whatever_the_all_time_best() {
        let reset =
            Reset { every: Every::Day, utc_offset: time::UtcOffset::UTC, weekday: time::Weekday::Monday, span: None };
        let mut o = SeasonOracle::new(reset, 3, true);
        o.record(0, 900, DAY0 + 5).expect("record");
        o.record(0, 700, DAY0 + 86_399_999).expect("record"); // lower, same season: not a best
        o.record(0, 600, DAY0 + 86_400_000).expect("record"); // next season: its best, though lower
        o.record(1, 600, DAY0 + 86_400_001).expect("record");
        o.record(1, 600, DAY0 + 86_400_009).expect("record"); // equal, later: reached stays
        let seasons: Vec<(&str, Vec<u64>, Vec<u64>)> =
            o.seasons().map(|(id, b)| (id, b.best.clone(), b.reached.clone().expect("times"))).collect();
        assert_eq!(
            seasons,
            [
                ("2026-11-23", vec![900, 0, 0], vec![DAY0 + 5, 0, 0]),
                ("2026-11-24", vec![600, 600, 0], vec![DAY0 + 86_400_000, DAY0 + 86_400_001, 0])
            ]
        );
        let mut long = SeasonOracle::new(reset, 1, false);
        for d in 0..MAX_SEASONS as u64 {
            long.record(0, 1, DAY0 + d * 86_400_000).expect("within the limit");
        }
        assert!(long.record(0, 1, DAY0 + 100 * 86_400_000).is_err(), "past the limit");
    }

    #[test]
    fn an_erased_player_keeps_only_the_games_replayed_and_a_removed_one_none() {
        let reset =
            Reset { every: Every::Day, utc_offset: time::UtcOffset::UTC, weekday: time::Weekday::Monday, span: None };
        let mut o = SeasonOracle::new(reset, 2, true);
        o.record(0, 900, DAY0 + 5).expect("record");
        o.record(0, 800, DAY0 + 86_400_005).expect("record");
        o.record(1, 700, DAY0 + 6).expect("record");
        // The new start: one game in the second season only.
        o.replace(0, &[(600, DAY0 + 86_400_009)]).expect("replace");
        o.remove(1);
        let seasons: Vec<(&str, Vec<u64>, Vec<u64>)> =
            o.seasons().map(|(id, b)| (id, b.best.clone(), b.reached.clone().expect("times"))).collect();
        assert_eq!(
            seasons,
            [("2026-11-23", vec![0, 0], vec![0, 0]), ("2026-11-24", vec![600, 0], vec![DAY0 + 86_400_009, 0])]
        );
    }
}
