//! Redis fails over under load: ingest follows the new primary and loses nothing.

use std::time::Duration;

use leaderboard_contract::{BoardId, ScoreEvent};
use testkit::PrivateSentinel;
use tokio::time::Instant;

use crate::helpers::{
    Topics, Worker, committed, config, config_with, counter, oracle_of, produce_events, producer, random_events,
    router, unique, wait_for_committed, wait_for_oracle,
};

/// Produces `first`, waits until the worker has written some of it, then streams `second`
/// in the background (the failover happens while it runs).
pub(crate) async fn first_then_streaming(
    topics: &Topics,
    router: &leaderboard_store::Router,
    board: &BoardId,
    first: &[ScoreEvent],
    second: &[ScoreEvent],
) -> tokio::task::JoinHandle<()> {
    let producer = producer();
    produce_events(&producer, &topics.scores, first).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while router.total(board).await.unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no progress before the failover");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (topic, second) = (topics.scores.clone(), second.to_vec());
    tokio::spawn(async move { produce_events(&producer, &topic, &second).await })
}

/// `kill -9` of the Sentinel-managed primary while events stream in: a
/// replica is promoted, the worker finds it by itself, and every event whose
/// offset was committed is in the final state: each acknowledged batch was on
/// every connected replica, and on at least one (`--min-replicas 1`, as the
/// compose deployment runs), before its offsets were stored. Without the
/// floor, the new primary acknowledged alone until the other replica
/// re-attached, and a second failover in that moment (Sentinels misjudging a
/// starved machine) lost those batches.
#[tokio::test]
async fn killing_the_sentinel_primary_under_load_loses_nothing() {
    let mut redis = PrivateSentinel::start();
    let topics = Topics::create(3).await;
    let board = BoardId::new(unique("failover")).expect("board");
    let events = random_events(101, &board, 3000, 40_000);
    let (first, second) = events.split_at(16_000);
    let worker = Worker::start(config_with(&topics, &redis.url(), "single", &["--min-replicas", "1"]));
    let router = router(&redis.url(), "single").await;
    let streaming = first_then_streaming(&topics, &router, &board, first, second).await;
    let old = redis.primary_port();
    let batches_at_kill = counter(&worker.get("/metrics").await.1, "ingest_batches_total");
    redis.kill_node(old);
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(60);
    let promoted = loop {
        if redis.primary_port() != old {
            break killed.elapsed();
        }
        assert!(Instant::now() < deadline, "no replica was promoted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let resumed = loop {
        if counter(&worker.get("/metrics").await.1, "ingest_batches_total") > batches_at_kill + 1.0 {
            break killed.elapsed();
        }
        assert!(Instant::now() < deadline, "ingest never wrote to the new primary");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("failover: replica promoted {promoted:?} after the kill; ingest writing again after {resumed:?}");
    streaming.await.expect("producer task");
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(120)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    // Every surviving node holds the same, complete state.
    let want = oracle_of(&events).board(&board).cloned().expect("board").top(0, 10_000);
    for port in redis.node_ports() {
        let node = crate::helpers::router(&format!("redis://127.0.0.1:{port}"), "single").await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while node.top(&board, 0, 10_000).await.expect("top") != want {
            assert!(
                Instant::now() < deadline,
                "node {port} never caught up with the primary {}:\n{}\nsentinel: {}",
                redis.primary_port(),
                testkit::replication_info(port),
                redis.sentinel_view().replace('\n', " ")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    crate::helpers::wait_for_endpoint(worker.addr, "/readyz", Duration::from_secs(30), |status, _| status == 200).await;
    let report = worker.stop().await;
    assert!(report.redis_errors > 0, "the worker saw the failover: {report:?}");
    assert_eq!(report.dead_lettered, 0);
}

/// A replica dies and comes back: with `--wait-replicas all` ingest stops waiting for it
/// while it is gone (writes go on), and nothing is lost.
#[tokio::test]
async fn a_replica_killed_and_restarted_stops_nothing() {
    let mut redis = PrivateSentinel::start();
    let topics = Topics::create(2).await;
    let board = BoardId::new(unique("replica")).expect("board");
    let events = random_events(111, &board, 2000, 24_000);
    let parts: Vec<&[_]> = events.chunks(8000).collect();
    let producer = producer();
    let worker = Worker::start(config(&topics, &redis.url(), "single"));
    let router = router(&redis.url(), "single").await;
    produce_events(&producer, &topics.scores, parts[0]).await;
    wait_for_oracle(&router, &oracle_of(parts[0]), &board, Duration::from_secs(60)).await;

    let primary = redis.primary_port();
    let replica = redis.node_ports().into_iter().find(|&p| p != primary).expect("a replica");
    redis.kill_node(replica);
    produce_events(&producer, &topics.scores, parts[1]).await;
    wait_for_oracle(&router, &oracle_of(&events[..16_000]), &board, Duration::from_secs(60)).await;

    redis.restart_node(replica);
    redis.wait_until_replicas_online(primary, 2);
    produce_events(&producer, &topics.scores, parts[2]).await;
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(60)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let node = crate::helpers::router(&format!("redis://127.0.0.1:{replica}"), "single").await;
    let want = oracle_of(&events).board(&board).cloned().expect("board").top(0, 10_000);
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.top(&board, 0, 10_000).await.expect("top") != want {
        assert!(Instant::now() < deadline, "the restarted replica never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.stop().await;
}

/// `kill -9` of a Redis Cluster primary while events stream in: its replica takes over, the
/// worker follows the new slot map by itself, and nothing is lost.
#[tokio::test]
async fn killing_a_cluster_primary_under_load_loses_nothing() {
    let mut cluster = testkit::PrivateCluster::start();
    let topics = Topics::create(3).await;
    let board = BoardId::new(unique("cluster-failover")).expect("board");
    let events = random_events(121, &board, 3000, 40_000);
    let (first, second) = events.split_at(16_000);
    let worker = Worker::start(config(&topics, &cluster.url(), "hash:6"));
    let router = router(&cluster.url(), "hash:6").await;
    let streaming = first_then_streaming(&topics, &router, &board, first, second).await;
    // The primary holding one of the board's shards.
    let victim =
        cluster.owner_of(&leaderboard_store::layout::keys::hash_shard(&board, 6, 0)).expect("a shard in the cluster");
    // The fault is the primary's death with its replica streaming (one that had stopped would
    // take acknowledged writes with it, and ingest would rightly judge the store lost).
    cluster.wait_replica_caught_up(victim);
    cluster.kill_node(victim);
    let killed = Instant::now();
    cluster.wait_until_ok_without(victim);
    eprintln!("cluster failover: a replica took over {:?} after the kill", killed.elapsed());
    streaming.await.expect("producer task");
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(120)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let report = worker.stop().await;
    // The cluster client may absorb the failover in its own retries: no error need reach ingest.
    eprintln!("cluster failover: {} failed write attempts reached the worker", report.redis_errors);
    assert_eq!(report.dead_lettered, 0);
}

/// `--min-replicas 1`: a primary cut off from every replica (by construction: the replicas are
/// paused and their links closed) acknowledges nothing. The worker's batches reach the primary
/// and then wait, visibly, for a replica; no offset is stored, so a failover to one of those
/// replicas could lose no acknowledged batch. With `all` alone (0 connected, 0 waited for), the
/// same batches are acknowledged on the primary only.
#[tokio::test]
async fn a_primary_cut_off_from_its_replicas_acknowledges_nothing_with_a_floor() {
    let redis = PrivateSentinel::start();
    let topics = Topics::create(2).await;
    let (early, late) =
        (BoardId::new(unique("floor-a")).expect("board"), BoardId::new(unique("floor-b")).expect("board"));
    let first = random_events(141, &early, 500, 4000);
    let second = random_events(142, &late, 500, 4000);
    let producer = producer();
    let worker = Worker::start(config_with(&topics, &redis.url(), "single", &["--min-replicas", "1"]));
    let router = router(&redis.url(), "single").await;
    produce_events(&producer, &topics.scores, &first).await;
    wait_for_oracle(&router, &oracle_of(&first), &early, Duration::from_secs(60)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let before = committed(&topics).await;

    redis.cut_off_replicas();
    produce_events(&producer, &topics.scores, &second).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while router.total(&late).await.unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the worker never wrote to the primary");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A WAIT fell short: the writer holds the batch and says so.
    let blocked = r#"ingest_blocked{step="replicas"} 1"#;
    while !worker.get("/metrics").await.1.contains(blocked) {
        assert!(Instant::now() < deadline, "the batch written while cut off was never held for the replicas");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(committed(&topics).await, before, "nothing written while cut off was acknowledged");

    redis.resume_replicas();
    wait_for_oracle(&router, &oracle_of(&second), &late, Duration::from_secs(60)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    assert!(!worker.get("/metrics").await.1.contains(blocked), "the replicas' return unblocked the writer");
    let report = worker.stop().await;
    assert_eq!(report.dead_lettered, 0);
}

/// A Cluster primary fails over after the worker of a new deployment made the store's epoch and
/// before the copy on that primary reached its replica: the promoted replica lacks it. By
/// construction: the replica is cut off (paused, link closed) before the worker starts, and the
/// primary is killed once it holds its copy and the worker's wait for the replica fell short
/// twice. Nothing was ever acknowledged, so this is a
/// creation cut short, not a loss: the worker waits for the replicas before its first batch
/// (also on the retry that finds every copy still there), finishes the epoch on the promoted
/// node once the failover is over, and applies everything. Before, it went on without the
/// replica, and the failover left the store judged lost for good.
#[tokio::test]
async fn a_failover_before_the_new_epoch_reached_a_replica_is_no_loss() {
    let mut cluster = testkit::PrivateCluster::start();
    let primary = cluster.primaries()[0];
    let replica = cluster.replica_of(primary).expect("the primary's replica");
    cluster.cut_off(replica, primary);
    let topics = Topics::create(3).await;
    let board = BoardId::new(unique("epoch-failover")).expect("board");
    let events = random_events(151, &board, 1000, 6000);
    produce_events(&producer(), &topics.scores, &events).await;
    let worker = Worker::start(config_with(&topics, &cluster.url(), "hash:6", &["--wait-replicas", "1"]));
    // The primary holds its copy, and a second `WAIT` fell short after the first: the worker's
    // start tried again (it must wait again, though every copy is there) or, as before the fix,
    // went on to write a batch without the replica.
    let deadline = Instant::now() + Duration::from_secs(60);
    while testkit::keys_matching(primary, "lb:epoch*").is_empty() || testkit::command_calls(primary, "wait") < 2 {
        assert!(Instant::now() < deadline, "the worker never made the store's epoch and waited twice");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.kill_node(primary);
    cluster.resume_node(replica);
    // Still a replica (a failover takes longer than the node timeout): the copy never reached it.
    assert!(testkit::is_replica(replica), "promoted too early to check what it holds");
    assert_eq!(testkit::keys_matching(replica, "lb:epoch*"), Vec::<String>::new(), "the copy reached the replica");
    cluster.wait_until_ok_without(primary);
    // `--wait-replicas 1` on the promoted node needs a replica: the old primary, back.
    cluster.restart_node(primary);
    let router = router(&cluster.url(), "hash:6").await;
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(120)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    assert!(!worker.get("/metrics").await.1.contains("ingest_store_lost 1"), "judged lost");
    let report = worker.stop().await;
    assert_eq!(report.dead_lettered, 0);
}
