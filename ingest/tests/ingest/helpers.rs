//! Topics, producers, workers and an oracle check for the ingest tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use leaderboard_contract::{BoardId, Meta, PlayerId, ScoreEvent};
use leaderboard_semantics::{Oracle, ScoreUpdate};
use leaderboard_store::{LayoutSpec, RedisTarget, Router, RouterOptions, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
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
    /// Closed seasons' results.
    pub results: String,
}

impl Topics {
    pub async fn create(partitions: i32) -> Self {
        let t =
            Self { scores: unique("scores"), dlq: unique("dlq"), group: unique("group"), results: unique("results") };
        create_topic(&t.scores, partitions).await;
        create_topic(&t.dlq, 1).await;
        create_topic(&t.results, 1).await;
        t
    }
}

pub fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "5")
        .set("acks", "all")
        // Room for the hostile records of the fault tests (the broker takes up to ~1 MiB).
        .set("message.max.bytes", "1048576")
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
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64;
    random_events_at(seed, board, players, events, |_| now)
}

/// Like [`random_events`], each event stamped `ts(rng)`.
pub fn random_events_at(
    seed: u64,
    board: &BoardId,
    players: usize,
    events: usize,
    mut ts: impl FnMut(&mut StdRng) -> u64,
) -> Vec<ScoreEvent> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<ScoreEvent> = (0..events)
        .map(|i| ScoreEvent {
            board: board.clone(),
            player: PlayerId::new(format!("p{}", rng.random_range(0..players))).expect("id"),
            score: rng.random_range(0..1000),
            ts_ms: Some(ts(&mut rng)),
            id: Some(format!("e{i}")),
            meta: rng.random_bool(0.6).then(|| event_meta(i)),
        })
        .collect();
    out.shuffle(&mut rng);
    let dups: Vec<ScoreEvent> = out.iter().take(events / 10).cloned().collect();
    out.extend(dups);
    out
}

/// Metadata naming event `i`, so a mismatch says which event's metadata an entry shows.
pub fn event_meta(i: usize) -> Meta {
    Meta::parse(&format!(r#"{{"name":"Zoë {i}","country":"NZ","event":{i}}}"#)).expect("meta")
}

pub fn oracle_of(events: &[ScoreEvent]) -> Oracle {
    let mut o = Oracle::new();
    for e in events {
        o.apply(&ScoreUpdate {
            board: e.board.clone(),
            player: e.player.clone(),
            score: e.score,
            time_ms: 0,
            meta: e.meta.clone(),
            source: None,
        });
    }
    o
}

pub async fn router(redis: &str, layout: &str) -> Router {
    let store = Store::connect(&RedisTarget::parse(redis).expect("url"), StoreOptions::default()).await.expect("redis");
    Router::new(store, layout.parse::<LayoutSpec>().expect("layout"), RouterOptions::default())
}

/// Worker configuration for a test.
pub fn config(topics: &Topics, redis: &str, layout: &str) -> ingest::Config {
    config_with(topics, redis, layout, &[])
}

/// The arguments every test worker shares (in-process and child processes).
pub fn worker_args(topics: &Topics, redis: &str, layout: &str) -> Vec<String> {
    [
        "--brokers",
        &brokers(),
        "--topic",
        &topics.scores,
        "--dlq-topic",
        &topics.dlq,
        "--season-results-topic",
        &topics.results,
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
    ]
    .map(String::from)
    .into_iter()
    .collect()
}

/// Worker configuration with `extra` flags after the shared ones (see [`worker_args_with`]).
pub fn config_with(topics: &Topics, redis: &str, layout: &str, extra: &[&str]) -> ingest::Config {
    use clap::Parser as _;
    let args = worker_args_with(topics, redis, layout, extra);
    ingest::Config::try_parse_from(std::iter::once("ingest").chain(args.iter().map(String::as_str))).expect("config")
}

/// The shared arguments, then `extra`; a shared flag given again in `extra`
/// takes the value given there (`--kafka-option` adds to them).
pub fn worker_args_with(topics: &Topics, redis: &str, layout: &str, extra: &[&str]) -> Vec<String> {
    let mut args = worker_args(topics, redis, layout);
    // Every shared flag takes one value: drop the pairs `extra` overrides.
    let overridden = |flag: &String| flag != "--kafka-option" && extra.contains(&flag.as_str());
    while let Some(at) = args.iter().step_by(2).position(overridden) {
        args.drain(2 * at..2 * at + 2);
    }
    if extra.contains(&"group.protocol=consumer") {
        // KIP-848 groups get their heartbeat interval from the broker; librdkafka refuses the classic setting.
        let at = args.iter().position(|a| a == "heartbeat.interval.ms=500").expect("heartbeat option");
        args.drain(at - 1..=at);
    }
    args.extend(extra.iter().map(|a| (*a).to_string()));
    args
}

/// Starts the real `ingest` binary as a child process with `extra` flags
/// (see [`worker_args_with`]) and `env`, its telemetry on a free port.
pub fn spawn_ingest(topics: &Topics, layout: &str, extra: &[&str], env: &[(&str, &str)]) -> (ChildProcess, SocketAddr) {
    let addr = SocketAddr::from(([127, 0, 0, 1], testkit::free_port()));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ingest"))
        .args(worker_args_with(topics, &redis_url(), layout, extra))
        .args(["--metrics-addr", &addr.to_string()])
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn ingest binary");
    (ChildProcess(child), addr)
}

/// An in-process worker, its `/metrics`, `/healthz` and `/readyz` on `addr`.
pub struct Worker {
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<ingest::Report>>,
    pub addr: SocketAddr,
}

impl Worker {
    pub fn start(config: ingest::Config) -> Self {
        // Logs of in-process workers when RUST_LOG is set (e.g. RUST_LOG=ingest=debug).
        if std::env::var_os("RUST_LOG").is_some() {
            let _ =
                tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(ingest::run(config, listener, shutdown.clone()));
        Self { shutdown, handle, addr }
    }

    /// GETs `path` on the worker's telemetry listener: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
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
        if tokio::time::Instant::now() >= deadline {
            let wrong: Vec<String> = match &got {
                Ok(page) => {
                    let held: HashMap<&str, (u64, Option<&Meta>)> =
                        page.entries.iter().map(|e| (e.player.as_str(), (e.score, e.meta.as_ref()))).collect();
                    want.entries
                        .iter()
                        .filter(|e| held.get(e.player.as_str()) != Some(&(e.score, e.meta.as_ref())))
                        .take(5)
                        .map(|e| {
                            let has = held.get(e.player.as_str());
                            format!("{} wants {} {:?} has {has:?}", e.player, e.score, e.meta)
                        })
                        .collect()
                }
                Err(e) => vec![e.to_string()],
            };
            panic!(
                "board {board} never matched the oracle: expected {} players, last read {:?}; first differences: {wrong:?}",
                expected.total(),
                got.map(|p| (p.total, p.entries.len()))
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the group has committed every partition of the topic up to its
/// end: every record was consumed, applied and committed.
pub async fn wait_for_committed(topics: &Topics, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (at, ends) = (committed(topics).await, partition_ends(topics).await);
        if at == ends {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "group never committed to the end: {at:?} of {ends:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// GETs `path` on `addr`: status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.expect("telemetry endpoint answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Waits until `check` holds for the status and body of `path`; panics with the last answer after `timeout`.
pub async fn wait_for_endpoint(addr: SocketAddr, path: &str, timeout: Duration, check: impl Fn(u16, &str) -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (status, body) = http_get(addr, path).await;
        if check(status, &body) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} never matched; last answer {status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A record read back from a dead-letter topic.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: HashMap<String, String>,
}

impl DeadLetter {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// Reads `count` records from the dead-letter topic (panics if fewer arrive within 60 s of each other).
pub async fn read_dlq(topic: &str, count: usize) -> Vec<DeadLetter> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers());
    read_dlq_from(config, topic, count).await
}

/// [`read_dlq`] through a client configured as `config` (the brokers, TLS, ...).
pub async fn read_dlq_from(mut config: ClientConfig, topic: &str, count: usize) -> Vec<DeadLetter> {
    let consumer: StreamConsumer =
        config.set("group.id", unique("dlq-reader")).set("auto.offset.reset", "earliest").create().expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    while out.len() < count {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} dead letters arrived", out.len()))
            .expect("dlq message");
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(DeadLetter { key: m.key().map(<[u8]>::to_vec), value: m.payload().map(<[u8]>::to_vec), headers });
    }
    out
}

/// A consumer of the test's group that reads offsets, and the topic's partitions.
fn probe(topics: &Topics) -> (BaseConsumer, Vec<i32>) {
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", &topics.group)
        .create()
        .expect("probe consumer");
    let metadata = probe.fetch_metadata(Some(&topics.scores), PROBE_WAIT).expect("metadata");
    let partitions = metadata.topics()[0].partitions().iter().map(rdkafka::metadata::MetadataPartition::id).collect();
    (probe, partitions)
}

const PROBE_WAIT: Duration = Duration::from_secs(10);

/// Committed offset per partition of the group (0 where nothing is committed).
pub async fn committed(topics: &Topics) -> Vec<i64> {
    let topics = topics.clone();
    tokio::task::spawn_blocking(move || {
        let (probe, partitions) = probe(&topics);
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(&topics.scores, p);
        }
        let committed = probe.committed_offsets(tpl, PROBE_WAIT).expect("committed offsets");
        committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            })
            .collect()
    })
    .await
    .expect("probe task")
}

/// The end (high watermark) of every partition of the topic, in partition order.
pub async fn partition_ends(topics: &Topics) -> Vec<i64> {
    let topics = topics.clone();
    tokio::task::spawn_blocking(move || {
        let (probe, partitions) = probe(&topics);
        partitions
            .iter()
            .map(|&p| probe.fetch_watermarks(&topics.scores, p, PROBE_WAIT).expect("watermarks").1)
            .collect()
    })
    .await
    .expect("probe task")
}

/// A child process that is killed when dropped, so a failing test leaves no worker running.
pub struct ChildProcess(pub std::process::Child);

impl std::ops::Deref for ChildProcess {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ChildProcess {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of an unlabelled counter in a Prometheus text page (0 when absent).
pub fn counter(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Runs one Redis command (e.g. `CONFIG SET maxmemory 1`) on the server at `url`.
pub async fn redis_cmd(url: &str, args: &[&str]) {
    let client = redis::Client::open(url).expect("url");
    let mut con = client.get_multiplexed_async_connection().await.expect("connect");
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let _: redis::Value = cmd.query_async(&mut con).await.expect("redis command");
}

/// An api of the test's own on port 0 ([`api::testing::TestServer`]).
pub struct Api {
    pub addr: SocketAddr,
    server: api::testing::TestServer,
}

impl Api {
    /// Starts an api on `redis` with a 100 ms top-N refresh and `extra` flags.
    pub async fn start(redis: &str, extra: &[&str]) -> Self {
        use clap::Parser as _;
        let args = ["api", "--redis", redis, "--top-refresh", "100ms"].into_iter().chain(extra.iter().copied());
        let config = api::Config::try_parse_from(args).expect("api config");
        api::testing::ensure_epoch(redis).await.expect("store epoch");
        let server = api::testing::TestServer::start(config, None, CancellationToken::new()).await.expect("api");
        Self { addr: server.addr, server }
    }

    /// GETs `path`: status and JSON body (`Null` when the body is not JSON).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = http_get(self.addr, path).await;
        (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
    }

    /// POSTs `body` as JSON to `path`: status and JSON body.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(format!("http://{}{path}", self.addr))
            .json(body)
            .send()
            .await
            .expect("the api answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn stop(self) {
        self.server.stop().await.expect("api");
    }
}

/// An answer's `as_of`.
pub fn as_of(body: &serde_json::Value) -> std::time::SystemTime {
    let text = body["as_of"].as_str().expect("as_of");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).expect("rfc 3339").into()
}
