//! The read load: top-100 and rank requests at a fixed rate, latency per route.
//!
//! A top-100 read picks a board uniformly; a rank read picks a player
//! uniformly and asks their board.
//!
//! In a run that erases and bans players, what an answer shows of them is an
//! observation for [`crate::marks::judge`] (every row of theirs on a top
//! page, every rank read of theirs), and a 404 of theirs is no error: it is
//! judged there.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::boards::BoardSet;
use crate::marks::{Observation, Seen};
use crate::pacer::Pacer;
use crate::population::player_id;

/// The two read routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /v1/boards/{board}/top`.
    Top,
    /// `GET /v1/boards/{board}/players/{player}`.
    Rank,
}

/// Latency and errors of one route.
#[derive(Debug)]
pub struct RouteStats {
    /// Latency from each request's due time, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Requests that did not get a 2xx.
    pub errors: u64,
    /// Errors by kind (`HTTP 503 timeout`, `transport: ...`).
    pub error_kinds: BTreeMap<String, u64>,
}

impl RouteStats {
    fn new() -> anyhow::Result<Self> {
        Ok(Self { latency_us: Histogram::new_with_bounds(1, 120_000_000, 3)?, errors: 0, error_kinds: BTreeMap::new() })
    }
}

/// What one request is about, for the observations of watched players.
#[derive(Debug, Clone, Copy)]
enum About {
    /// Nothing watched: only success counts.
    Nothing,
    /// A top page: every watched player's row on it.
    Page,
    /// A watched player's rank.
    Player(usize),
}

/// One request as it went: what went wrong (`None`: nothing), and what it
/// showed of watched players.
struct Outcome {
    error: Option<String>,
    seen: Vec<(usize, Seen)>,
}

/// Performs one request.
async fn request(client: &reqwest::Client, url: &str, about: About, watched: &HashSet<usize>) -> Outcome {
    let failed = |error: String| Outcome { error: Some(error), seen: Vec::new() };
    let response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => return failed(format!("transport: {e}")),
    };
    let status = response.status().as_u16();
    if matches!(about, About::Nothing) && response.status().is_success() {
        return Outcome { error: response.bytes().await.err().map(|e| format!("body: {e}")), seen: Vec::new() };
    }
    let body: serde_json::Value = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(e) => return failed(format!("body: {e}")),
    };
    let seen = match about {
        About::Player(i) => crate::marks::seen_in_standing(status, &body).map(|seen| vec![(i, seen)]),
        About::Page if status == 200 => Some(crate::marks::seen_on_page(&body, watched)),
        About::Page | About::Nothing => None,
    };
    match seen {
        Some(seen) => Outcome { error: None, seen },
        None if status == 200 => Outcome { error: None, seen: Vec::new() },
        None => failed(format!("HTTP {status} {}", body["error"]["code"].as_str().unwrap_or(""))),
    }
}

/// What the read load measured.
#[derive(Debug)]
pub struct ReadOutcome {
    /// Top-100 requests.
    pub top: RouteStats,
    /// Rank requests.
    pub rank: RouteStats,
    /// How long the load ran.
    pub elapsed: Duration,
    /// What the answers showed of the watched players.
    pub observations: Vec<Observation>,
}

/// Where and what to read.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    /// Base URL of the api.
    pub api: String,
    /// The boards.
    pub boards: BoardSet,
    /// Players to pick ranks from.
    pub players: usize,
    /// The `season` every read asks for (`all` on boards with a reset: every player has an
    /// all-time score, so a miss is an error); `None` for boards without one.
    pub season: Option<String>,
    /// Requests per second.
    pub rate: f64,
    /// Share of top-100 requests.
    pub top_share: f64,
    /// Most requests in flight.
    pub concurrency: usize,
    /// Seed for player choice.
    pub seed: u64,
    /// Players erased or banned during the run ([`crate::marks`]): what answers show of them is observed.
    pub watched: Arc<HashSet<usize>>,
}

/// Issues reads until `stop`. A request waits for a free slot when
/// `concurrency` are in flight; its latency still counts from its due time.
///
/// # Errors
/// Only for a histogram error.
pub async fn run(client: reqwest::Client, plan: ReadPlan, stop: CancellationToken) -> anyhow::Result<ReadOutcome> {
    let mut pacer = Pacer::new(Instant::now(), plan.rate, None);
    let slots = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let (tx, mut rx) = mpsc::channel::<(Route, Duration, Outcome, Vec<Observation>)>(plan.concurrency.max(1) * 4);
    let mut rng = SmallRng::seed_from_u64(plan.seed ^ 0x5eed);
    let started = Instant::now();
    let collector = tokio::spawn(async move {
        let (mut top, mut rank) = (RouteStats::new()?, RouteStats::new()?);
        let mut observations = Vec::new();
        while let Some((route, latency, outcome, seen)) = rx.recv().await {
            let stats = if route == Route::Top { &mut top } else { &mut rank };
            let _ = stats.latency_us.record(latency.as_micros().max(1) as u64);
            if let Some(kind) = outcome.error {
                stats.errors += 1;
                *stats.error_kinds.entry(kind).or_default() += 1;
            }
            observations.extend(seen);
        }
        anyhow::Ok((top, rank, observations))
    });
    let season_param =
        |separator: char| plan.season.as_ref().map_or_else(String::new, |s| format!("{separator}season={s}"));
    while !stop.is_cancelled() {
        let (first, n) = pacer.take_due(Instant::now(), 1000);
        for k in 0..n {
            let due = pacer.due_time(first + k);
            let route = if rng.random_bool(plan.top_share) { Route::Top } else { Route::Rank };
            let (url, about) = match route {
                Route::Top => {
                    let board = &plan.boards.ids()[rng.random_range(0..plan.boards.len())];
                    let about = if plan.watched.is_empty() { About::Nothing } else { About::Page };
                    (format!("{}/v1/boards/{board}/top?limit=100{}", plan.api, season_param('&')), about)
                }
                Route::Rank => {
                    let player = rng.random_range(0..plan.players);
                    let (board, id) = (plan.boards.of(player), player_id(player));
                    let about = if plan.watched.contains(&player) { About::Player(player) } else { About::Nothing };
                    (format!("{}/v1/boards/{board}/players/{id}{}", plan.api, season_param('?')), about)
                }
            };
            let permit = tokio::select! {
                () = stop.cancelled() => break,
                p = slots.clone().acquire_owned() => p?,
            };
            let (client, tx, watched) = (client.clone(), tx.clone(), plan.watched.clone());
            tokio::spawn(async move {
                let sent = Instant::now();
                let mut outcome = request(&client, &url, about, &watched).await;
                let done = Instant::now();
                let name = if route == Route::Top { "top" } else { "player" };
                let seen = std::mem::take(&mut outcome.seen)
                    .into_iter()
                    .map(|(player, seen)| Observation { player, route: name, sent, done, seen })
                    .collect();
                let _ = tx.send((route, due.elapsed(), outcome, seen)).await;
                drop(permit);
            });
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep_until(pacer.next_due()) => {}
        }
    }
    let elapsed = started.elapsed();
    // Wait for requests in flight, then close the channel.
    let _ = slots.acquire_many(plan.concurrency.max(1) as u32).await;
    drop(tx);
    let (top, rank, observations) = collector.await??;
    Ok(ReadOutcome { top, rank, elapsed, observations })
}
