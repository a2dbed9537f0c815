//! Crashes, Redis outages and consumer-group rebalances lose nothing.

use std::process::Command;
use std::time::Duration;

use leaderboard_contract::BoardId;
use testkit::PrivateRedis;

use crate::helpers::{
    ChildProcess, Topics, Worker, committed, config, oracle_of, produce_events, producer, random_events, redis_url,
    router, spawn_ingest, unique, wait_for_committed, wait_for_oracle,
};

/// SIGTERM: the worker drains, commits and must exit 0.
fn terminate(mut child: ChildProcess) {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    let status = child.wait().expect("wait");
    assert!(status.success(), "ingest exited with {status} on SIGTERM");
}

#[tokio::test]
async fn kill_9_mid_stream_loses_nothing() {
    let topics = Topics::create(3).await;
    let board = BoardId::new(unique("crash")).expect("board");
    let events = random_events(21, &board, 2000, 30_000);
    let (first, second) = events.split_at(events.len() / 2);
    let producer = producer();
    produce_events(&producer, &topics.scores, first).await;
    let router = router(&redis_url(), "hash:3").await;
    let (mut victim, _) = spawn_ingest(&topics, "hash:3", &[], &[]);
    // Wait for progress, then kill without any chance to commit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while router.total(&board).await.expect("total") == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the first worker made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    victim.kill().expect("kill -9");
    victim.wait().expect("reap");
    produce_events(&producer, &topics.scores, second).await;
    let (successor, _) = spawn_ingest(&topics, "hash:3", &[], &[]);
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(90)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    terminate(successor);
}

/// The kill lands between the Redis write and the offset commit by
/// construction: the fail point `ingest::after_redis_write` holds the writer
/// there forever once the first batch is in Redis.
#[tokio::test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the fail points: run with --features ingest/failpoints")]
async fn kill_9_between_the_redis_write_and_the_offset_commit_loses_nothing() {
    let topics = Topics::create(3).await;
    let board = BoardId::new(unique("between")).expect("board");
    let events = random_events(23, &board, 1000, 8000);
    produce_events(&producer(), &topics.scores, &events).await;
    let router = router(&redis_url(), "single").await;
    let (mut victim, _) = spawn_ingest(&topics, "single", &[], &[("FAILPOINTS", "ingest::after_redis_write=pause")]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while router.total(&board).await.expect("total") == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the first batch never reached Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    victim.kill().expect("kill -9");
    victim.wait().expect("reap");
    assert!(router.total(&board).await.expect("total") > 0, "the batch is in Redis");
    assert_eq!(committed(&topics).await, [0, 0, 0], "and none of its offsets was committed");
    let (successor, _) = spawn_ingest(&topics, "single", &[], &[]);
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(90)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    terminate(successor);
}

#[tokio::test]
async fn redis_outage_recovers_by_itself() {
    let mut redis = PrivateRedis::start();
    let topics = Topics::create(2).await;
    let board = BoardId::new(unique("outage")).expect("board");
    let events = random_events(31, &board, 1000, 12_000);
    let (first, second) = events.split_at(events.len() / 2);
    let producer = producer();
    produce_events(&producer, &topics.scores, first).await;
    let worker = Worker::start(config(&topics, &redis.url(), "range:300,600"));
    let router = router(&redis.url(), "range:300,600").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while router.total(&board).await.unwrap_or(0) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no progress before the outage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.kill();
    produce_events(&producer, &topics.scores, second).await;
    // The outage lasts a few seconds while events keep arriving.
    tokio::time::sleep(Duration::from_secs(4)).await;
    redis.restart();
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(90)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let report = worker.stop().await;
    assert!(report.redis_errors > 0, "the worker never saw the outage: {report:?}");
    assert!(report.pauses > 0, "consumption was never paused during the outage: {report:?}");
    assert_eq!(report.dead_lettered, 0, "good events must never be dead-lettered");
}

#[tokio::test]
async fn a_worker_joining_and_leaving_loses_nothing() {
    let topics = Topics::create(4).await;
    let board = BoardId::new(unique("rebalance")).expect("board");
    let events = random_events(41, &board, 1500, 24_000);
    let parts: Vec<&[_]> = events.chunks(events.len() / 3 + 1).collect();
    let producer = producer();
    let router = router(&redis_url(), "single").await;
    let first = Worker::start(config(&topics, &redis_url(), "single"));
    produce_events(&producer, &topics.scores, parts[0]).await;
    wait_for_oracle(&router, &oracle_of(parts[0]), &board, Duration::from_secs(60)).await;

    let second = Worker::start(config(&topics, &redis_url(), "single"));
    produce_events(&producer, &topics.scores, parts[1]).await;
    wait_for_oracle(&router, &oracle_of(&events[..parts[0].len() + parts[1].len()]), &board, Duration::from_secs(60))
        .await;
    let second_report = second.stop().await;

    produce_events(&producer, &topics.scores, parts[2]).await;
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(90)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let first_report = first.stop().await;
    assert!(first_report.revocations >= 1, "the join never rebalanced the group: {first_report:?}");
    assert!(
        first_report.consumed + second_report.consumed >= events.len() as u64,
        "every record reached a worker: {first_report:?} {second_report:?}"
    );
}

/// Redis down when the worker starts: it serves `/readyz` (503, Redis not up) while it waits,
/// then connects by itself and applies everything.
#[tokio::test]
async fn a_worker_started_before_redis_waits_and_says_so() {
    let mut redis = PrivateRedis::start();
    redis.kill();
    let topics = Topics::create(2).await;
    let board = BoardId::new(unique("late-redis")).expect("board");
    let events = random_events(33, &board, 300, 3000);
    produce_events(&producer(), &topics.scores, &events).await;
    let worker = Worker::start(config(&topics, &redis.url(), "single"));
    crate::helpers::wait_for_endpoint(worker.addr, "/readyz", Duration::from_secs(30), |status, body| {
        status == 503 && body.contains(r#""redis_up":false"#)
    })
    .await;
    redis.restart();
    let router = router(&redis.url(), "single").await;
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(60)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    crate::helpers::wait_for_endpoint(worker.addr, "/readyz", Duration::from_secs(30), |status, _| status == 200).await;
    worker.stop().await;
}
