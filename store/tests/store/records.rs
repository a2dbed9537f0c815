//! The layout recorded with each board: mismatches fail loudly, unknown boards stay unknown.

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::ScoreUpdate;
use leaderboard_store::{Error, RedisTarget, Router, RouterOptions, Store, StoreOptions, layout::record};
use testkit::PrivateRedis;

async fn private_router(redis: &PrivateRedis, layout: &str) -> Router {
    let store = Store::connect(&RedisTarget::parse(&redis.url()).expect("url"), StoreOptions::default())
        .await
        .expect("private redis");
    Router::new(store, layout.parse().expect("layout"), RouterOptions::default())
}

async fn dbsize(router: &Router) -> u64 {
    router.store().query(&redis::cmd("DBSIZE")).await.expect("dbsize")
}

fn update(board: &BoardId, player: &str, score: u64) -> ScoreUpdate {
    ScoreUpdate {
        board: board.clone(),
        player: PlayerId::new(player).expect("id"),
        score,
        time_ms: 0,
        meta: None,
        source: None,
    }
}

fn is_mismatch(result: Result<impl std::fmt::Debug, Error>, recorded: &str, configured: &str) -> bool {
    match result {
        Err(Error::LayoutMismatch { recorded: r, configured: c, .. }) => r == recorded && c == configured,
        other => panic!("expected a layout mismatch, got {other:?}"),
    }
}

/// A board written as `single` refuses a `hash:4` router, for reads and
/// writes, with an error naming both layouts, and nothing is written.
#[tokio::test]
async fn a_router_with_another_layout_fails_naming_both() {
    let redis = PrivateRedis::start();
    let single = private_router(&redis, "single").await;
    let board = BoardId::new("recorded").expect("board");
    single.apply(&[update(&board, "a", 5), update(&board, "b", 7)]).await.expect("apply");
    assert_eq!(
        record::recorded(single.store(), &board).await.expect("record").map(|r| r.to_stored()).as_deref(),
        Some("single")
    );
    assert_eq!(record::boards(single.store()).await.expect("boards"), std::slice::from_ref(&board));
    let keys = dbsize(&single).await;

    let hash = private_router(&redis, "hash:4").await;
    let player = PlayerId::new("a").expect("id");
    assert!(is_mismatch(hash.apply(&[update(&board, "c", 9)]).await, "single", "hash:4"));
    assert!(is_mismatch(hash.standing(&board, &player).await, "single", "hash:4"));
    assert!(is_mismatch(hash.top(&board, 0, 10).await, "single", "hash:4"));
    assert!(is_mismatch(hash.around(&board, &player, 2).await, "single", "hash:4"));
    assert!(is_mismatch(hash.total(&board).await, "single", "hash:4"));
    let message = hash.stats(&board).await.expect_err("mismatch").to_string();
    assert!(message.contains("single") && message.contains("hash:4"), "{message}");
    assert_eq!(dbsize(&single).await, keys, "the mismatched router wrote nothing");

    // The right layout, with other boundaries for range, is fine.
    let range = private_router(&redis, "range:10").await;
    let other = BoardId::new("ranged").expect("board");
    range.apply(&[update(&other, "x", 3)]).await.expect("range write");
    let range_elsewhere = private_router(&redis, "range:500,1000").await;
    assert_eq!(range_elsewhere.total(&other).await.expect("range read"), 1, "boundaries live in the metadata");
}

/// Reading 10,000 boards that do not exist, on every layout, creates no key.
#[tokio::test]
async fn reading_unknown_boards_creates_nothing_on_any_layout() {
    let redis = PrivateRedis::start();
    let player = PlayerId::new("nobody").expect("id");
    for layout in ["single", "hash:8", "range:100,200"] {
        let router = private_router(&redis, layout).await;
        for i in 0..10_000 {
            let board = BoardId::new(format!("ghost-{i}")).expect("board");
            assert_eq!(router.top(&board, 0, 10).await.expect("top").total, 0);
            if i % 100 == 0 {
                assert_eq!(router.standing(&board, &player).await.expect("standing"), None);
                assert_eq!(router.around(&board, &player, 2).await.expect("around"), None);
                assert_eq!(router.stats(&board).await.expect("stats").total, 0);
            }
        }
        assert_eq!(dbsize(&router).await, 0, "{layout}: reads created keys");
    }
}

/// Deleting a board removes every key of it, on every layout, and its record: the name is free
/// for another layout afterwards.
#[tokio::test]
async fn deleting_a_board_leaves_no_key_and_frees_its_name() {
    let redis = PrivateRedis::start();
    let board = BoardId::new("doomed").expect("board");
    for layout in ["single", "hash:4", "range:10,20"] {
        let router = private_router(&redis, layout).await;
        let updates: Vec<ScoreUpdate> = (0..40).map(|i| update(&board, &format!("p{i}"), i)).collect();
        router.apply(&updates).await.expect("apply");
        if layout.starts_with("range") {
            let options = leaderboard_store::RebalanceOptions {
                grace: std::time::Duration::from_millis(1),
                ..Default::default()
            };
            router.rebalance(&board, vec![5, 15, 30], options).await.expect("rebalance");
        }
        assert!(dbsize(&router).await > 0);
        router.delete_board(&board).await.expect("delete");
        assert_eq!(dbsize(&router).await, 0, "{layout}: keys left after the delete");
        assert!(record::boards(router.store()).await.expect("boards").is_empty());
    }
}

/// A Cluster primary dies while the store's epoch is read (by construction: the fail point holds
/// the read after it listed the primaries, before it reads their copies): the read is an error
/// or the intact epoch, never a copy gone (which ingest takes for a wiped store and stops on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the fail points: run with --features leaderboard-store/failpoints"
)]
async fn a_primary_killed_while_the_epoch_is_read_is_not_a_lost_store() {
    use leaderboard_store::marker::epoch::{self, State};
    use leaderboard_store::{RedisTarget, Store, StoreOptions};
    let mut cluster = testkit::PrivateCluster::start();
    let target = RedisTarget::parse(&format!("cluster:{}", cluster.url())).expect("cluster urls");
    let store = Store::connect(&target, StoreOptions::default()).await.expect("cluster");
    let State::Intact(made) = epoch::create_new(&store).await.expect("epoch") else { panic!("no epoch made") };
    let held = testkit::FailHold::new("store::epoch_read_between_slots_and_copies");
    let reader = {
        let store = store.clone();
        tokio::spawn(async move { epoch::read(&store).await })
    };
    assert!(held.reached(std::time::Duration::from_secs(10)).await, "the read never got there");
    let victim = cluster.primaries()[0];
    cluster.kill_node(victim);
    held.release();
    let read = reader.await.expect("reader");
    match &read {
        Err(_) => {}
        Ok(State::Intact(e)) => assert_eq!(e, &made),
        Ok(other) => panic!("a dead primary read as {other:?}: a false loss"),
    }
}
