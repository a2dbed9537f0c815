//! The scale run: as many players as this machine holds, on the `range`
//! layout over the Redis Cluster.
//!
//! Loads `--players` players (loadgen's heavy-tailed initial scores) on
//! `--start-shards` equal-population shards, measures Redis memory per player
//! (the primaries' `used_memory` before and after), rank and top-100 latency
//! (one request at a time, p50/p99), then rebalances the board online to
//! `--shards` shards and times it, measures again, and deletes the board.
//! It refuses to start when the machine's free memory cannot hold the board
//! on every primary and replica with a margin: measure before you scale.
//!
//! `cargo run --release -p leaderboard-benches --bin scale -- --players 20000000`

use std::time::Instant;

use anyhow::{Context as _, ensure};
use clap::Parser;
use leaderboard_benches::{SEED, equal_boundaries, load, measure, router};
use leaderboard_contract::BoardId;
use leaderboard_store::{LayoutSpec, RebalanceOptions, Router};
use loadgen::population::player;
use rand::{Rng, SeedableRng};

/// Run the range layout at scale on the cluster.
#[derive(Debug, Parser)]
struct Args {
    /// Players on the board.
    #[arg(long, default_value_t = 20_000_000)]
    players: usize,
    /// Equal-population shards while loading.
    #[arg(long, default_value_t = 4)]
    start_shards: usize,
    /// Equal-population shards after the rebalance.
    #[arg(long, default_value_t = 16)]
    shards: usize,
    /// Reads of each kind measured.
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// Cluster seed nodes.
    #[arg(long, env = "LB_REDIS_CLUSTER_URLS")]
    cluster: String,
    /// Copies of each key the cluster keeps (a primary and its replicas).
    #[arg(long, default_value_t = 2)]
    copies: u64,
    /// Bytes per player assumed by the memory check before loading (measured: ~107 on `range`).
    #[arg(long, default_value_t = 120)]
    assumed_bytes_per_player: u64,
}

/// Bytes of memory the kernel says are available.
fn available_memory() -> anyhow::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("MemAvailable in /proc/meminfo")?;
    Ok(kb * 1024)
}

/// The cluster's primaries, as URLs.
async fn primaries(router: &Router) -> anyhow::Result<Vec<String>> {
    let slots: redis::Value = router.store().query(redis::cmd("CLUSTER").arg("SLOTS")).await?;
    let redis::Value::Array(ranges) = slots else { anyhow::bail!("unexpected CLUSTER SLOTS reply") };
    let mut ports = std::collections::BTreeSet::new();
    for range in ranges {
        if let redis::Value::Array(fields) = range
            && let Some(redis::Value::Array(primary)) = fields.get(2)
            && let (Some(redis::Value::BulkString(host)), Some(redis::Value::Int(port))) =
                (primary.first(), primary.get(1))
        {
            ports.insert(format!("redis://{}:{port}", String::from_utf8_lossy(host)));
        }
    }
    Ok(ports.into_iter().collect())
}

/// A field of `INFO memory`, summed over the cluster's primaries.
async fn memory_field(router: &Router, field: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    for url in primaries(router).await? {
        let client = redis::Client::open(url.as_str())?;
        let mut con = client.get_multiplexed_async_connection().await?;
        let info: String = redis::cmd("INFO").arg("memory").query_async(&mut con).await?;
        total += info
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .with_context(|| format!("{field} in INFO memory"))?;
    }
    Ok(total)
}

/// Waits until the primaries have freed what the rebalance deleted (`UNLINK`
/// frees in a background thread, which would otherwise share the cores with
/// the reads being measured).
async fn wait_until_freed(router: &Router) -> anyhow::Result<()> {
    while memory_field(router, "lazyfree_pending_objects").await? > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}

fn ms(h: &hdrhistogram::Histogram<u64>) -> String {
    format!("{:.3} / {:.3}", h.value_at_quantile(0.5) as f64 / 1000.0, h.value_at_quantile(0.99) as f64 / 1000.0)
}

async fn reads(router: &Router, board: &BoardId, players: usize, ops: usize) -> anyhow::Result<(String, String)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let picks: Vec<usize> = (0..ops).map(|_| rng.random_range(0..players)).collect();
    let rank = measure(ops, |i| {
        let p = player(picks[i]);
        async move {
            router.standing(board, &p).await?.context("a loaded player is on the board")?;
            Ok(())
        }
    })
    .await?;
    let top = measure(ops, |_| async move {
        ensure!(router.top(board, 0, 100).await?.entries.len() == 100, "top 100");
        Ok(())
    })
    .await?;
    Ok((ms(&rank), ms(&top)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let needed = args.players as u64 * args.assumed_bytes_per_player * args.copies * 3 / 2;
    let available = available_memory()?;
    ensure!(
        needed <= available,
        "{} players need about {:.1} GiB ({} copies, 50% margin); {:.1} GiB are available",
        args.players,
        needed as f64 / f64::from(1 << 30),
        args.copies,
        available as f64 / f64::from(1 << 30)
    );
    let seeds = format!("cluster:{}", args.cluster);
    let spec = LayoutSpec::Range { boundaries: equal_boundaries(args.players, args.start_shards) };
    let router = router(&seeds, spec).await?;
    let board = BoardId::new(format!("scale-{}", rand::random::<u32>()))?;
    let before = memory_field(&router, "used_memory").await?;
    let started = Instant::now();
    load(&router, &board, args.players).await?;
    let load_s = started.elapsed().as_secs_f64();
    let after = memory_field(&router, "used_memory").await?;
    let per_player = after.saturating_sub(before) as f64 / args.players as f64;
    println!("players: {}", args.players);
    println!("load: {load_s:.0} s ({:.0} players/s)", args.players as f64 / load_s);
    println!("memory: {per_player:.1} bytes per player on the primaries (x{} with replicas)", args.copies);
    let (rank, top) = reads(&router, &board, args.players, args.ops).await?;
    println!("{} shards: rank p50/p99 {rank} ms, top-100 p50/p99 {top} ms", args.start_shards);

    let target = equal_boundaries(args.players, args.shards);
    let started = Instant::now();
    let options = RebalanceOptions { chunk: 5000, max_chunks: None, grace: std::time::Duration::from_secs(1) };
    router.rebalance(&board, target, options).await?;
    let rebalance_s = started.elapsed().as_secs_f64();
    println!(
        "rebalance {} -> {} shards: {:.0} s (copy, switch, 1 s grace, delete)",
        args.start_shards, args.shards, rebalance_s
    );
    wait_until_freed(&router).await?;
    let (rank, top) = reads(&router, &board, args.players, args.ops).await?;
    println!("{} shards: rank p50/p99 {rank} ms, top-100 p50/p99 {top} ms", args.shards);
    router.delete_board(&board).await?;
    Ok(())
}
