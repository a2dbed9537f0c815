//! Topics, producers, workers and an oracle check for the ingest tests.

use std::time::Duration;

use leaderboard_contract::{BoardId, PlayerId, ScoreEvent};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use shard_router::{LayoutSpec, Oracle, RedisTarget, Router, RouterOptions, ScoreUpdate, Store, StoreOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use testkit::{brokers, redis_url, unique};

/// Creates a topic with `partitions` partitions.
pub async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers()).create().expect("admin client");
    let results = admin
        .create_topics(&[NewTopic::new(name, partitions, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .unwrap_or_else(|e| panic!("cannot reach the broker at {} ({e}); run scripts/infra.sh up", brokers()));
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// Names of the topics and group one test uses.
#[derive(Clone)]
pub struct Topics {
    pub scores: String,
    pub dlq: String,
    pub group: String,
}

impl Topics {
    pub async fn create(partitions: i32) -> Self {
        let t = Self { scores: unique("scores"), dlq: unique("dlq"), group: unique("group") };
        create_topic(&t.scores, partitions).await;
        create_topic(&t.dlq, 1).await;
        t
    }
}

pub fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "5")
        .set("acks", "all")
        .create()
        .expect("producer")
}

/// Produces raw records and waits for every acknowledgement.
/// A record as produced: optional key, optional value.
pub type RawRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

pub async fn produce_raw(producer: &FutureProducer, topic: &str, records: &[RawRecord]) {
    for chunk in records.chunks(2000) {
        let sends = chunk.iter().map(|(k, v)| {
            let mut r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
            if let Some(k) = k {
                r = r.key(k.as_slice());
            }
            if let Some(v) = v {
                r = r.payload(v.as_slice());
            }
            producer.send(r, Duration::from_secs(30))
        });
        for result in futures::future::join_all(sends).await {
            result.map_err(|(e, _)| e).expect("produce");
        }
    }
}

pub async fn produce_events(producer: &FutureProducer, topic: &str, events: &[ScoreEvent]) {
    let records: Vec<_> = events.iter().map(|e| (Some(e.key().to_vec()), Some(e.to_json().into_bytes()))).collect();
    produce_raw(producer, topic, &records).await;
}

/// A random stream: each player plays several games; events of a player are
/// shuffled (reordered), some are duplicated.
pub fn random_events(seed: u64, board: &BoardId, players: usize, events: usize) -> Vec<ScoreEvent> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64;
    let mut out: Vec<ScoreEvent> = (0..events)
        .map(|i| ScoreEvent {
            board: board.clone(),
            player: PlayerId::new(format!("p{}", rng.random_range(0..players))).expect("id"),
            score: rng.random_range(0..1000),
            ts_ms: Some(now),
            id: Some(format!("e{i}")),
        })
        .collect();
    out.shuffle(&mut rng);
    let dups: Vec<ScoreEvent> = out.iter().take(events / 10).cloned().collect();
    out.extend(dups);
    out
}

pub fn oracle_of(events: &[ScoreEvent]) -> Oracle {
    let mut o = Oracle::new();
    for e in events {
        o.apply(&ScoreUpdate { board: e.board.clone(), player: e.player.clone(), score: e.score });
    }
    o
}

pub async fn router(redis: &str, layout: &str) -> Router {
    let store = Store::connect(&RedisTarget::parse(redis).expect("url"), StoreOptions::default()).await.expect("redis");
    Router::new(store, layout.parse::<LayoutSpec>().expect("layout"), RouterOptions::default())
}

/// Worker configuration for a test.
pub fn config(topics: &Topics, redis: &str, layout: &str) -> ingest::Config {
    use clap::Parser as _;
    ingest::Config::try_parse_from([
        "ingest",
        "--brokers",
        &brokers(),
        "--topic",
        &topics.scores,
        "--dlq-topic",
        &topics.dlq,
        "--group",
        &topics.group,
        "--redis",
        redis,
        "--layout",
        layout,
        "--batch-size",
        "500",
        "--linger",
        "5ms",
        "--backoff-max",
        "500ms",
        "--session-timeout",
        "10s",
        "--drain-timeout",
        "5s",
        // Short, so the Redis outage test exercises pausing partitions.
        "--pause-after",
        "1s",
        "--kafka-option",
        "heartbeat.interval.ms=500",
    ])
    .expect("config")
}

/// An in-process worker.
pub struct Worker {
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<ingest::Report>>,
}

impl Worker {
    pub fn start(config: ingest::Config) -> Self {
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(ingest::run(config, shutdown.clone()));
        Self { shutdown, handle }
    }

    pub async fn stop(self) -> ingest::Report {
        self.shutdown.cancel();
        self.handle.await.expect("worker task").expect("worker run")
    }
}

/// Polls Redis until the board equals the oracle; panics with the last
/// difference after `timeout`.
pub async fn wait_for_oracle(router: &Router, oracle: &Oracle, board: &BoardId, timeout: Duration) {
    let expected = oracle.board(board).cloned().unwrap_or_default();
    let want = expected.top(0, expected.total() + 10);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let got = router.top(board, 0, expected.total() + 10).await;
        if matches!(&got, Ok(page) if *page == want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "board {board} never matched the oracle: expected {} players, last read {:?}",
            expected.total(),
            got.map(|p| (p.total, p.entries.len()))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the group has committed every partition of the topic up to its
/// end: every record was consumed, applied and committed.
pub async fn wait_for_committed(topics: &Topics, timeout: Duration) {
    let topics = topics.clone();
    tokio::task::spawn_blocking(move || {
        let probe: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", &topics.group)
            .create()
            .expect("probe consumer");
        let wait = Duration::from_secs(10);
        let metadata = probe.fetch_metadata(Some(&topics.scores), wait).expect("metadata");
        let partitions: Vec<i32> =
            metadata.topics()[0].partitions().iter().map(rdkafka::metadata::MetadataPartition::id).collect();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let mut tpl = TopicPartitionList::new();
            for &p in &partitions {
                tpl.add_partition(&topics.scores, p);
            }
            let committed = probe.committed_offsets(tpl, wait).expect("committed offsets");
            let behind: Vec<(i32, i64, i64)> = partitions
                .iter()
                .filter_map(|&p| {
                    let high = probe.fetch_watermarks(&topics.scores, p, wait).expect("watermarks").1;
                    let at = match committed.find_partition(&topics.scores, p).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => o,
                        _ => 0,
                    };
                    (at != high).then_some((p, at, high))
                })
                .collect();
            if behind.is_empty() {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "group never committed to the end: {behind:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .expect("probe task");
}
