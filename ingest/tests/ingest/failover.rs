//! Redis fails over under load: ingest follows the new primary and loses nothing.

use std::time::Duration;

use leaderboard_contract::{BoardId, ScoreEvent};
use testkit::PrivateSentinel;
use tokio::time::Instant;

use crate::helpers::{
    Topics, Worker, config, counter, oracle_of, produce_events, producer, random_events, router, unique,
    wait_for_committed, wait_for_oracle,
};

/// Produces `first`, waits until the worker has written some of it, then streams `second`
/// in the background (the failover happens while it runs).
pub(crate) async fn first_then_streaming(
    topics: &Topics,
    router: &shard_router::Router,
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
/// offset was committed is in the final state (`WAIT 1`: each acknowledged
/// batch was on a replica before its offsets were stored).
#[tokio::test]
async fn killing_the_sentinel_primary_under_load_loses_nothing() {
    let mut redis = PrivateSentinel::start();
    let topics = Topics::create(3).await;
    let board = BoardId::new(unique("failover")).expect("board");
    let events = random_events(101, &board, 3000, 40_000);
    let (first, second) = events.split_at(16_000);
    let worker = Worker::start(config(&topics, &redis.url(), "single"));
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
    let victim = cluster.owner_of(&shard_router::keys::hash_shard(&board, 6, 0)).expect("a shard in the cluster");
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
