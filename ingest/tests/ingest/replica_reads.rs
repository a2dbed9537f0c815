//! The api reads from replicas while Redis fails: answers keep coming, and
//! `as_of` stays honest because the watermark is read from the node the data comes from.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use leaderboard_contract::BoardId;
use leaderboard_semantics::ScoreUpdate;
use testkit::{PrivateSentinel, command_calls};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::failover::first_then_streaming;
use crate::helpers::{
    Api, Topics, Worker, as_of, config, http_get, oracle_of, random_events, router, unique, wait_for_oracle,
};

/// Reads `path` every 10 ms until stopped; counts answers that were not 200.
fn keep_reading(api: &Api, path: String, stop: CancellationToken) -> (Arc<AtomicU64>, tokio::task::JoinHandle<u64>) {
    let failed = Arc::new(AtomicU64::new(0));
    let (addr, failures) = (api.addr, failed.clone());
    let task = tokio::spawn(async move {
        let mut reads = 0;
        while !stop.is_cancelled() {
            let (status, body) = http_get(addr, &path).await;
            if status != 200 {
                failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("replica reads: {path} answered {status}: {body}");
            }
            reads += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        reads
    });
    (failed, task)
}

/// `kill -9` of the Sentinel primary under load while the api reads from
/// replicas: the top-N never fails, ranks keep answering from the replicas,
/// and once `as_of` passes the time the last event was produced, the answer
/// is the oracle's, read from a replica.
#[tokio::test]
async fn api_reads_from_replicas_through_a_sentinel_failover() {
    let mut redis = PrivateSentinel::start();
    let topics = Topics::create(3).await;
    let board = BoardId::new(unique("replica-reads")).expect("board");
    let events = random_events(131, &board, 3000, 40_000);
    let (first, second) = events.split_at(16_000);
    let worker = Worker::start(config(&topics, &redis.url(), "single"));
    let router = router(&redis.url(), "single").await;
    let api = Api::start(&redis.url(), &["--read-from", "prefer-replica", "--topic", &topics.scores]).await;
    let primary = redis.primary_port();
    let replicas: Vec<u16> = redis.node_ports().into_iter().filter(|&p| p != primary).collect();
    let replica_reads_before: u64 = replicas.iter().map(|&p| command_calls(p, "eval_ro")).sum();

    let streaming = first_then_streaming(&topics, &router, &board, first, second).await;
    let (top, player) =
        (format!("/v1/boards/{board}/top?limit=100"), format!("/v1/boards/{board}/players/{}", first[0].player));
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.get(&player).await.0 != 200 {
        assert!(Instant::now() < deadline, "the api never answered for a player already written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reading = CancellationToken::new();
    let (top_failed, top_reads) = keep_reading(&api, top.clone(), reading.clone());
    let (rank_failed, rank_reads) = keep_reading(&api, player, reading.clone());

    redis.kill_node(primary);
    let killed = Instant::now();
    while redis.primary_port() == primary {
        assert!(killed.elapsed() < Duration::from_secs(60), "no replica was promoted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("replica reads: a replica was promoted {:?} after the kill", killed.elapsed());
    streaming.await.expect("producer task");
    let produced = SystemTime::now();
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(120)).await;

    // The promise: an answer dated after the last event was produced reflects every event.
    let want = oracle_of(&events).board(&board).cloned().expect("board");
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let (status, body) = api.get(&top).await;
        if status == 200 && as_of(&body) > produced {
            break body;
        }
        assert!(Instant::now() < deadline, "as_of never passed the last event: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let want = want.top(0, 100);
    assert_eq!(body["total"].as_u64(), Some(want.total), "total at {}", body["as_of"]);
    let got: Vec<(String, u64)> = body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["player"].as_str().expect("player").to_string(), e["score"].as_u64().expect("score")))
        .collect();
    let expected: Vec<(String, u64)> = want.entries.iter().map(|e| (e.player.to_string(), e.score)).collect();
    assert_eq!(got, expected, "the top 100 dated {} misses events produced before it", body["as_of"]);

    reading.cancel();
    let (top_reads, rank_reads) = (top_reads.await.expect("reader"), rank_reads.await.expect("reader"));
    let (top_failed, rank_failed) = (top_failed.load(Ordering::Relaxed), rank_failed.load(Ordering::Relaxed));
    eprintln!("replica reads: top {top_failed} of {top_reads} failed, rank {rank_failed} of {rank_reads} failed");
    assert_eq!(top_failed, 0, "the top-N is served from the cache, stale if need be");
    assert_eq!(rank_failed, 0, "ranks are read from a replica, which the failover does not stop");
    let replica_reads: u64 = replicas.iter().map(|&p| command_calls(p, "eval_ro")).sum();
    assert!(replica_reads > replica_reads_before + 100, "the reads went to the replicas");
    api.stop().await;
    worker.stop().await;
}

/// Both replicas die: `prefer-replica` reads move to the primary and come
/// back to a replica once one is restarted; `replica` answers 503 meanwhile.
#[tokio::test]
async fn reads_fall_back_to_the_primary_and_return_to_a_replica() {
    let mut redis = PrivateSentinel::start();
    let board = BoardId::new(unique("fallback")).expect("board");
    let writer = router(&redis.url(), "single").await;
    let updates: Vec<ScoreUpdate> = (0..50_u64)
        .map(|i| ScoreUpdate {
            board: board.clone(),
            player: leaderboard_contract::PlayerId::new(format!("p{i}")).expect("player"),
            score: i * 10,
            time_ms: 0,
            meta: None,
            source: None,
        })
        .collect();
    writer.apply(&updates).await.expect("apply");
    assert_eq!(writer.store().wait_for_replicas(2, Duration::from_secs(5)).await.expect("wait"), 2);
    let prefer = Api::start(&redis.url(), &["--read-from", "prefer-replica"]).await;
    let strict = Api::start(&redis.url(), &["--read-from", "replica"]).await;
    let player = format!("/v1/boards/{board}/players/p7");
    let primary = redis.primary_port();
    let replicas: Vec<u16> = redis.node_ports().into_iter().filter(|&p| p != primary).collect();
    let reads_on = |ports: &[u16]| ports.iter().map(|&p| command_calls(p, "eval_ro")).sum::<u64>();

    let (status, body) = prefer.get(&player).await;
    assert_eq!((status, body["rank"].as_u64()), (200, Some(43)));
    assert_eq!(strict.get(&player).await.0, 200);
    let on_primary = reads_on(&[primary]);
    for &replica in &replicas {
        redis.kill_node(replica);
    }
    // The first reads after the kill may fail while the reader switches.
    let deadline = Instant::now() + Duration::from_secs(30);
    while prefer.get(&player).await.0 != 200 {
        assert!(Instant::now() < deadline, "prefer-replica never fell back to the primary");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reads_on(&[primary]) > on_primary, "the fallback reads the primary");
    let (status, body) = strict.get(&player).await;
    assert_eq!(status, 503, "replica-only reads with no replica: {body}");

    for &replica in &replicas {
        redis.restart_node(replica);
    }
    redis.wait_until_replicas_online(primary, 2);
    let on_replicas = reads_on(&replicas);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = prefer.get(&player).await;
        assert_eq!((status, body["rank"].as_u64()), (200, Some(43)), "{body}");
        if reads_on(&replicas) > on_replicas {
            break;
        }
        assert!(Instant::now() < deadline, "reads never returned to a replica");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while strict.get(&player).await.0 != 200 {
        assert!(Instant::now() < deadline, "replica-only reads never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    prefer.stop().await;
    strict.stop().await;
}
