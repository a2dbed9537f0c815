//! Board rules (docs/contract.md#board-rules): what "better" means on a board,
//! how ties are broken, and which scores it accepts.
//!
//! Rules live in the board's record (the store's `layout::record`), so every
//! process reads them with the layout and they are replaced atomically.
//!
//! # How Redis holds them
//! Layouts store a *ranking key* instead of the score, so "better" is always
//! "greater" inside Redis and every layout's machinery (`ZADD GT`, reverse
//! ranges, range shards) is the same for every board:
//! - `order: desc`: the key is the score. `order: asc`: the key is
//!   `MAX_SCORE - score` (exact: both lie in `0..=2^53 - 1`). Converting costs
//!   one subtraction at the edges ([`Rules::key`], [`Rules::score`]); a `range`
//!   board's shard boundaries are ranking keys too (`lb-admin boards` shows
//!   them as scores).
//! - `ties: shared`: the member is the encoded player id, as always.
//! - `ties: earliest`: the member is the time the player reached the score
//!   (8 bytes, complemented, big-endian) followed by the encoded id, so Redis's
//!   own order is the board's order (key, then time, then id), and a hash per
//!   shard maps each player to that prefix (the store's `layout::member`).
//!
//! Order and ties decide what is stored, so they are fixed when the board is
//! created; the bounds can change at any time and apply to events processed
//! after the change reaches the writers (at most the store's `RECORD_TTL`).

use std::fmt;
use std::time::Duration;

use leaderboard_contract::MAX_SCORE;
use serde::{Deserialize, Serialize};

use crate::season::Reset;

/// Longest `dedup_window` (docs/contract.md#write-operators).
pub const MAX_DEDUP_WINDOW: Duration = Duration::from_secs(7 * 86_400);

/// Most closed seasons a board keeps.
pub const MAX_KEEP_SEASONS: u32 = 1000;
/// Longest `late_grace`: one day, the shortest calendar season; no longer than
/// a schedule's shortest season either, so at most the current season and the
/// one before it take events.
pub const MAX_LATE_GRACE: Duration = Duration::from_secs(86_400);

/// What "better" means on a board.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Higher is better (the default).
    #[default]
    Desc,
    /// Lower is better (time trials).
    Asc,
}

/// How equal scores rank.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ties {
    /// Equal scores share a rank: 1, 2, 2, 4 (the default).
    #[default]
    Shared,
    /// Whoever reached the score first is ahead; ranks are positions.
    Earliest,
}

/// How a board combines a player's events (docs/contract.md#write-operators).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operator {
    /// The best score counts (the default): idempotent by nature.
    #[default]
    Best,
    /// The latest event (last in the topic) counts.
    Last,
    /// Scores are increments; the player's score is their sum.
    Sum,
}

impl Operator {
    /// Whether events are applied exactly once by their record (`last`, `sum`)
    /// rather than made harmless to repeat by keeping the best (`best`).
    pub const fn exactly_once(self) -> bool {
        !matches!(self, Self::Best)
    }
}

/// A board's rules.
///
/// Unknown fields are ignored when read (a record written by a newer version
/// stays readable); the admin API refuses them in requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rules {
    /// Higher or lower is better.
    #[serde(default)]
    pub order: Order,
    /// How ties rank.
    #[serde(default)]
    pub ties: Ties,
    /// Lowest accepted score.
    #[serde(default)]
    pub min_score: u64,
    /// Highest accepted score.
    #[serde(default = "max_score")]
    pub max_score: u64,
    /// The season schedule (docs/contract.md#seasons); `None`: all-time only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<Reset>,
    /// Closed seasons kept; older ones are deleted.
    #[serde(default = "keep_seasons")]
    pub keep_seasons: u32,
    /// How long after its end a season still takes late events (`10s`, `5m`).
    #[serde(default = "late_grace", with = "duration_text")]
    pub late_grace: Duration,
    /// How a player's events combine; fixed when the board is created.
    #[serde(default)]
    pub operator: Operator,
    /// On `last` and `sum` boards, how far apart (by Kafka timestamp) two
    /// records with the same `id` for one player may be and still apply once.
    #[serde(default = "dedup_window", with = "duration_text")]
    pub dedup_window: Duration,
}

const fn dedup_window() -> Duration {
    Duration::from_secs(86_400)
}

const fn max_score() -> u64 {
    MAX_SCORE
}

const fn keep_seasons() -> u32 {
    12
}

const fn late_grace() -> Duration {
    Duration::from_secs(10)
}

/// A duration as `humantime` writes it (`10s`, `1h 30m`).
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("a duration like 10s or 5m, got {text:?}: {e}")))
    }
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            order: Order::Desc,
            ties: Ties::Shared,
            min_score: 0,
            max_score: MAX_SCORE,
            reset: None,
            keep_seasons: keep_seasons(),
            late_grace: late_grace(),
            operator: Operator::Best,
            dedup_window: dedup_window(),
        }
    }
}

/// Rules that cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRules {
    /// `min_score` above `max_score`, or a bound above 2^53 - 1.
    #[error("bounds must satisfy 0 <= min_score <= max_score <= {MAX_SCORE}, got {min}..={max}")]
    Bounds {
        /// The given minimum.
        min: u64,
        /// The given maximum.
        max: u64,
    },
    /// `keep_seasons` outside `1..=MAX_KEEP_SEASONS`.
    #[error("keep_seasons must be 1 to {MAX_KEEP_SEASONS}, got {0}")]
    KeepSeasons(u32),
    /// `late_grace` longer than [`MAX_LATE_GRACE`].
    #[error("late_grace must be at most 1 day, got {0:?}")]
    LateGrace(Duration),
    /// `late_grace` longer than the schedule's shortest season (then more than two seasons would take events).
    #[error("late_grace must be at most the shortest season ({season:?}), got {grace:?}")]
    LateGraceForSchedule {
        /// The grace asked for.
        grace: Duration,
        /// The schedule's shortest season.
        season: Duration,
    },
    /// `dedup_window` longer than [`MAX_DEDUP_WINDOW`].
    #[error("dedup_window must be at most 7 days, got {0:?}")]
    DedupWindow(Duration),
}

impl Rules {
    /// Checks the bounds and the season settings.
    ///
    /// # Errors
    /// [`InvalidRules`] naming what cannot hold.
    pub fn validate(&self) -> Result<(), InvalidRules> {
        if self.min_score > self.max_score || self.max_score > MAX_SCORE {
            return Err(InvalidRules::Bounds { min: self.min_score, max: self.max_score });
        }
        if !(1..=MAX_KEEP_SEASONS).contains(&self.keep_seasons) {
            return Err(InvalidRules::KeepSeasons(self.keep_seasons));
        }
        if self.late_grace > MAX_LATE_GRACE {
            return Err(InvalidRules::LateGrace(self.late_grace));
        }
        if let Some(reset) = &self.reset
            && self.late_grace > reset.shortest()
        {
            return Err(InvalidRules::LateGraceForSchedule { grace: self.late_grace, season: reset.shortest() });
        }
        if self.dedup_window > MAX_DEDUP_WINDOW {
            return Err(InvalidRules::DedupWindow(self.dedup_window));
        }
        Ok(())
    }

    /// The rules a season of a board with these rules is stored under: the
    /// same order, ties and operator (a `sum` season is the sum of that
    /// season's events) and deduplication, no bounds (the board's are checked
    /// before an event reaches a season) and no schedule of its own.
    #[must_use]
    pub fn for_season(&self) -> Self {
        Self {
            order: self.order,
            ties: self.ties,
            operator: self.operator,
            dedup_window: self.dedup_window,
            ..Self::default()
        }
    }

    /// Whether these are the defaults (a record with default rules stays a bare layout name).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Whether `score` is within the board's bounds.
    pub fn accepts(&self, score: u64) -> bool {
        (self.min_score..=self.max_score).contains(&score)
    }

    /// Whether `other` stores the board the same way (order, ties and operator equal).
    pub fn same_storage(&self, other: &Self) -> bool {
        self.order == other.order && self.ties == other.ties && self.operator == other.operator
    }

    /// The ranking key Redis stores for `score`: greater is better.
    pub fn key(&self, score: u64) -> u64 {
        match self.order {
            Order::Desc => score,
            Order::Asc => MAX_SCORE.saturating_sub(score),
        }
    }

    /// The score a stored ranking key stands for (the inverse of [`Rules::key`]).
    pub fn score(&self, key: u64) -> u64 {
        self.key(key)
    }

    /// Whether ranks are positions (`ties: earliest`).
    pub fn earliest(&self) -> bool {
        self.ties == Ties::Earliest
    }

    /// Whether `(key, time)` beats `(best_key, best_time)` on this board (both ranking keys).
    pub fn improves(&self, key: u64, time_ms: u64, best_key: u64, best_time_ms: u64) -> bool {
        key > best_key || (key == best_key && self.earliest() && time_ms < best_time_ms)
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Desc => "desc",
            Self::Asc => "asc",
        })
    }
}

impl fmt::Display for Ties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Shared => "shared",
            Self::Earliest => "earliest",
        })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Best => "best",
            Self::Last => "last",
            Self::Sum => "sum",
        })
    }
}

impl fmt::Display for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "order={} ties={} scores {}..={}", self.order, self.ties, self.min_score, self.max_score)?;
        if self.operator.exactly_once() {
            write!(f, " operator={} dedup_window={}", self.operator, humantime::format_duration(self.dedup_window))?;
        }
        match &self.reset {
            Some(reset) => write!(
                f,
                " reset {reset} keep_seasons={} late_grace={}",
                self.keep_seasons,
                humantime::format_duration(self.late_grace)
            ),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asc_keys_reverse_the_order_exactly_at_both_ends() {
        let asc = Rules { order: Order::Asc, ..Rules::default() };
        assert_eq!(asc.key(0), MAX_SCORE);
        assert_eq!(asc.key(MAX_SCORE), 0);
        assert!(asc.key(3) > asc.key(4), "lower is better");
        for s in [0, 1, 17, MAX_SCORE - 1, MAX_SCORE] {
            assert_eq!(asc.score(asc.key(s)), s);
            assert_eq!(Rules::default().key(s), s);
        }
    }

    #[test]
    fn defaults_fill_missing_fields_and_bad_values_are_refused() {
        let parsed: Rules = serde_json::from_str(r#"{"ties":"earliest"}"#).expect("json");
        assert_eq!(parsed, Rules { ties: Ties::Earliest, ..Rules::default() });
        assert!(serde_json::from_str::<Rules>(r#"{"order":"up"}"#).is_err());
        let newer: Rules = serde_json::from_str(r#"{"order":"asc","reset":null,"tiebreak":1}"#).expect("newer record");
        assert_eq!(newer.order, Order::Asc, "fields of a newer version are ignored");
        assert!(Rules { min_score: 5, max_score: 4, ..Rules::default() }.validate().is_err());
        assert!(Rules { max_score: MAX_SCORE + 1, ..Rules::default() }.validate().is_err());
        assert!(Rules { min_score: 4, max_score: 4, ..Rules::default() }.validate().is_ok());
        assert!(Rules { keep_seasons: 0, ..Rules::default() }.validate().is_err());
        assert!(Rules { late_grace: MAX_LATE_GRACE * 2, ..Rules::default() }.validate().is_err());
        assert!(Rules { dedup_window: MAX_DEDUP_WINDOW * 2, ..Rules::default() }.validate().is_err());
        let sum: Rules = serde_json::from_str(r#"{"operator":"sum","dedup_window":"7d"}"#).expect("json");
        assert_eq!((sum.operator, sum.dedup_window), (Operator::Sum, MAX_DEDUP_WINDOW));
        assert!(sum.validate().is_ok());
        assert!(!sum.same_storage(&Rules::default()), "the operator is fixed once set");
        assert_eq!(sum.for_season().operator, Operator::Sum, "a sum board's seasons are sums");
        assert!(serde_json::from_str::<Rules>(r#"{"operator":"max"}"#).is_err());
    }

    #[test]
    fn season_settings_round_trip_and_seasons_keep_the_storage_rules() {
        let text = r#"{"order":"asc","reset":{"every":"week","utc_offset":"+09:00","weekday":"tue"},"keep_seasons":3,"late_grace":"1m 30s","min_score":5}"#;
        let rules: Rules = serde_json::from_str(text).expect("json");
        assert_eq!(rules.late_grace, Duration::from_secs(90));
        assert_eq!(rules.keep_seasons, 3);
        let again: Rules = serde_json::from_str(&serde_json::to_string(&rules).expect("json")).expect("json");
        assert_eq!(again, rules);
        assert!(serde_json::from_str::<Rules>(r#"{"late_grace":"soon"}"#).is_err());
        let season = rules.for_season();
        assert!(season.same_storage(&rules) && season.reset.is_none() && season.min_score == 0);
        assert_eq!(Rules::default().late_grace, Duration::from_secs(10));
    }

    #[test]
    fn earliest_breaks_equal_keys_by_time_and_shared_does_not() {
        let earliest = Rules { ties: Ties::Earliest, ..Rules::default() };
        assert!(earliest.improves(5, 10, 5, 20));
        assert!(!earliest.improves(5, 20, 5, 10));
        assert!(!Rules::default().improves(5, 10, 5, 20));
        assert!(Rules::default().improves(6, 99, 5, 1));
    }
}
