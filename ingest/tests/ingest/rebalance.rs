//! Rebalances under every assignment protocol, while records wait in the pipeline.

use std::time::Duration;

use leaderboard_contract::BoardId;
use testkit::PrivateRedis;

use crate::helpers::{
    Topics, Worker, config_with, counter, oracle_of, produce_events, producer, random_events, redis_cmd, router,
    unique, wait_for_committed, wait_for_oracle,
};

/// A second worker joins while the first one's pipeline is full (Redis
/// refuses to answer writes, so nothing can drain), then leaves again. With
/// an incremental protocol the first worker keeps some partitions through the
/// rebalance: their queued records must survive it.
async fn join_and_leave_with_records_queued(extra: &[&str]) {
    let redis = PrivateRedis::start();
    let topics = Topics::create(6).await;
    let board = BoardId::new(unique("queued")).expect("board");
    let events = random_events(61, &board, 3000, 30_000);
    let (warmup, rest) = events.split_at(2000);
    let (queued, rest) = rest.split_at(14_000);
    let (joined, left) = rest.split_at(7000);
    let producer = producer();
    let router = router(&redis.url(), "single").await;
    let first = Worker::start(config_with(&topics, &redis.url(), "single", extra));
    produce_events(&producer, &topics.scores, warmup).await;
    wait_for_oracle(&router, &oracle_of(warmup), &board, Duration::from_secs(60)).await;

    // From here on, writes wait: records pile up in the first worker.
    redis_cmd(&redis.url(), &["CLIENT", "PAUSE", "120000", "WRITE"]).await;
    produce_events(&producer, &topics.scores, queued).await;
    let consumed = |page: &str| counter(page, "ingest_events_consumed_total");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    // Full: a writer's batch, two batches in the channel, a filling batch, a full record channel.
    while consumed(&first.get("/metrics").await.1) < (warmup.len() + 2500) as f64 {
        assert!(tokio::time::Instant::now() < deadline, "the first worker never filled its pipeline");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let revocations = counter(&first.get("/metrics").await.1, "ingest_revocations_total");
    let second = Worker::start(config_with(&topics, &redis.url(), "single", extra));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while counter(&first.get("/metrics").await.1, "ingest_revocations_total") <= revocations {
        assert!(tokio::time::Instant::now() < deadline, "the join never revoked a partition");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    redis_cmd(&redis.url(), &["CLIENT", "UNPAUSE"]).await;
    produce_events(&producer, &topics.scores, joined).await;
    let so_far = events.len() - left.len();
    wait_for_oracle(&router, &oracle_of(&events[..so_far]), &board, Duration::from_secs(90)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;

    let second_report = second.stop().await;
    produce_events(&producer, &topics.scores, left).await;
    wait_for_oracle(&router, &oracle_of(&events), &board, Duration::from_secs(90)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let first_report = first.stop().await;
    assert!(first_report.revocations >= 1, "{first_report:?}");
    assert!(second_report.consumed > 0, "the second worker took part: {second_report:?}");
}

#[tokio::test]
async fn eager_rebalances_with_records_queued_lose_nothing() {
    join_and_leave_with_records_queued(&[]).await;
}

#[tokio::test]
async fn cooperative_rebalances_with_records_queued_lose_nothing() {
    join_and_leave_with_records_queued(&["--kafka-option", "partition.assignment.strategy=cooperative-sticky"]).await;
}

/// Runs against a broker that implements KIP-848 (Apache Kafka 4.0 and later, as in the compose
/// stack): `LB_KAFKA_BROKERS=... cargo nextest run -p ingest --run-ignored only -E 'test(kip_848)'`.
#[tokio::test]
#[ignore = "the local broker (nisshi 0.8.1) does not implement ConsumerGroupHeartbeat (KIP-848)"]
async fn kip_848_rebalances_with_records_queued_lose_nothing() {
    join_and_leave_with_records_queued(&["--kafka-option", "group.protocol=consumer"]).await;
}
