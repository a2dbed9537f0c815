//! Connections to the test Redis servers and random workloads.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use leaderboard_contract::{BoardId, Meta, PlayerId};
use leaderboard_semantics::season::{Every, Reset, Season};
use leaderboard_semantics::{Oracle, Order, Rules, ScoreUpdate, Ties};
use leaderboard_store::layout::record::{self, RecordedLayout};
use leaderboard_store::{LayoutSpec, RedisTarget, Router, RouterOptions, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use testkit::{cluster_urls, redis_url};

pub async fn store(cluster: bool) -> Store {
    let target = if cluster {
        RedisTarget::parse(&format!("cluster:{}", cluster_urls())).expect("cluster urls")
    } else {
        RedisTarget::parse(&redis_url()).expect("redis url")
    };
    Store::connect(&target, StoreOptions::default())
        .await
        .unwrap_or_else(|e| panic!("cannot reach Redis {target:?} ({e}); run scripts/infra.sh up"))
}

pub async fn router(cluster: bool, spec: &str) -> Router {
    Router::new(store(cluster).await, spec.parse::<LayoutSpec>().expect("spec"), RouterOptions::default())
}

/// A board name no other test (or earlier run) uses.
pub fn unique_board(prefix: &str) -> BoardId {
    BoardId::new(testkit::unique(prefix)).expect("valid board")
}

pub fn player(i: usize) -> PlayerId {
    PlayerId::new(format!("p{i}")).expect("valid player")
}

/// 20 players whose scores (0, 25, ..., 475) are set once and never updated:
/// always present, so readers can look for them while everything else moves.
pub fn fixed_players(board: &BoardId) -> Vec<ScoreUpdate> {
    (0..20u64)
        .map(|i| ScoreUpdate {
            board: board.clone(),
            player: PlayerId::new(format!("fixed{i}")).expect("id"),
            score: i * 25,
            time_ms: 0,
            meta: None,
            source: None,
        })
        .collect()
}

/// Asserts that a first page read while writers and a layout operation run
/// is whole: `min(100, total)` rows, in contract order, no player twice.
pub fn assert_whole_page(page: &leaderboard_semantics::Page, context: &str) {
    assert_no_duplicates(&page.entries, context);
    assert_eq!(page.entries.len() as u64, page.total.min(100), "{context}: page length");
    assert!(
        page.entries
            .windows(2)
            .all(|w| w[0].score > w[1].score
                || (w[0].score == w[1].score && w[0].player.as_str() < w[1].player.as_str())),
        "{context}: order"
    );
}

/// A random workload: few players (so duplicates abound), small score range
/// (so ties abound), updates in random batches, some batches replayed. Six
/// events in ten carry metadata naming the event, so every comparison with
/// the oracle also checks that an entry shows the metadata of the event that
/// set its score, under ties, reordering and duplicates.
pub struct Workload {
    pub batches: Vec<Vec<ScoreUpdate>>,
}

impl Workload {
    pub fn random(seed: u64, boards: &[BoardId], players: usize, events: usize, max_score: u64) -> Self {
        Self::random_in(seed, boards, players, events, 0..=max_score, 0)
    }

    /// Like [`Workload::random`], with scores in `scores` and event times in
    /// `0..times` (0: every time 0), so equal scores are reached at equal and
    /// at different times, in any order.
    pub fn random_in(
        seed: u64,
        boards: &[BoardId],
        players: usize,
        events: usize,
        scores: std::ops::RangeInclusive<u64>,
        times: u64,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut batches = Vec::new();
        let mut left = events;
        while left > 0 {
            let n = rng.random_range(1..=left.min(200));
            left -= n;
            let batch: Vec<ScoreUpdate> = (0..n)
                .map(|_| ScoreUpdate {
                    board: boards[rng.random_range(0..boards.len())].clone(),
                    player: player(rng.random_range(0..players)),
                    score: rng.random_range(scores.clone()),
                    time_ms: if times == 0 { 0 } else { rng.random_range(0..times) },
                    meta: rng.random_bool(0.6).then(|| event_meta(rng.random())),
                    source: None,
                })
                .collect();
            batches.push(batch);
        }
        // Replays of earlier batches, as at-least-once delivery produces.
        for _ in 0..batches.len() / 3 {
            let i = rng.random_range(0..batches.len());
            batches.push(batches[i].clone());
        }
        Self { batches }
    }

    /// The workload without its metadata.
    #[must_use]
    pub fn without_meta(mut self) -> Self {
        self.batches.iter_mut().flatten().for_each(|u| u.meta = None);
        self
    }

    /// The workload with metadata a function of the player, score and time
    /// on every event: for writers running concurrently, whose order among
    /// events of equal score (so which one's metadata is kept) is a race,
    /// while the metadata must still travel with the score it belongs to.
    #[must_use]
    pub fn meta_by_score(mut self) -> Self {
        for u in self.batches.iter_mut().flatten() {
            let text = format!(r#"{{"player":"{}","score":{},"t":{}}}"#, u.player, u.score, u.time_ms);
            u.meta = Some(Meta::parse(&text).expect("valid meta"));
        }
        self
    }

    pub fn oracle(&self) -> Oracle {
        self.oracle_with(&[])
    }

    /// The oracle of boards with these rules (others have the defaults).
    pub fn oracle_with(&self, rules: &[(BoardId, leaderboard_semantics::Rules)]) -> Oracle {
        let mut oracle = Oracle::new();
        for (board, r) in rules {
            oracle.set_rules(board, *r);
        }
        for u in self.batches.iter().flatten() {
            oracle.apply(u);
        }
        oracle
    }
}

/// Metadata naming one event, with JSON that must come back byte for byte
/// (nesting, escapes, non-ASCII text).
pub fn event_meta(event: u32) -> Meta {
    Meta::parse(&format!(r#"{{"event":{event},"name":"Zoë \"{event}\"","run":{{"laps":[1,2.5]}}}}"#))
        .expect("valid meta")
}

/// Compares every query of `router` on `board` with the oracle.
pub async fn assert_matches_oracle(router: &Router, oracle: &Oracle, board: &BoardId, players: usize, context: &str) {
    router.refresh_sizes(board).await.expect("refresh sizes");
    let expected = oracle.board(board).cloned().unwrap_or_default();
    let total = expected.total();
    assert_eq!(router.total(board).await.expect("total"), total, "{context}: total");
    assert_eq!(router.stats(board).await.expect("stats").total, total, "{context}: stats total");
    for i in 0..players {
        let p = player(i);
        let got = router.standing(board, &p).await.expect("standing");
        assert_eq!(got, expected.standing(&p), "{context}: standing of {p}");
        for radius in [0, 1, 3] {
            let got = router.around(board, &p, radius).await.expect("around");
            assert_eq!(got, expected.around(&p, radius), "{context}: around {p} radius {radius}");
        }
    }
    // Limit 0 included: a page of nothing must read nothing (and still say the total).
    let pages =
        [(0, 100), (0, 0), (5, 0), (0, 1), (0, 3), (2, 5), (total.saturating_sub(2), 10), (total, 5), (total + 3, 2)];
    for (offset, limit) in pages {
        let got = router.top(board, offset, limit).await.expect("top");
        assert_eq!(got, expected.top(offset, limit), "{context}: top offset {offset} limit {limit}");
    }
}

/// Asserts that no list shows a player twice.
pub fn assert_no_duplicates(entries: &[leaderboard_semantics::Entry], context: &str) {
    let mut seen = HashSet::new();
    for e in entries {
        assert!(seen.insert(&e.player), "{context}: {} listed twice", e.player);
    }
}

// Seasons of the tests: days from a UTC midnight a week ahead.

pub const DAY: i64 = 86_400_000;
/// The first day of the tests' seasons: a UTC midnight a week ahead, read once
/// per test. Ahead of the real clock, because ingest workers of other tests on
/// the same Redis close every season their (real) clock says is over; a fixed
/// date would pass one day and they would close these seasons under the tests.
pub static DAY0: LazyLock<i64> = LazyLock::new(|| (leaderboard_semantics::clock::system_ms() / DAY + 7) * DAY);

pub fn daily(order: Order, ties: Ties, keep_seasons: u32) -> Rules {
    let reset =
        Reset { every: Every::Day, utc_offset: time::UtcOffset::UTC, weekday: time::Weekday::Monday, span: None };
    Rules { order, ties, reset: Some(reset), keep_seasons, late_grace: Duration::from_secs(10), ..Rules::default() }
}

pub fn season(rules: &Rules, day: i64) -> Season {
    rules.reset.expect("reset").season_at(*DAY0 + day * DAY + 1).expect("season")
}

pub async fn seasonal_board(router: &Router, rules: Rules) -> BoardId {
    let board = unique_board("season");
    record::set_rules(router.store(), &board, RecordedLayout::of(router.spec()), rules).await.expect("rules");
    board
}
