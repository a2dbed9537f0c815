//! What every recovery test starts from: a topic, a group, a Redis of the test's own, an oracle,
//! and in-process ingest workers.

use std::time::Duration;

use admin::recover::{self, KafkaArgs};
use leaderboard_contract::signature::ProducerKey;
use leaderboard_contract::{BoardId, Meta, PlayerId, ScoreEvent};
use leaderboard_runtime::RedisArgs;
use leaderboard_semantics::{Operator, Oracle, Order, Rules, ScoreUpdate, Ties};
use leaderboard_store::{RedisTarget, Router, RouterOptions, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use testkit::{PrivateRedis, brokers, unique};
use tokio_util::sync::CancellationToken;

pub(super) const LAYOUT: &str = "hash:4";
pub(super) const WAIT: Duration = Duration::from_secs(60);

/// One test's topic, group, Redis and oracle.
pub(super) struct Setup {
    pub(super) redis: PrivateRedis,
    pub(super) kafka: KafkaArgs,
    pub(super) dlq: String,
    pub(super) producer: FutureProducer,
    pub(super) oracle: Oracle,
    pub(super) rng: StdRng,
    /// The layout of the workers and routers ([`LAYOUT`] unless said).
    pub(super) layout: &'static str,
}

impl Setup {
    pub(super) async fn new(partitions: i32) -> Self {
        Self::with_layout(partitions, LAYOUT).await
    }

    pub(super) async fn with_layout(partitions: i32, layout: &'static str) -> Self {
        // Logs of the in-process workers and replays when RUST_LOG is set (the suite sets it).
        if std::env::var_os("RUST_LOG").is_some() {
            let _ =
                tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
        }
        let kafka = KafkaArgs {
            brokers: brokers(),
            topic: unique("scores"),
            group: unique("group"),
            kafka: leaderboard_runtime::KafkaOptionsArgs::default(),
            players_log: leaderboard_runtime::PlayersLogArgs {
                players_topic: unique("players"),
                players_log_timeout: Duration::from_secs(10),
            },
            policy: recover::PolicyArgs::default(),
        };
        let dlq = unique("dlq");
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", brokers()).create().expect("admin client");
        let topics = [
            NewTopic::new(&kafka.topic, partitions, TopicReplication::Fixed(1)),
            NewTopic::new(&dlq, 1, TopicReplication::Fixed(1)),
        ];
        for r in admin.create_topics(&topics, &AdminOptions::new()).await.expect("broker (scripts/infra.sh up)") {
            r.expect("topic created");
        }
        let producer =
            ClientConfig::new().set("bootstrap.servers", brokers()).set("acks", "all").create().expect("producer");
        Self {
            redis: PrivateRedis::start(),
            kafka,
            dlq,
            producer,
            oracle: Oracle::new(),
            rng: StdRng::seed_from_u64(7),
            layout,
        }
    }

    pub(super) fn redis_args(&self) -> RedisArgs {
        RedisArgs { redis: self.redis.url(), redis_ca: None }
    }

    pub(super) async fn store(&self) -> Store {
        Store::connect(&RedisTarget::parse(&self.redis.url()).expect("url"), StoreOptions::default())
            .await
            .expect("redis")
    }

    pub(super) async fn router(&self) -> Router {
        Router::new(self.store().await, self.layout.parse().expect("layout"), RouterOptions::default())
    }

    /// Creates `board` with `rules`, in Redis and in the oracle.
    pub(super) async fn create(&mut self, board: &BoardId, rules: Rules) {
        self.router().await.set_rules(board, rules).await.expect("rules");
        self.oracle.set_rules(board, rules);
    }

    /// Produces `count` random events over `boards` (300 players each), two in three with
    /// metadata naming the event, and records them in the oracle.
    pub(super) async fn produce(&mut self, boards: &[&BoardId], count: usize) {
        self.produce_stamped(boards, count, 1_000..1_001_000).await;
    }

    /// [`Setup::produce`], each event stamped in `stamps`; returns the events.
    pub(super) async fn produce_stamped(
        &mut self,
        boards: &[&BoardId],
        count: usize,
        stamps: std::ops::Range<u64>,
    ) -> Vec<ScoreEvent> {
        let events: Vec<ScoreEvent> = (0..count)
            .map(|i| ScoreEvent {
                board: boards[i % boards.len()].clone(),
                player: PlayerId::new(format!("p{}", self.rng.random_range(0..300))).expect("id"),
                score: self.rng.random_range(0..100_000),
                ts_ms: Some(self.rng.random_range(stamps.clone())),
                id: None,
                meta: (i % 3 != 0).then(|| {
                    let text = format!(r#"{{"name":"n{i}","country":"JP","seq":{}}}"#, self.rng.random::<u32>());
                    Meta::parse(&text).expect("meta")
                }),
            })
            .collect();
        for e in &events {
            let time_ms = e.ts_ms.unwrap_or(0);
            self.oracle.apply(&ScoreUpdate {
                board: e.board.clone(),
                player: e.player.clone(),
                score: e.score,
                time_ms,
                meta: e.meta.clone(),
                source: None,
            });
        }
        let (key, value): (Vec<_>, Vec<_>) = events.iter().map(|e| (e.key().to_vec(), e.to_json())).unzip();
        for chunk in key.iter().zip(&value).collect::<Vec<_>>().chunks(1000) {
            let sends = chunk.iter().map(|(k, v)| {
                self.producer.send(
                    FutureRecord::to(&self.kafka.topic).key(k.as_slice()).payload(v.as_str()),
                    Duration::from_secs(30),
                )
            });
            for sent in futures::future::join_all(sends).await {
                sent.map_err(|(e, _)| e).expect("produced");
            }
        }
        events
    }

    /// Produces `count` random events on `board`, signed with `signer`, plus `forged` more whose
    /// value was changed after signing (the live workers dead-letter those); records the signed
    /// ones in the oracle.
    pub(super) async fn produce_signed(&mut self, board: &BoardId, count: usize, forged: usize, signer: &ProducerKey) {
        use leaderboard_contract::signature::{KEY_ID_HEADER, SIGNATURE_HEADER};
        use rdkafka::message::{Header, OwnedHeaders};
        for i in 0..count + forged {
            let e = ScoreEvent {
                board: board.clone(),
                player: PlayerId::new(format!("p{}", self.rng.random_range(0..300))).expect("id"),
                score: self.rng.random_range(0..100_000),
                ts_ms: Some(1_000 + self.rng.random_range(0..1_000_000)),
                id: None,
                meta: None,
            };
            let value = e.to_json();
            let signature = signer.sign(e.key(), value.as_bytes());
            let sent = if i < count {
                self.oracle.apply(&ScoreUpdate {
                    board: e.board.clone(),
                    player: e.player.clone(),
                    score: e.score,
                    time_ms: e.ts_ms.unwrap_or(0),
                    meta: None,
                    source: None,
                });
                value
            } else {
                ScoreEvent { score: e.score + 1, ..e.clone() }.to_json()
            };
            let headers = OwnedHeaders::new()
                .insert(Header { key: KEY_ID_HEADER, value: Some(signer.id()) })
                .insert(Header { key: SIGNATURE_HEADER, value: Some(&signature) });
            let record = FutureRecord::to(&self.kafka.topic).key(e.key()).payload(sent.as_str()).headers(headers);
            self.producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("produced");
        }
    }

    pub(super) fn ingest_config(&self) -> ingest::Config {
        use clap::Parser as _;
        ingest::Config::try_parse_from([
            "ingest",
            "--brokers",
            &brokers(),
            "--topic",
            &self.kafka.topic,
            "--dlq-topic",
            &self.dlq,
            "--group",
            &self.kafka.group,
            "--redis",
            &self.redis.url(),
            "--layout",
            self.layout,
            "--linger",
            "5ms",
            "--batch-size",
            "500",
            "--backoff-max",
            "200ms",
            "--loss-check",
            "100ms",
        ])
        .expect("ingest config")
    }

    /// Waits until the live group has committed every partition to its end.
    pub(super) async fn wait_caught_up(&self) {
        let config = self.ingest_config();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let ends: Vec<(i32, i64)> = ingest::recovery::retained(&config)
                .await
                .expect("ends")
                .into_iter()
                .map(|(p, r)| (p, r.high))
                .collect();
            let at = ingest::recovery::committed(&config, &self.kafka.group).await.expect("committed");
            if ends.iter().all(|(p, end)| at.get(p).copied().unwrap_or(0) >= *end) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "the group never caught up: {at:?} of {ends:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every board the oracle has equals Redis, player by player, in order.
    pub(super) async fn assert_equals_oracle(&self) {
        let router = self.router().await;
        for (board, expected) in self.oracle.boards() {
            let want = expected.top(0, expected.total() + 1);
            let got = router.top(board, 0, expected.total() + 1).await.expect("read");
            assert_eq!(got.total, want.total, "{board}: players");
            assert_eq!(got.entries, want.entries, "{board}: standings");
        }
    }

    /// What a worker leaves when it writes a batch into the wiped store before it notices, with
    /// the board's record cached from before the wipe, which took the record: a shard of `board`
    /// (a `sum` board of [`LAYOUT`]) with a total and applied offsets, and no record.
    pub(super) async fn plant_stray_shard(&self, board: &BoardId) {
        let shard = leaderboard_store::layout::keys::hash_shard(board, 4, 0);
        let ghost = leaderboard_store::layout::member::encode(&PlayerId::new("ghost").expect("id"));
        let mut stray = redis::pipe();
        stray.cmd("ZADD").arg(&shard).arg(77).arg(&ghost).ignore();
        let offsets = leaderboard_store::layout::keys::applied_offsets(&shard);
        stray.cmd("HSET").arg(offsets).arg(format!("{}:0", self.kafka.topic)).arg(1_000_000).ignore();
        stray.cmd("UNLINK").arg(leaderboard_store::layout::keys::layout(board)).ignore();
        let _: () = self.store().await.run(&stray).await.map(|_| ()).expect("stray keys");
    }

    pub(super) async fn flushall(&self) {
        let store = self.store().await;
        let _: () = store.query(&redis::cmd("FLUSHALL")).await.expect("FLUSHALL");
    }
}

/// An in-process ingest worker.
pub(super) struct Worker {
    pub(super) shutdown: CancellationToken,
    pub(super) handle: tokio::task::JoinHandle<anyhow::Result<ingest::Report>>,
    pub(super) addr: std::net::SocketAddr,
}

impl Worker {
    pub(super) async fn start(config: ingest::Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(ingest::run(config, listener, shutdown.clone()));
        Self { shutdown, handle, addr }
    }

    /// Waits until `/readyz` reports the store lost (what an operator's alert sees).
    pub(super) async fn wait_store_lost(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(r) = reqwest::get(format!("http://{}/readyz", self.addr)).await {
                let (status, body) = (r.status().as_u16(), r.text().await.unwrap_or_default());
                if status == 503 && body.contains("\"store_lost\"") {
                    return;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "the worker never noticed the wiped store");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(super) async fn stop(self) {
        self.shutdown.cancel();
        self.handle.await.expect("worker task").expect("worker");
    }
}

pub(super) fn board(prefix: &str) -> BoardId {
    BoardId::new(unique(prefix)).expect("board")
}

pub(super) fn time_trial() -> Rules {
    Rules { order: Order::Asc, ties: Ties::Earliest, ..Rules::default() }
}

/// A board whose events add up, and one where the latest counts: each record must count once.
pub(super) fn operators() -> [(BoardId, Rules); 2] {
    [
        (board("xp"), Rules { operator: Operator::Sum, ..Rules::default() }),
        (board("latest"), Rules { operator: Operator::Last, ties: Ties::Earliest, ..Rules::default() }),
    ]
}
