//! Bounded Redis work per request: a `hash` page reads about its own length, not `shards * end`.

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::{Oracle, ScoreUpdate};
use leaderboard_store::{RedisTarget, Router, RouterOptions, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use testkit::PrivateRedis;

async fn private_router(redis: &PrivateRedis, layout: &str) -> Router {
    let store = Store::connect(&RedisTarget::parse(&redis.url()).expect("url"), StoreOptions::default())
        .await
        .expect("private redis");
    Router::new(store, layout.parse().expect("layout"), RouterOptions::default())
}

/// Bytes Redis has sent to clients so far.
async fn output_bytes(router: &Router) -> u64 {
    let info: String = router.store().query(redis::cmd("INFO").arg("stats")).await.expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_net_output_bytes")
}

fn check_page(oracle: &Oracle, board: &BoardId, page: &leaderboard_semantics::Page, offset: u64, limit: u64) {
    let want = oracle.board(board).expect("board").top(offset, limit);
    assert_eq!(page, &want, "page {offset}+{limit}");
}

/// `hash:256`, 20,000 players: the first page reads a small multiple of its
/// 100 rows (the old fan-out read 100 rows from each of the 256 shards), and
/// deep pages stay exact.
#[tokio::test]
async fn a_hash_page_reads_about_its_own_length() {
    let redis = PrivateRedis::start();
    let router = private_router(&redis, "hash:256").await;
    let board = BoardId::new("bounded").expect("board");
    let mut rng = StdRng::seed_from_u64(7);
    let updates: Vec<ScoreUpdate> = (0..20_000)
        .map(|i| ScoreUpdate {
            board: board.clone(),
            player: PlayerId::new(format!("p{i}")).expect("id"),
            score: rng.random_range(0..1_000_000),
            time_ms: 0,
            meta: None,
            source: None,
        })
        .collect();
    for chunk in updates.chunks(5000) {
        router.apply(chunk).await.expect("apply");
    }
    let mut oracle = Oracle::new();
    for u in &updates {
        oracle.apply(u);
    }

    let before = output_bytes(&router).await;
    let page = router.top(&board, 0, 100).await.expect("top");
    let spent = output_bytes(&router).await - before;
    check_page(&oracle, &board, &page, 0, 100);
    // 256 shards * 100 rows of ~30 bytes each would be ~770 KB.
    assert!(spent < 150_000, "the first page cost {spent} bytes of replies");
    for (offset, limit) in [(100, 100), (9_000, 1_000), (19_990, 50)] {
        let page = router.top(&board, offset, limit).await.expect("top");
        check_page(&oracle, &board, &page, offset, limit);
    }
}

/// The best players all on one shard (the worst case): more rounds, same answer.
#[tokio::test]
async fn a_skewed_hash_board_still_pages_exactly() {
    let redis = PrivateRedis::start();
    let router = private_router(&redis, "hash:16").await;
    let board = BoardId::new("skewed").expect("board");
    let updates: Vec<ScoreUpdate> = (0..3_000)
        .map(|i| {
            let player = PlayerId::new(format!("s{i}")).expect("id");
            // Shard 3's players score high, everyone else low; ties at 7 across shards.
            let score = if leaderboard_store::layout::hash::shard_of(&player, 16) == 3 { 1_000 + i } else { 7 };
            ScoreUpdate { board: board.clone(), player, score, time_ms: 0, meta: None, source: None }
        })
        .collect();
    router.apply(&updates).await.expect("apply");
    let mut oracle = Oracle::new();
    for u in &updates {
        oracle.apply(u);
    }
    for (offset, limit) in [(0, 100), (50, 200), (150, 100), (400, 1000)] {
        let page = router.top(&board, offset, limit).await.expect("top");
        check_page(&oracle, &board, &page, offset, limit);
    }
}
