//! Shared pieces of the sharding benchmarks: the layouts compared, realistic
//! boards loaded into Redis, and latency measurement.
//!
//! Scores follow loadgen's distribution (`loadgen::population`): the same
//! heavy-tailed initial scores the demo seeds, so benchmarks and the demo see
//! the same shard balance.

use std::time::Instant;

use anyhow::Context as _;
use futures::stream::{self, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use leaderboard_contract::BoardId;
use leaderboard_semantics::ScoreUpdate;
use leaderboard_store::{LayoutSpec, RedisTarget, Router, RouterOptions, Store, StoreOptions, equal_population};
use loadgen::population::{Population, player};

/// Seed of the benchmark population.
pub const SEED: u64 = 42;

/// The layouts compared, by display name: `single`, `hash:4`, `hash:16`,
/// and `range` with 4 and 16 equal-population shards.
pub fn layouts(players: usize) -> Vec<(String, LayoutSpec)> {
    vec![
        ("single".into(), LayoutSpec::Single),
        ("hash:4".into(), LayoutSpec::Hash { shards: 4 }),
        ("hash:16".into(), LayoutSpec::Hash { shards: 16 }),
        ("range:4 (equal)".into(), LayoutSpec::Range { boundaries: equal_boundaries(players, 4) }),
        ("range:16 (equal)".into(), LayoutSpec::Range { boundaries: equal_boundaries(players, 16) }),
    ]
}

/// Equal-population boundaries for the benchmark population.
pub fn equal_boundaries(players: usize, shards: usize) -> Vec<u64> {
    let mut scores: Vec<u64> = (0..players).map(|i| Population::initial_score(SEED, i)).collect();
    scores.sort_unstable();
    equal_population(&scores, shards)
}

/// Connects a router for `spec` to `redis` (a URL, or `cluster:` seeds).
///
/// # Errors
/// When Redis is unreachable.
pub async fn router(redis: &str, spec: LayoutSpec) -> anyhow::Result<Router> {
    // Bulk loads and `MEMORY USAGE ... SAMPLES 0` (a walk of every member) on
    // 10 M-player sets take seconds: far beyond a service's reply timeout.
    let options = StoreOptions { response_timeout: std::time::Duration::from_secs(120), ..StoreOptions::default() };
    let store = Store::connect(&RedisTarget::parse(redis)?, options).await.context("connecting to redis")?;
    Ok(Router::new(store, spec, RouterOptions::default()))
}

/// Writes `players` initial scores to `board` in batches of 5000, 4 in flight.
///
/// # Errors
/// When Redis fails.
pub async fn load(router: &Router, board: &BoardId, players: usize) -> anyhow::Result<()> {
    stream::iter((0..players).step_by(5000))
        .map(|from| async move {
            let batch: Vec<ScoreUpdate> = (from..(from + 5000).min(players))
                .map(|i| ScoreUpdate {
                    board: board.clone(),
                    player: player(i),
                    score: Population::initial_score(SEED, i),
                    time_ms: 0,
                    meta: None,
                    source: None,
                })
                .collect();
            router.apply(&batch).await
        })
        .buffer_unordered(4)
        .try_for_each(|_closed| async { Ok(()) })
        .await?;
    router.refresh_sizes(board).await?;
    Ok(())
}

/// A batch of realistic game results for `board` (most do not beat the personal best).
///
/// # Panics
/// When the population cannot be built (never for positive `players`).
pub fn game_batches(board: &BoardId, players: usize, batches: usize, size: usize) -> Vec<Vec<ScoreUpdate>> {
    let mut population = Population::new(SEED, players, 1.1, 0.2).expect("valid population parameters");
    (0..batches)
        .map(|_| {
            (0..size)
                .map(|_| {
                    let g = population.next_game();
                    ScoreUpdate {
                        board: board.clone(),
                        player: player(g.player),
                        score: g.score,
                        time_ms: 0,
                        meta: None,
                        source: None,
                    }
                })
                .collect()
        })
        .collect()
}

/// Deletes every key of a board (all layouts' key patterns), cluster-safe.
///
/// # Errors
/// When Redis fails.
pub async fn delete_board(router: &Router, board: &BoardId) -> anyhow::Result<()> {
    router.delete_board(board).await?;
    Ok(())
}

/// Bytes Redis uses for the board's sorted sets, per player.
///
/// # Errors
/// When Redis fails.
pub async fn memory_per_player(router: &Router, board: &BoardId) -> anyhow::Result<f64> {
    let stats = router.stats(board).await?;
    let mut bytes = 0u64;
    for shard in &stats.shards {
        let used: Option<u64> =
            router.store().query(redis::cmd("MEMORY").arg("USAGE").arg(&shard.key).arg("SAMPLES").arg(0)).await?;
        bytes += used.unwrap_or(0);
    }
    Ok(bytes as f64 / stats.total.max(1) as f64)
}

/// Runs `op` `n` times, one at a time, and returns the latency histogram in microseconds.
///
/// # Errors
/// The first error of `op`.
pub async fn measure<F, Fut>(n: usize, mut op: F) -> anyhow::Result<Histogram<u64>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut h = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    for i in 0..n {
        let started = Instant::now();
        op(i).await?;
        h.record(started.elapsed().as_micros().max(1) as u64)?;
    }
    Ok(h)
}
