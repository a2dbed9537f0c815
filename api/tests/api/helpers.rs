//! An api on port 0 with a seeded board, and an HTTP client.

use std::time::Duration;

use api::Config;
use api::testing::TestServer;
use clap::Parser as _;
use leaderboard_contract::{BoardId, Meta, PlayerId};
use leaderboard_semantics::{Oracle, ScoreUpdate};
use leaderboard_store::{LayoutSpec, RedisTarget, Router, RouterOptions, Store, StoreOptions};
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

/// Gives the store at `redis` an epoch unless it has one ([`api::testing::ensure_epoch`]).
pub async fn ensure_epoch(redis: &str) {
    api::testing::ensure_epoch(redis).await.expect("store epoch");
}

/// A running api ([`TestServer`]) and an HTTP client for it.
pub struct TestApi {
    pub base: String,
    pub client: reqwest::Client,
    server: TestServer,
    shutdown: CancellationToken,
}

impl TestApi {
    /// Starts the api against `redis` with `layout`; `tweak` adjusts the configuration.
    pub async fn start(redis: &str, layout: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        // Logs of in-process apis when RUST_LOG is set (the suite sets it: scripts/secrets-check.sh reads them).
        if std::env::var_os("RUST_LOG").is_some() {
            let _ =
                tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
        }
        ensure_epoch(redis).await;
        let mut config = Config::parse_from(["api", "--redis", redis, "--layout", layout, "--top-refresh", "100ms"]);
        tweak(&mut config);
        let metrics = api::telemetry::install_recorder().expect("metrics recorder");
        let shutdown = CancellationToken::new();
        let server = TestServer::start(config, Some(metrics), shutdown.clone()).await.expect("api");
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
        Self { base: server.url(), client, server, shutdown }
    }

    /// The base URL of `--metrics-addr`, when the configuration set one.
    pub fn metrics_base(&self) -> Option<String> {
        self.server.metrics_addr.map(|addr| format!("http://{addr}"))
    }

    /// Starts the shutdown without waiting for it ([`TestApi::stop`] waits).
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// What the server's handlers share.
    pub fn state(&self) -> &api::state::AppState {
        self.server.state()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.expect("request")
    }

    /// GET returning status and JSON body.
    pub async fn json(&self, path: &str) -> (StatusCode, serde_json::Value) {
        let r = self.get(path).await;
        let status = r.status();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Stops the server and waits for it: graceful shutdown must finish.
    pub async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(10), self.server.stop())
            .await
            .expect("graceful shutdown in time")
            .expect("server result");
    }
}

pub async fn router(redis: &str, layout: &str) -> Router {
    let store = Store::connect(&RedisTarget::parse(redis).expect("url"), StoreOptions::default()).await.expect("redis");
    Router::new(store, layout.parse::<LayoutSpec>().expect("layout"), RouterOptions::default())
}

/// The metadata `seed` gives player `i`: none for one player in three; a
/// name and a country otherwise; p0042's name is markup, which pages must
/// show as text.
pub fn seeded_meta(i: usize) -> Option<Meta> {
    let text = match i {
        42 => r#"{"name":"<b>Zoë</b> & co","country":"JP","car":{"model":"GT-86","hp":200}}"#.to_string(),
        _ if i.is_multiple_of(3) => return None,
        _ => format!(r#"{{"name":"Player {i}","country":"{}"}}"#, ["BR", "DE", "NZ"][i % 3]),
    };
    Some(Meta::parse(&text).expect("meta"))
}

/// Seeds `players` players with tie-rich scores and [`seeded_meta`]; returns the oracle.
pub async fn seed(router: &Router, board: &BoardId, players: usize) -> Oracle {
    let updates: Vec<ScoreUpdate> = (0..players)
        .map(|i| ScoreUpdate {
            board: board.clone(),
            player: PlayerId::new(format!("p{i:04}")).expect("id"),
            score: ((i * 7919) % 300) as u64,
            time_ms: 0,
            meta: seeded_meta(i),
            source: None,
        })
        .collect();
    router.apply(&updates).await.expect("seed");
    router.refresh_sizes(board).await.expect("sizes");
    let mut oracle = Oracle::new();
    for u in &updates {
        oracle.apply(u);
    }
    oracle
}

pub fn board(prefix: &str) -> BoardId {
    BoardId::new(testkit::unique(prefix)).expect("board")
}

/// Polls `check` every 50 ms until it holds, or panics with `what` after 20 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One entry of a list: rank, player, score and metadata (`None` when absent).
pub type Row = (u64, String, u64, Option<serde_json::Value>);

/// Entries of a JSON list as [`Row`]s.
pub fn rows(v: &serde_json::Value) -> Vec<Row> {
    v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            assert!(e.get("meta") != Some(&serde_json::Value::Null), "an absent meta is left out, not null: {e}");
            (
                e["rank"].as_u64().expect("rank"),
                e["player"].as_str().expect("player").to_string(),
                e["score"].as_u64().expect("score"),
                e.get("meta").cloned(),
            )
        })
        .collect()
}

/// A metadata object as JSON, to compare with an answer's.
pub fn meta_json(meta: Option<&Meta>) -> Option<serde_json::Value> {
    meta.map(|m| serde_json::from_str(m.as_str()).expect("meta is JSON"))
}

pub fn oracle_rows(entries: &[leaderboard_semantics::Entry]) -> Vec<Row> {
    entries.iter().map(|e| (e.rank, e.player.to_string(), e.score, meta_json(e.meta.as_ref()))).collect()
}
