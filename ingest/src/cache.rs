//! The best-score cache: skips events that cannot improve a player's score.
//!
//! Most games do not beat a personal best, so most events would be no-op
//! `ZADD GT`s. The cache remembers, per board and player, a score that Redis
//! has *acknowledged*; an event at or below it cannot change anything and is
//! skipped. Entries are inserted only after a batch's Redis write succeeded,
//! so a cached value is never ahead of what Redis acknowledged.
//!
//! Redis can still lose what it acknowledged (a restart without persistence,
//! a failover to a replica that lagged, an operator's `FLUSHALL`), and then
//! the cache would skip exactly the events needed to restore a score. So:
//! - it is cleared whenever this worker has reason to doubt Redis: a lost
//!   connection, a reconnect, a failover (`READONLY`), a failed write, and on
//!   every partition revocation (another worker may now own those players);
//! - every entry expires after a time to live, which bounds how long a loss
//!   this worker cannot see keeps a score from being restored;
//! - it is bounded: `quick_cache` evicts cold entries (S3-FIFO) when it is
//!   full, instead of the whole cache being dropped at capacity.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::{Order, Rules};
use quick_cache::Equivalent;
use quick_cache::sync::Cache;
use tokio::time::Instant;

/// A cached acknowledged best (a ranking key and the time it was reached,
/// see `leaderboard_semantics::rules`), the board order the key is in, and when it expires.
#[derive(Debug, Clone, Copy)]
struct Acked {
    key: u64,
    time_ms: u64,
    /// A key means nothing under the other order (a board deleted and created again).
    order: Order,
    expires: Instant,
}

/// A lookup key that borrows, so the hot path never clones ids.
#[derive(Hash)]
struct KeyRef<'a>(&'a BoardId, &'a PlayerId);

impl Equivalent<(BoardId, PlayerId)> for KeyRef<'_> {
    fn equivalent(&self, key: &(BoardId, PlayerId)) -> bool {
        self.0 == &key.0 && self.1 == &key.1
    }
}

/// A bounded map from (board, player) to an acknowledged best score, with a time to live.
pub struct BestScoreCache {
    /// `None` when caching is disabled (capacity 0).
    scores: Option<Cache<(BoardId, PlayerId), Acked>>,
    ttl: Duration,
    /// Bumped by every [`BestScoreCache::clear`]: a skip decided under an older
    /// epoch may rest on a score Redis lost, so its event must be written after all.
    epoch: AtomicU64,
}

impl std::fmt::Debug for BestScoreCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BestScoreCache").field("len", &self.len()).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl BestScoreCache {
    /// A cache of at most `capacity` (board, player) entries that each live
    /// `ttl`; a capacity of 0 disables caching.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self { scores: (capacity > 0).then(|| Cache::new(capacity)), ttl, epoch: AtomicU64::new(0) }
    }

    /// Whether an event with ranking key `key` reached at `time_ms` cannot
    /// improve the player's acknowledged best under `rules`: a lower key, or an
    /// equal one (on `earliest` boards, an equal one reached no earlier).
    pub fn can_skip(&self, board: &BoardId, player: &PlayerId, key: u64, time_ms: u64, rules: &Rules) -> bool {
        let Some(scores) = &self.scores else { return false };
        scores.get(&KeyRef(board, player)).is_some_and(|acked| {
            Instant::now() < acked.expires
                && acked.order == rules.order
                && (key < acked.key || (key == acked.key && (!rules.earliest() || time_ms >= acked.time_ms)))
        })
    }

    /// Records a best (ranking key under `order`, and time) that Redis acknowledged.
    pub fn record(&self, board: &BoardId, player: &PlayerId, key: u64, time_ms: u64, order: Order) {
        let Some(scores) = &self.scores else { return };
        let now = Instant::now();
        if let Some(acked) = scores.get(&KeyRef(board, player)) {
            // A live better entry stays (a worse ack never lowers the best),
            // but keeps its expiry: its age is that of the oldest evidence.
            let at_least_as_good = acked.key > key || (acked.key == key && acked.time_ms <= time_ms);
            if acked.expires > now && acked.order == order && at_least_as_good {
                return;
            }
        }
        scores.insert((board.clone(), player.clone()), Acked { key, time_ms, order, expires: now + self.ttl });
    }

    /// Forgets everything (Redis may have lost what it acknowledged), and
    /// starts a new epoch.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(scores) = &self.scores {
            scores.clear();
        }
        metrics::counter!("ingest_cache_clears_total").increment(1);
    }

    /// The current epoch (see [`BestScoreCache::clear`]).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Entries cached now (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.scores.as_ref().map_or(0, Cache::len)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use leaderboard_semantics::Ties;

    use super::*;

    const SHARED: Rules = Rules {
        order: Order::Desc,
        ties: Ties::Shared,
        min_score: 0,
        max_score: leaderboard_contract::MAX_SCORE,
        reset: None,
        keep_seasons: 12,
        late_grace: std::time::Duration::from_secs(10),
        operator: leaderboard_semantics::Operator::Best,
        dedup_window: std::time::Duration::from_secs(86_400),
    };
    const EARLIEST: Rules = Rules { ties: Ties::Earliest, ..SHARED };

    fn ids(p: &str) -> (BoardId, PlayerId) {
        (BoardId::new("b").expect("valid"), PlayerId::new(p).expect("valid"))
    }

    #[test]
    fn skips_only_non_improving_scores() {
        let cache = BestScoreCache::new(10, Duration::from_secs(60));
        let (b, p) = ids("p");
        assert!(!cache.can_skip(&b, &p, 0, 0, &SHARED));
        cache.record(&b, &p, 50, 0, Order::Desc);
        assert!(cache.can_skip(&b, &p, 50, 0, &SHARED));
        assert!(cache.can_skip(&b, &p, 10, 0, &SHARED));
        assert!(!cache.can_skip(&b, &p, 51, 0, &SHARED));
        cache.record(&b, &p, 20, 0, Order::Desc);
        assert!(cache.can_skip(&b, &p, 50, 0, &SHARED), "a lower ack never lowers the cached best");
        let other = BoardId::new("other").expect("valid");
        assert!(!cache.can_skip(&other, &p, 1, 0, &SHARED), "boards are separate");
        let epoch = cache.epoch();
        cache.clear();
        assert!(!cache.can_skip(&b, &p, 1, 0, &SHARED));
        assert_ne!(cache.epoch(), epoch, "a clear starts a new epoch");
    }

    #[test]
    fn evicts_instead_of_wiping_and_zero_disables() {
        let cache = BestScoreCache::new(100, Duration::from_secs(60));
        for i in 0..1000 {
            let (b, p) = ids(&format!("p{i}"));
            cache.record(&b, &p, 1, 0, Order::Desc);
            assert!(cache.len() <= 110, "bounded: {}", cache.len());
        }
        let (b, p) = ids("p999");
        assert!(cache.can_skip(&b, &p, 1, 0, &SHARED), "the newest entry survives eviction");
        let off = BestScoreCache::new(0, Duration::from_secs(60));
        off.record(&b, &p, 5, 0, Order::Desc);
        assert!(!off.can_skip(&b, &p, 1, 0, &SHARED));
        assert!(off.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire() {
        let cache = BestScoreCache::new(10, Duration::from_secs(30));
        let (b, p) = ids("p");
        cache.record(&b, &p, 50, 0, Order::Desc);
        tokio::time::advance(Duration::from_secs(29)).await;
        cache.record(&b, &p, 40, 0, Order::Desc);
        assert!(cache.can_skip(&b, &p, 50, 0, &SHARED));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!cache.can_skip(&b, &p, 10, 0, &SHARED), "an entry older than its ttl proves nothing");
        cache.record(&b, &p, 40, 0, Order::Desc);
        assert!(
            cache.can_skip(&b, &p, 40, 0, &SHARED) && !cache.can_skip(&b, &p, 41, 0, &SHARED),
            "renewed from the new ack"
        );
    }

    #[test]
    fn on_earliest_boards_an_equal_key_reached_earlier_is_not_skipped() {
        let cache = BestScoreCache::new(10, Duration::from_secs(60));
        let (b, p) = ids("p");
        cache.record(&b, &p, 50, 1_000, Order::Desc);
        assert!(cache.can_skip(&b, &p, 50, 1_000, &EARLIEST) && cache.can_skip(&b, &p, 50, 2_000, &EARLIEST));
        assert!(!cache.can_skip(&b, &p, 50, 999, &EARLIEST), "an earlier time improves the standing");
        assert!(cache.can_skip(&b, &p, 50, 999, &SHARED), "shared ties ignore times");
        cache.record(&b, &p, 50, 999, Order::Desc);
        assert!(cache.can_skip(&b, &p, 50, 999, &EARLIEST), "the earlier ack replaces the later");
    }

    #[test]
    fn a_key_of_the_other_order_proves_nothing() {
        // The board was deleted and created again as `asc`: the old `desc` key must not skip anything.
        let cache = BestScoreCache::new(10, Duration::from_secs(60));
        let (b, p) = ids("p");
        cache.record(&b, &p, 1_000_000, 0, Order::Desc);
        let asc = Rules { order: Order::Asc, ..SHARED };
        assert!(!cache.can_skip(&b, &p, 10, 0, &asc));
        cache.record(&b, &p, 10, 0, Order::Asc);
        assert!(cache.can_skip(&b, &p, 10, 0, &asc), "replaced by the new order's ack");
    }
}
