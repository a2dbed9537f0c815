//! The arithmetic of the `last` and `sum` operators (docs/contract.md#write-operators),
//! shared by the oracle and mirrored, step for step, by the store's scripts:
//! where a record sits in the topic ([`Source`]), what a new score is
//! ([`combine`]), and which re-sent ids are duplicates ([`RecentIds`]).
//!
//! `best` is idempotent by nature; these are not. They are exact because every
//! effect is keyed by its record: a shard skips a record at or below the
//! offset it has applied of that record's partition, and a player's recent
//! idempotency keys skip a game server's re-sent event. Both decisions
//! depend only on the records and their order in a partition, never on the
//! wall clock, so a replay decides exactly as the live workers did.

use std::fmt;
use std::sync::Arc;

use leaderboard_contract::MAX_SCORE;
use sha2::{Digest, Sha256};

use crate::rules::{Operator, Order};

/// Most idempotency keys remembered per player and board: the newest ones
/// within the board's `dedup_window`. 22 bytes each in Redis (docs/ingest.md).
pub const IDS_PER_PLAYER: usize = 8;

/// An event's idempotency key as stored: the first 8 bytes of the SHA-256 of
/// its `id`. Fixed-size whatever the producer sends (up to 128 bytes); two
/// distinct ids of one player collide with probability about 2^-61 per pair.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdKey(pub [u8; 8]);

impl IdKey {
    /// The key of the event id `id`.
    pub fn of(id: &str) -> Self {
        let digest = Sha256::digest(id.as_bytes());
        let mut key = [0; 8];
        key.copy_from_slice(&digest[..8]);
        Self(key)
    }
}

impl fmt::Debug for IdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Where an update's record sits in the topic: what `last` and `sum` boards
/// apply exactly once by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's Kafka timestamp (ms since the Unix epoch): `dedup_window` is judged by it.
    pub at_ms: i64,
    /// The event's idempotency key, when it has an `id`.
    pub id: Option<IdKey>,
}

impl Source {
    /// The name the store keeps this record's partition's applied offset under.
    pub fn field(&self) -> String {
        format!("{}:{}", self.topic, self.partition)
    }
}

/// A `sum` went past 2^53 - 1 (on `asc` boards: the ranking key went below 0),
/// so the record is refused (`out_of_bounds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// The player's score after an event of `value` on a board of `operator`
/// and `order`, when it was `old` (`None`: not on the board). `best` boards
/// are not combined here ([`crate::rules::Rules::improves`]).
///
/// # Errors
/// [`Overflow`] when a sum leaves `0..=2^53 - 1`.
pub fn combine(operator: Operator, old: Option<u64>, value: u64) -> Result<u64, Overflow> {
    match operator {
        Operator::Sum => old.unwrap_or(0).checked_add(value).filter(|s| *s <= MAX_SCORE).ok_or(Overflow),
        Operator::Last | Operator::Best => Ok(value),
    }
}

/// The ranking key a `sum` board's player starts from (a score of 0).
pub fn start_key(order: Order) -> u64 {
    match order {
        Order::Desc => 0,
        Order::Asc => MAX_SCORE,
    }
}

/// One player's remembered idempotency keys on one board, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentIds {
    ids: Vec<(IdKey, i64)>,
}

impl RecentIds {
    /// Whether a record with `id` stamped `at_ms` repeats a remembered one: the
    /// same key, stamped within `window_ms` of it (either way: producers'
    /// timestamps need not grow).
    pub fn repeats(&self, id: IdKey, at_ms: i64, window_ms: i64) -> bool {
        self.ids.iter().any(|(k, t)| *k == id && (at_ms - t).abs() <= window_ms)
    }

    /// Remembers `id` of a record stamped `at_ms` that was applied: from the
    /// oldest on, the keys stamped more than `window_ms` before it are
    /// forgotten (up to the first that is not: with timestamps that do not
    /// grow, an older one behind it waits for its turn, or for the cap), then
    /// the oldest beyond [`IDS_PER_PLAYER`] - 1, and `id` is kept last.
    pub fn remember(&mut self, id: IdKey, at_ms: i64, window_ms: i64) {
        let stale = self.ids.iter().take_while(|(_, t)| *t < at_ms - window_ms).count();
        self.ids.drain(..stale);
        let extra = (self.ids.len() + 1).saturating_sub(IDS_PER_PLAYER);
        self.ids.drain(..extra);
        self.ids.push((id, at_ms));
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_stop_at_the_largest_exact_score_and_lasts_replace() {
        assert_eq!(combine(Operator::Sum, None, 5), Ok(5));
        assert_eq!(combine(Operator::Sum, Some(MAX_SCORE - 5), 5), Ok(MAX_SCORE));
        assert_eq!(combine(Operator::Sum, Some(MAX_SCORE - 5), 6), Err(Overflow));
        assert_eq!(combine(Operator::Sum, Some(MAX_SCORE), MAX_SCORE), Err(Overflow));
        assert_eq!(combine(Operator::Last, Some(9), 2), Ok(2));
        assert_eq!(start_key(Order::Asc), MAX_SCORE);
    }

    #[test]
    fn a_key_repeats_within_the_window_either_way_and_the_newest_are_kept() {
        let (a, b) = (IdKey::of("e-1"), IdKey::of("e-2"));
        assert_ne!(a, b);
        let mut ids = RecentIds::default();
        ids.remember(a, 1_000, 100);
        assert!(ids.repeats(a, 1_100, 100) && ids.repeats(a, 900, 100));
        assert!(!ids.repeats(a, 1_101, 100) && !ids.repeats(b, 1_000, 100));
        ids.remember(b, 1_200, 100);
        assert_eq!(ids.len(), 1, "a key stamped more than the window before is forgotten");
        let mut unordered = RecentIds::default();
        for (key, at) in [(a, 1_000), (b, 900), (IdKey::of("c"), 1_050)] {
            unordered.remember(key, at, 100);
        }
        assert_eq!(unordered.len(), 3, "stale keys go from the oldest on, up to the first that is not");
        unordered.remember(IdKey::of("d"), 1_120, 100);
        assert_eq!(unordered.len(), 2, "then b goes with a");
        for i in 0..20 {
            ids.remember(IdKey::of(&format!("x{i}")), 1_200 + i, 100);
        }
        assert_eq!(ids.len(), IDS_PER_PLAYER);
        assert!(ids.repeats(IdKey::of("x19"), 1_219, 100) && !ids.repeats(IdKey::of("x11"), 1_219, 100));
    }
}
