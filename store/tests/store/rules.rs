//! Board rules on every layout, one Redis and the Cluster, against the oracle.

use leaderboard_contract::MAX_SCORE;
use leaderboard_semantics::{Order, Rules, ScoreUpdate, Ties};
use leaderboard_store::layout::record::{self, RecordedLayout};
use leaderboard_store::{Error, Router};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::helpers::{Workload, assert_matches_oracle, player, router, unique_board};

const PLAYERS: usize = 80;

fn every_rule() -> Vec<Rules> {
    let mut all = Vec::new();
    for order in [Order::Desc, Order::Asc] {
        for ties in [Ties::Shared, Ties::Earliest] {
            all.push(Rules { order, ties, ..Rules::default() });
        }
    }
    all
}

/// Random streams (duplicates, replays, reordering, many ties on scores and
/// on times) on boards with each order and tie rule: standings, pages,
/// around-lists, lookups and percentiles equal the oracle's.
async fn check(cluster: bool, layout: &str, seed: u64) {
    let router = router(cluster, layout).await;
    let recorded: RecordedLayout = RecordedLayout::of(router.spec());
    for (i, rules) in every_rule().into_iter().enumerate() {
        let board = unique_board("rules");
        record::set_rules(router.store(), &board, recorded, rules).await.expect("set rules");
        let seed = seed * 10 + i as u64;
        // Scores 0..120, times 0..40: equal scores reached at equal and different times.
        let workload = Workload::random_in(seed, std::slice::from_ref(&board), PLAYERS, 1500, 0..=120, 40);
        for batch in &workload.batches {
            router.apply(batch).await.expect("apply");
        }
        let oracle = workload.oracle_with(&[(board.clone(), rules)]);
        let context = format!("{layout} cluster={cluster} {rules}");
        assert_matches_oracle(&router, &oracle, &board, PLAYERS + 2, &context).await;
        let expected = oracle.board(&board).expect("board");
        let mut rng = StdRng::seed_from_u64(seed);
        for round in 0..15 {
            let n = rng.random_range(1..=40);
            let players: Vec<_> = (0..n).map(|_| player(rng.random_range(0..PLAYERS + 5))).collect();
            let got = router.lookup(&board, &players).await.expect("lookup");
            assert_eq!(got, expected.lookup(&players), "{context}: lookup round {round}");
        }
        assert_eq!(router.stats(&board).await.expect("stats").rules, rules, "{context}: stats show the rules");
    }
}

#[tokio::test]
async fn single_honours_every_rule() {
    check(false, "single", 1).await;
}

#[tokio::test]
async fn hash_honours_every_rule() {
    check(false, "hash:4", 2).await;
}

#[tokio::test]
async fn range_honours_every_rule() {
    // Boundaries inside the key range of both orders, so players cross them as they improve.
    check(false, &format!("range:30,60,{},{}", MAX_SCORE - 60, MAX_SCORE - 30), 3).await;
}

#[tokio::test]
async fn cluster_single_honours_every_rule() {
    check(true, "single", 4).await;
}

#[tokio::test]
async fn cluster_hash_honours_every_rule() {
    check(true, "hash:5", 5).await;
}

#[tokio::test]
async fn cluster_range_honours_every_rule() {
    check(true, &format!("range:50,{},{}", MAX_SCORE - 90, MAX_SCORE - 40), 6).await;
}

/// Extreme scores keep their exact order and value on `asc` and `earliest`
/// boards (2^53 - 1 and 0 as ranking keys, times up to 2^53 - 1 in members).
#[tokio::test]
async fn extreme_scores_and_times_stay_exact() {
    for layout in ["single", "hash:3", "range:10"] {
        let router = router(false, layout).await;
        let rules = Rules { order: Order::Asc, ties: Ties::Earliest, ..Rules::default() };
        let board = unique_board("extreme");
        record::set_rules(router.store(), &board, RecordedLayout::of(router.spec()), rules).await.expect("rules");
        let update = |i: usize, score: u64, time_ms: u64| ScoreUpdate {
            board: board.clone(),
            player: player(i),
            score,
            time_ms,
            meta: None,
            source: None,
        };
        let updates = [
            update(0, MAX_SCORE, MAX_SCORE),
            update(1, 0, MAX_SCORE),
            update(2, 0, 0),
            update(3, MAX_SCORE - 1, 1),
            update(4, MAX_SCORE, 0),
        ];
        router.apply(&updates).await.expect("apply");
        let mut oracle = leaderboard_semantics::Oracle::new();
        oracle.set_rules(&board, rules);
        for u in &updates {
            oracle.apply(u);
        }
        assert_matches_oracle(&router, &oracle, &board, 5, layout).await;
        let top: Vec<(String, u64, u64)> = router
            .top(&board, 0, 10)
            .await
            .expect("top")
            .entries
            .into_iter()
            .map(|e| (e.player.to_string(), e.score, e.rank))
            .collect();
        let row = |p: &str, s: u64, r: u64| (p.to_string(), s, r);
        assert_eq!(
            top,
            [
                row("p2", 0, 1),
                row("p1", 0, 2),
                row("p3", MAX_SCORE - 1, 3),
                row("p4", MAX_SCORE, 4),
                row("p0", MAX_SCORE, 5)
            ]
        );
    }
}

/// A writer that prepared a batch under other order or ties (the board was
/// created meanwhile) is refused before anything is written, so it can
/// prepare the batch again; a `range` board created with rules has its metadata at once.
#[tokio::test]
async fn writes_prepared_under_other_rules_are_refused_and_range_boards_start_whole() {
    let router = router(false, "range:100,200").await;
    let board = unique_board("expect");
    let asc = Rules { order: Order::Asc, ..Rules::default() };
    router.set_rules(&board, asc).await.expect("create");
    assert_eq!(router.stats(&board).await.expect("stats").shards.len(), 3, "the metadata exists before any write");
    let update =
        ScoreUpdate { board: board.clone(), player: player(1), score: 5, time_ms: 0, meta: None, source: None };
    let prepared_as_desc = std::collections::HashMap::from([(board.clone(), Rules::default())]);
    let err = router.apply_expecting(std::slice::from_ref(&update), &prepared_as_desc).await.expect_err("refused");
    assert!(matches!(err, Error::RulesChanged(_)), "{err}");
    assert_eq!(router.total(&board).await.expect("total"), 0, "nothing written");
    let prepared_as_asc = std::collections::HashMap::from([(board.clone(), asc)]);
    router.apply_expecting(std::slice::from_ref(&update), &prepared_as_asc).await.expect("same rules");
    assert_eq!(router.standing(&board, &player(1)).await.expect("standing").expect("present").score, 5);
}

/// Order and ties are fixed once a board exists; bounds may change; bad bounds are refused.
#[tokio::test]
async fn order_and_ties_are_fixed_and_bounds_change() {
    let router: Router = router(false, "single").await;
    let store = router.store();
    let board = unique_board("fixed");
    let single = RecordedLayout::Single;
    let earliest = Rules { ties: Ties::Earliest, ..Rules::default() };
    let created = record::set_rules(store, &board, single, earliest).await.expect("create");
    assert_eq!(created.rules, earliest);
    let bounded = Rules { min_score: 10, max_score: 20, ..earliest };
    assert_eq!(record::set_rules(store, &board, single, bounded).await.expect("bounds").rules, bounded);
    let err = record::set_rules(store, &board, single, Rules::default()).await.expect_err("ties fixed");
    assert!(matches!(err, Error::RulesFixed { .. }), "{err}");
    let bad = Rules { min_score: 30, max_score: 20, ..earliest };
    let err = record::set_rules(store, &board, single, bad).await.expect_err("bad bounds");
    assert!(matches!(err, Error::InvalidRules(_)), "{err}");
    assert_eq!(router.rules(&board).await.expect("rules"), bounded);
    // A board written first has the defaults, and keeps its order and ties.
    let written = unique_board("written");
    let u = ScoreUpdate { board: written.clone(), player: player(1), score: 5, time_ms: 0, meta: None, source: None };
    router.apply(std::slice::from_ref(&u)).await.expect("apply");
    assert_eq!(router.rules(&written).await.expect("rules"), Rules::default());
    let err = record::set_rules(store, &written, single, earliest).await.expect_err("fixed");
    assert!(matches!(err, Error::RulesFixed { .. }), "{err}");
}

/// An `asc`, `earliest` board moves through every layout and a rebalance
/// with its times intact, and the old layouts leave no player index behind.
#[tokio::test]
async fn earliest_boards_keep_their_order_through_migrations_and_rebalances() {
    let options = leaderboard_store::RebalanceOptions {
        chunk: 37,
        max_chunks: None,
        grace: std::time::Duration::from_millis(1100),
    };
    let rules = Rules { order: Order::Asc, ties: Ties::Earliest, ..Rules::default() };
    let board = unique_board("moves");
    let first = router(false, "single").await;
    record::set_rules(first.store(), &board, RecordedLayout::Single, rules).await.expect("rules");
    let workload = Workload::random_in(99, std::slice::from_ref(&board), PLAYERS, 1200, 0..=150, 30);
    for batch in &workload.batches {
        first.apply(batch).await.expect("apply");
    }
    let oracle = workload.oracle_with(&[(board.clone(), rules)]);
    let steps = ["hash:4", "range", "single"];
    for to in steps {
        let (current, _) = Router::for_board(first.store(), &board, leaderboard_store::RouterOptions::default())
            .await
            .expect("record")
            .expect("board exists");
        let target: leaderboard_store::LayoutSpec = if to == "range" {
            let bounds = current.propose_boundaries(&board, 3).await.expect("propose");
            leaderboard_store::LayoutSpec::Range { boundaries: bounds }
        } else {
            to.parse().expect("layout")
        };
        current.migrate_layout(&board, &target, options).await.expect("migrate");
        let (moved, _) = Router::for_board(first.store(), &board, leaderboard_store::RouterOptions::default())
            .await
            .expect("record")
            .expect("board exists");
        if to == "range" {
            let bounds = moved.propose_boundaries(&board, 5).await.expect("propose");
            moved.rebalance(&board, bounds, options).await.expect("rebalance");
        }
        assert_matches_oracle(&moved, &oracle, &board, PLAYERS, &format!("after {to}")).await;
    }
    tokio::time::sleep(options.grace + std::time::Duration::from_millis(200)).await;
    let (last, _) = Router::for_board(first.store(), &board, leaderboard_store::RouterOptions::default())
        .await
        .expect("record")
        .expect("board exists");
    last.delete_retired_layouts(&board, options.grace).await.expect("cleanup");
    let mut keys: Vec<String> =
        first.store().query(redis::cmd("KEYS").arg(format!("lb:{{{board}*"))).await.expect("keys");
    keys.sort();
    let expected = [
        format!("lb:{{{board}}}:layout"),
        format!("lb:{{{board}}}:m"),
        format!("lb:{{{board}}}:t"),
        format!("lb:{{{board}}}:z"),
    ];
    assert_eq!(keys, expected, "only the single layout's keys are left");
}
