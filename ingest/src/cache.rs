//! The best-score cache: skips events that cannot improve a player's score.
//!
//! Most games do not beat a personal best, so most events would be no-op
//! `ZADD GT`s. The cache remembers, per board and player, a score that Redis
//! has *acknowledged*; an event at or below it cannot change anything and is
//! skipped. Entries are inserted only after a batch's Redis write succeeded,
//! so a cached value is never ahead of Redis.
//!
//! When in doubt the cache is dropped and events are written (`ZADD GT` is the
//! truth): on every partition revocation (another worker may now own those
//! players), after any failed Redis write (Redis may have restarted and lost
//! data), and when it reaches its capacity (a whole-cache reset keeps memory
//! bounded without per-entry bookkeeping).

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use leaderboard_contract::{BoardId, PlayerId};

/// A bounded map from (board, player) to an acknowledged best score.
#[derive(Debug)]
pub struct BestScoreCache {
    capacity: usize,
    /// Keyed by player alone so lookups borrow instead of cloning; a player is
    /// on few boards, so a short list per player is the cheapest second level.
    scores: DashMap<PlayerId, Vec<(BoardId, u64)>>,
    resets: AtomicU64,
}

impl BestScoreCache {
    /// A cache of at most `capacity` players; 0 disables caching.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, scores: DashMap::new(), resets: AtomicU64::new(0) }
    }

    /// Whether an event with `score` cannot improve the player's acknowledged best.
    pub fn can_skip(&self, board: &BoardId, player: &PlayerId, score: u64) -> bool {
        self.capacity > 0
            && self.scores.get(player).is_some_and(|boards| boards.iter().any(|(b, best)| b == board && score <= *best))
    }

    /// Records a score that Redis acknowledged.
    pub fn record(&self, board: &BoardId, player: &PlayerId, score: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.scores.len() >= self.capacity {
            self.clear();
        }
        let mut boards = self.scores.entry(player.clone()).or_default();
        match boards.iter_mut().find(|(b, _)| b == board) {
            Some((_, best)) => *best = (*best).max(score),
            None => boards.push((board.clone(), score)),
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.scores.clear();
        self.resets.fetch_add(1, Ordering::Relaxed);
    }

    /// Players cached now.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// How many times the cache was dropped.
    pub fn resets(&self) -> u64 {
        self.resets.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(p: &str) -> (BoardId, PlayerId) {
        (BoardId::new("b").expect("valid"), PlayerId::new(p).expect("valid"))
    }

    #[test]
    fn skips_only_non_improving_scores() {
        let cache = BestScoreCache::new(10);
        let (b, p) = ids("p");
        assert!(!cache.can_skip(&b, &p, 0));
        cache.record(&b, &p, 50);
        assert!(cache.can_skip(&b, &p, 50));
        assert!(cache.can_skip(&b, &p, 10));
        assert!(!cache.can_skip(&b, &p, 51));
        cache.record(&b, &p, 20);
        assert!(cache.can_skip(&b, &p, 50), "a lower ack never lowers the cached best");
    }

    #[test]
    fn capacity_bounds_memory_and_zero_disables() {
        let cache = BestScoreCache::new(3);
        for i in 0..10 {
            let (b, p) = ids(&format!("p{i}"));
            cache.record(&b, &p, 1);
            assert!(cache.len() <= 3);
        }
        assert!(cache.resets() >= 3);
        let off = BestScoreCache::new(0);
        let (b, p) = ids("p");
        off.record(&b, &p, 5);
        assert!(!off.can_skip(&b, &p, 1));
        assert!(off.is_empty());
    }
}
