//! `loadgen watch`: many clients following the top of a board, by live stream or by polling,
//! and the delay from a score event's produce time to its arrival at each client.
//!
//! A marker player on a board of its own (`--watch-board`) gets a higher score every
//! `--marker-every`, so every marker is a new #1 of that board (the verified boards of a run
//! going on meanwhile are not touched). Each of `--clients` clients follows `top?limit=1`:
//! - `--mode stream`: one `top:watch` stream each (docs/contract.md#live-updates);
//! - `--mode poll`: one `GET /top?limit=1` per second each, at phases spread over the second
//!   (what clients do without streams).
//!
//! A client that sees marker `k` has seen every marker up to `k` (a list shows the latest
//! state): each of them counts once per client, delayed by the time from its produce to that
//! arrival. Markers a client never saw by the end are reported as missed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use leaderboard_contract::{BoardId, PlayerId, ScoreEvent};
use rdkafka::producer::FutureRecord;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::World;

/// How clients follow the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A `top:watch` stream each.
    Stream,
    /// `GET /top?limit=1` once per second each.
    Poll,
}

/// Options of `watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Base URL of the api.
    #[arg(long, env = "LB_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// How the clients follow the top.
    #[arg(long, value_enum, default_value = "stream")]
    pub mode: Mode,
    /// Clients (streams, or pollers).
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// How long markers are produced once every client is following.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Time between two markers.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub marker_every: Duration,
    /// The board of the markers (created by the first marker).
    #[arg(long, default_value = "watch-probe")]
    pub watch_board: String,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/loadgen/watch.json")]
    pub report: std::path::PathBuf,
}

/// Most connections being opened at once.
const OPENING: usize = 256;
/// How long after the last marker clients may take to see it.
const SETTLE: Duration = Duration::from_secs(5);

/// Produce times of the markers, by index (1-based), in microseconds since `origin`.
struct Markers {
    origin: Instant,
    base: u64,
    produced: Vec<AtomicU64>,
    /// Markers produced so far.
    count: AtomicU64,
}

impl Markers {
    fn produced_at(&self, k: u64) -> Option<u64> {
        let at = self.produced.get(usize::try_from(k).ok()?)?.load(Ordering::Acquire);
        (at > 0).then_some(at)
    }
}

/// What every client measured, merged.
#[derive(Debug)]
struct Seen {
    delays_us: Histogram<u64>,
    /// Events (stream) or answers (poll) received.
    received: u64,
    /// Per client: the last marker it saw.
    last_markers: Vec<u64>,
    failed: u64,
}

/// The outcome of `watch`.
#[derive(Debug, Serialize)]
pub struct WatchReport {
    /// How the clients followed.
    pub mode: Mode,
    /// Clients asked for.
    pub clients: usize,
    /// Clients that could not open or lost their stream.
    pub failed_clients: u64,
    /// Markers produced.
    pub markers: u64,
    /// Events (stream) or answers (poll) received by all clients.
    pub received: u64,
    /// Marker arrivals measured (markers x clients that saw them).
    pub samples: u64,
    /// Marker arrivals that never happened (a client never saw the marker, or one after it).
    pub missed: u64,
    /// Produce-to-client delay, milliseconds.
    pub delay_ms_p50: f64,
    /// 90th percentile.
    pub delay_ms_p90: f64,
    /// 99th percentile.
    pub delay_ms_p99: f64,
    /// Largest.
    pub delay_ms_max: f64,
}

/// Runs `watch`: opens the clients, produces the markers, reports.
///
/// # Errors
/// When the producer cannot be made, the first marker never shows, or the report cannot be written.
pub async fn run(world: &World, args: &WatchArgs) -> anyhow::Result<WatchReport> {
    let producer = crate::producer(world)?;
    let board = BoardId::new(args.watch_board.clone()).context("--watch-board")?;
    let player = PlayerId::new("watch-probe").context("marker player")?;
    let capacity = usize::try_from(args.duration.as_millis() / args.marker_every.as_millis().max(1)).unwrap_or(0) + 2;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let markers = Arc::new(Markers {
        origin: Instant::now(),
        base: now_ms,
        produced: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        count: AtomicU64::new(0),
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("http client")?;
    let produce = |k: u64| {
        let (producer, markers, board, player, topic) =
            (producer.clone(), markers.clone(), board.clone(), player.clone(), world.topic.clone());
        async move {
            let event = ScoreEvent { board, player, score: markers.base + k, ts_ms: None, id: None, meta: None };
            let payload = event.to_json();
            let at = markers.origin.elapsed().as_micros().max(1) as u64;
            markers.produced[usize::try_from(k).unwrap_or(usize::MAX)].store(at, Ordering::Release);
            markers.count.store(k, Ordering::Release);
            producer
                .send(FutureRecord::to(&topic).key(event.key()).payload(&payload), Duration::from_secs(10))
                .await
                .map_err(|(e, _)| anyhow::anyhow!("marker {k} not produced: {e}"))
        }
    };
    // Marker 1 creates the board: streams of an empty board are refused (404).
    produce(1).await?;
    let top = format!("{}/v1/boards/{board}/top?limit=1", args.api);
    let deadline = Instant::now() + Duration::from_secs(30);
    while top_marker(&http, &top, markers.base).await.unwrap_or(0) < 1 {
        anyhow::ensure!(Instant::now() < deadline, "marker 1 never showed at {top}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stop = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Seen {
        delays_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
        received: 0,
        last_markers: Vec::with_capacity(args.clients),
        failed: 0,
    }));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.clients.max(1));
    let opening = Arc::new(tokio::sync::Semaphore::new(OPENING));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.clients {
        let client = Client {
            http: http.clone(),
            api: args.api.clone(),
            board: board.clone(),
            markers: markers.clone(),
            seen: seen.clone(),
            stop: stop.clone(),
            ready: ready_tx.clone(),
            opening: opening.clone(),
            phase: Duration::from_micros((i as u64 * 1_000_000) / args.clients.max(1) as u64),
        };
        match args.mode {
            Mode::Stream => tasks.spawn(client.stream()),
            Mode::Poll => tasks.spawn(client.poll()),
        };
    }
    drop(ready_tx);
    for _ in 0..args.clients {
        if ready_rx.recv().await.is_none() {
            break;
        }
    }
    eprintln!("watch: {} clients following ({:?}); producing markers for {:?}", args.clients, args.mode, args.duration);
    let mut ticker = tokio::time::interval(args.marker_every);
    ticker.tick().await;
    for k in 2..capacity as u64 {
        ticker.tick().await;
        produce(k).await?;
    }
    tokio::time::sleep(SETTLE).await;
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    let seen = seen.lock().map_err(|_| anyhow::anyhow!("a client panicked"))?;
    let report = WatchReport::of(args, &seen, markers.count.load(Ordering::Acquire));
    if let Some(dir) = args.report.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.report, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", args.report.display()))?;
    Ok(report)
}

/// The marker index shown first on the list at `url`, if any.
async fn top_marker(http: &reqwest::Client, url: &str, base: u64) -> Option<u64> {
    let body: serde_json::Value = http.get(url).send().await.ok()?.json().await.ok()?;
    marker_of(&body, base)
}

fn marker_of(body: &serde_json::Value, base: u64) -> Option<u64> {
    body["entries"][0]["score"].as_u64().map(|s| s.saturating_sub(base))
}

/// One client.
struct Client {
    http: reqwest::Client,
    api: String,
    board: BoardId,
    markers: Arc<Markers>,
    seen: Arc<Mutex<Seen>>,
    stop: CancellationToken,
    ready: tokio::sync::mpsc::Sender<()>,
    opening: Arc<tokio::sync::Semaphore>,
    /// When in each second a poller polls.
    phase: Duration,
}

/// What one client saw.
#[derive(Default)]
struct Saw {
    last: u64,
    received: u64,
    delays_us: Vec<u64>,
}

impl Saw {
    /// The list now shows marker `k`: every marker up to it has arrived.
    fn arrived(&mut self, markers: &Markers, k: u64) {
        let now = markers.origin.elapsed().as_micros() as u64;
        // Marker 1 made the board before any client came: its delay says nothing.
        for m in (self.last + 1).max(2)..=k {
            if let Some(at) = markers.produced_at(m) {
                self.delays_us.push(now.saturating_sub(at).max(1));
            }
        }
        self.last = self.last.max(k);
    }
}

impl Client {
    async fn stream(self) {
        let url = format!("{}/v1/boards/{}/top:watch?limit=1", self.api, self.board);
        let opened = {
            let _permit = self.opening.acquire().await;
            self.http.get(&url).send().await
        };
        let mut saw = Saw::default();
        let response = match opened {
            Ok(r) if r.status().is_success() => r,
            _ => {
                let _ = self.ready.send(()).await;
                return self.finish(saw, true);
            }
        };
        let mut events = response.bytes_stream().eventsource();
        let mut ready = Some(self.ready.clone());
        let failed = loop {
            let event = tokio::select! {
                () = self.stop.cancelled() => break false,
                event = events.next() => event,
            };
            let Some(Ok(event)) = event else {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(()).await;
                }
                break true;
            };
            let Ok(body) = serde_json::from_str::<serde_json::Value>(&event.data) else { continue };
            saw.received += 1;
            if let Some(k) = marker_of(&body, self.markers.base) {
                saw.arrived(&self.markers, k);
            }
            if let Some(ready) = ready.take() {
                let _ = ready.send(()).await;
            }
        };
        self.finish(saw, failed);
    }

    async fn poll(self) {
        let url = format!("{}/v1/boards/{}/top?limit=1", self.api, self.board);
        let _ = self.ready.send(()).await;
        tokio::time::sleep(self.phase).await;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        let mut saw = Saw::default();
        loop {
            tokio::select! {
                () = self.stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
            if let Some(k) = top_marker(&self.http, &url, self.markers.base).await {
                saw.received += 1;
                saw.arrived(&self.markers, k);
            }
        }
        self.finish(saw, false);
    }

    fn finish(self, saw: Saw, failed: bool) {
        let Ok(mut seen) = self.seen.lock() else { return };
        for d in saw.delays_us {
            let _ = seen.delays_us.record(d);
        }
        seen.received += saw.received;
        if failed {
            seen.failed += 1;
        } else {
            seen.last_markers.push(saw.last);
        }
    }
}

impl WatchReport {
    fn of(args: &WatchArgs, seen: &Seen, last: u64) -> Self {
        let missed: u64 = seen.last_markers.iter().map(|s| last.saturating_sub(*s)).sum::<u64>() + seen.failed * last;
        let ms = |q: f64| seen.delays_us.value_at_quantile(q) as f64 / 1000.0;
        Self {
            mode: args.mode,
            clients: args.clients,
            failed_clients: seen.failed,
            markers: last,
            received: seen.received,
            samples: seen.delays_us.len(),
            missed,
            delay_ms_p50: ms(0.5),
            delay_ms_p90: ms(0.9),
            delay_ms_p99: ms(0.99),
            delay_ms_max: seen.delays_us.max() as f64 / 1000.0,
        }
    }

    /// The report as a few lines of text.
    pub fn table(&self) -> String {
        format!(
            "mode {:?}: {} clients ({} failed), {} markers, {} received, {} arrivals measured, {} missed\n\
             produce-to-client delay ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}\n",
            self.mode,
            self.clients,
            self.failed_clients,
            self.markers,
            self.received,
            self.samples,
            self.missed,
            self.delay_ms_p50,
            self.delay_ms_p90,
            self.delay_ms_p99,
            self.delay_ms_max
        )
    }
}
