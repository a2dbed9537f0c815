//! Adaptive boundaries and the online rebalance.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leaderboard_contract::PlayerId;
use leaderboard_semantics::{Oracle, ScoreUpdate};
use leaderboard_store::{Error, RebalanceOptions, RebalanceOutcome, Router, RouterOptions};
use tokio::time::Instant;

use crate::helpers::{
    Workload, assert_matches_oracle, assert_no_duplicates, assert_whole_page, fixed_players, router, store,
    unique_board,
};

#[tokio::test]
async fn proposed_boundaries_split_players_evenly() {
    let board = unique_board("propose");
    let router = router(false, "range:1000000").await;
    // A skewed distribution: most players have low scores.
    let updates: Vec<ScoreUpdate> = (0..4000u64)
        .map(|i| ScoreUpdate {
            board: board.clone(),
            player: crate::helpers::player(i as usize),
            score: i * i / 1000,
            time_ms: 0,
            meta: None,
            source: None,
        })
        .collect();
    router.apply(&updates).await.expect("apply");
    let boundaries = router.propose_boundaries(&board, 4).await.expect("propose");
    let mut scores: Vec<u64> = updates.iter().map(|u| u.score).collect();
    scores.sort_unstable();
    assert_eq!(boundaries, leaderboard_store::equal_population(&scores, 4));
    let outcome = router.rebalance(&board, boundaries, RebalanceOptions::default()).await.expect("rebalance");
    assert!(matches!(outcome, RebalanceOutcome::Done { generation: 1, copied: 4000 }), "{outcome:?}");
    let stats = router.stats(&board).await.expect("stats");
    assert_eq!(stats.shards.len(), 4);
    for shard in &stats.shards {
        assert!((900..=1100).contains(&shard.size), "uneven shard {shard:?}");
    }
}

#[tokio::test]
async fn interrupted_rebalance_resumes_and_refuses_other_targets() {
    for cluster in [false, true] {
        let board = unique_board("resume");
        let router = router(cluster, "range:50").await;
        let workload = Workload::random(5, std::slice::from_ref(&board), 300, 1500, 200);
        for batch in &workload.batches {
            router.apply(batch).await.expect("apply");
        }
        let target = vec![20, 60, 120];
        let options = RebalanceOptions { chunk: 20, max_chunks: Some(2), ..RebalanceOptions::default() };
        let first = router.rebalance(&board, target.clone(), options).await.expect("first step");
        assert!(matches!(first, RebalanceOutcome::Paused { .. }), "{first:?}");
        assert!(router.stats(&board).await.expect("stats").rebalancing.expect("range"));
        let other = router.rebalance(&board, vec![10], options).await;
        assert!(matches!(other, Err(Error::RebalanceConflict { .. })), "{other:?}");
        // Writes while paused go to both generations.
        let late = Workload::random(6, std::slice::from_ref(&board), 300, 300, 200);
        for batch in &late.batches {
            router.apply(batch).await.expect("apply");
        }
        // A fresh router, as after a crash, resumes the same rebalance.
        let resumed = crate::helpers::router(cluster, "range:50").await;
        let done = resumed.rebalance(&board, target.clone(), RebalanceOptions::default()).await.expect("resume");
        assert!(matches!(done, RebalanceOutcome::Done { generation: 1, .. }), "{done:?}");
        let mut oracle = workload.oracle();
        for u in late.batches.iter().flatten() {
            oracle.apply(u);
        }
        assert_matches_oracle(&router, &oracle, &board, 300, &format!("after resume, cluster={cluster}")).await;
        let stats = router.stats(&board).await.expect("stats");
        assert_eq!((stats.generation, stats.rebalancing), (Some(1), Some(false)));
        assert_eq!(stats.layout, "range:20,60,120");
        let mut old_keys = 0u64;
        for i in 0..2 {
            let key = leaderboard_store::layout::keys::range_shard(&board, 0, i);
            old_keys += router.store().query::<u64>(redis::cmd("EXISTS").arg(key)).await.expect("exists");
        }
        assert_eq!(old_keys, 0, "old generation keys must be deleted");
        assert_eq!(
            router.rebalance(&board, target, RebalanceOptions::default()).await.expect("no-op"),
            RebalanceOutcome::Unchanged
        );
    }
}

/// Writers, a rebalance and readers run together. Afterwards the board equals
/// the oracle; during the run no list shows a player twice or out of order,
/// and the rank of players whose score never changes stays within the bound.
#[tokio::test]
async fn writers_rebalance_and_readers_in_parallel() {
    for cluster in [false, true] {
        let board = unique_board("concurrent");
        let router = router(cluster, "range:100,200").await;
        let fixed = fixed_players(&board);
        router.apply(&fixed).await.expect("fixed");
        let writers_data: Vec<Workload> = (0..2)
            .map(|w| Workload::random(100 + w, std::slice::from_ref(&board), 400, 6000, 500).meta_by_score())
            .collect();
        let mut oracle = Oracle::new();
        for u in &fixed {
            oracle.apply(u);
        }
        let before = oracle.clone();
        for w in &writers_data {
            for u in w.batches.iter().flatten() {
                oracle.apply(u);
            }
        }
        let expected = oracle.board(&board).expect("board").clone();
        let initial = before.board(&board).expect("board").clone();
        // A player moving up counts twice while its batch is in flight: each writer has at most one batch in flight.
        let max_batch = writers_data.len() as u64
            * writers_data.iter().flat_map(|w| &w.batches).map(Vec::len).max().unwrap_or(0) as u64;

        let stop = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for r in 0..2 {
            let (router, board, stop, fixed) = (router.clone(), board.clone(), stop.clone(), fixed.clone());
            let (initial, expected) = (initial.clone(), expected.clone());
            readers.push(tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let page = router.top(&board, 0, 100).await.expect("top");
                    // A read that began on the old generation finishes on it: never a short page.
                    assert_whole_page(&page, "top during rebalance");
                    let f = &fixed[(reads as usize + r) % fixed.len()].player;
                    if let Some(around) = router.around(&board, f, 5).await.expect("around") {
                        assert_no_duplicates(&around, "around during rebalance");
                    }
                    let standing = router.standing(&board, f).await.expect("standing").expect("fixed player present");
                    let low = initial.standing(f).expect("present").rank.saturating_sub(max_batch);
                    let high = expected.standing(f).expect("present").rank + max_batch;
                    assert!(
                        (low..=high).contains(&standing.rank),
                        "rank {} of {f} outside {low}..={high}",
                        standing.rank
                    );
                    reads += 1;
                }
                reads
            }));
        }
        let writers: Vec<_> = writers_data
            .into_iter()
            .map(|w| {
                let router = router.clone();
                tokio::spawn(async move {
                    for batch in &w.batches {
                        router.apply(batch).await.expect("apply");
                    }
                })
            })
            .collect();
        let boundaries = vec![50, 150, 250, 400];
        let rebalancer = {
            let (router, board) = (router.clone(), board.clone());
            tokio::spawn(async move {
                router
                    .rebalance(&board, boundaries, RebalanceOptions { chunk: 25, max_chunks: None, grace: GRACE })
                    .await
                    .expect("rebalance")
            })
        };
        for w in writers {
            w.await.expect("writer");
        }
        let outcome = rebalancer.await.expect("rebalancer");
        assert!(matches!(outcome, RebalanceOutcome::Done { .. }), "{outcome:?}");
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.await.expect("reader") > 0, "reader made no reads");
        }
        let players = 400;
        assert_matches_oracle(&router, &oracle, &board, players, &format!("after concurrent run, cluster={cluster}"))
            .await;
        for f in &fixed {
            assert_eq!(router.standing(&board, &f.player).await.expect("standing"), expected.standing(&f.player));
        }
    }
}

/// Reads in these tests take milliseconds; the grace only has to outlast them.
const GRACE: Duration = Duration::from_millis(500);

/// The replaced generation's keys outlive the switch by the grace period, so
/// a read whose first round trip was on them finds them for its second.
#[tokio::test]
async fn replaced_generation_outlives_the_switch_by_the_grace() {
    let store = store(false).await;
    let router = Router::new(store.clone(), "range:100".parse().expect("layout"), RouterOptions::default());
    let board = unique_board("grace");
    let updates: Vec<ScoreUpdate> = (0..50u64)
        .map(|i| ScoreUpdate {
            board: board.clone(),
            player: PlayerId::new(format!("g{i}")).expect("id"),
            score: i * 5,
            time_ms: 0,
            meta: None,
            source: None,
        })
        .collect();
    router.apply(&updates).await.expect("apply");
    let old_key = leaderboard_store::layout::keys::range_shard(&board, 0, 0);
    let grace = Duration::from_secs(2);
    let rebalancer = {
        let (router, board) = (router.clone(), board.clone());
        tokio::spawn(async move {
            let options = RebalanceOptions { chunk: 10, max_chunks: None, grace };
            router.rebalance(&board, vec![60, 120], options).await.expect("rebalance")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while router.stats(&board).await.expect("stats").generation != Some(1) {
        assert!(Instant::now() < deadline, "the rebalance never switched");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let switched = Instant::now();
    let exists: bool = store.query(redis::cmd("EXISTS").arg(&old_key)).await.expect("exists");
    assert!(exists, "the old generation was deleted at the switch");
    assert!(matches!(rebalancer.await.expect("rebalancer"), RebalanceOutcome::Done { generation: 1, .. }));
    assert!(switched.elapsed() >= Duration::from_millis(1900), "deleted before the grace ran out");
    let exists: bool = store.query(redis::cmd("EXISTS").arg(&old_key)).await.expect("exists");
    assert!(!exists, "the old generation is deleted after the grace");
    let meta: String =
        store.query(redis::cmd("GET").arg(leaderboard_store::layout::keys::range_meta(&board))).await.expect("meta");
    assert!(!meta.contains("retired"), "the metadata forgets the deleted generation: {meta}");
}
