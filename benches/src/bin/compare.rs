//! `compare`: measures every layout on the same work and writes
//! `docs/sharding-comparison.md` and `docs/sharding-comparison.svg`.
//!
//! For each board size (default 100,000, 1,000,000 and 10,000,000 players) and
//! layout, on one Redis, and at 1,000,000 players on the 3-node Redis Cluster:
//! load a realistic board, time 200,000 realistic score updates in batches of
//! 5000, time `--ops` ranks, top-100 pages and around-lists one at a time
//! (hdrhistogram p50/p99), read Redis memory per player, delete the board.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use leaderboard_benches::{delete_board, game_batches, layouts, load, measure, memory_per_player, router};
use leaderboard_contract::BoardId;
use loadgen::population::player;
use plotters::prelude::*;
use rand::{Rng, SeedableRng};

/// Compare the sharding layouts and write the report.
#[derive(Debug, Parser)]
struct Args {
    /// Board sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000,10000000")]
    sizes: Vec<usize>,
    /// Reads of each kind per layout and size.
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// The single Redis.
    #[arg(long, env = "LB_REDIS_URL", default_value = "redis://127.0.0.1:6390")]
    redis: String,
    /// Cluster seed nodes (empty: skip the cluster).
    #[arg(
        long,
        env = "LB_REDIS_CLUSTER_URLS",
        default_value = "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103"
    )]
    cluster: String,
    /// Board size on the cluster.
    #[arg(long, default_value_t = 1_000_000)]
    cluster_size: usize,
    /// Output directory.
    #[arg(long, default_value = "docs")]
    out: PathBuf,
}

#[derive(Debug, Clone)]
struct Row {
    target: &'static str,
    layout: String,
    players: usize,
    load_s: f64,
    writes_per_s: f64,
    rank: (f64, f64),
    top: (f64, f64),
    around: (f64, f64),
    bytes_per_player: f64,
}

fn ms(h: &hdrhistogram::Histogram<u64>) -> (f64, f64) {
    (h.value_at_quantile(0.5) as f64 / 1000.0, h.value_at_quantile(0.99) as f64 / 1000.0)
}

async fn measure_layout(
    target: &'static str,
    redis: &str,
    name: &str,
    spec: leaderboard_store::LayoutSpec,
    players: usize,
    ops: usize,
) -> anyhow::Result<Row> {
    let board = BoardId::new(format!("compare-{}", rand::random::<u32>()))?;
    let router = router(redis, spec).await?;
    let started = Instant::now();
    load(&router, &board, players).await?;
    let load_s = started.elapsed().as_secs_f64();
    let batches = game_batches(&board, players, 40, 5000);
    let started = Instant::now();
    for batch in &batches {
        router.apply(batch).await?;
    }
    let writes_per_s = f64::from(40 * 5000) / started.elapsed().as_secs_f64();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
    let picks: Vec<usize> = (0..ops).map(|_| rng.random_range(0..players)).collect();
    let (r, b) = (&router, &board);
    let rank = measure(ops, |i| {
        let p = player(picks[i]);
        async move { r.standing(b, &p).await.map(|_| ()).map_err(Into::into) }
    })
    .await?;
    let top = measure(ops, |_| async move { r.top(b, 0, 100).await.map(|_| ()).map_err(Into::into) }).await?;
    let around = measure(ops, |i| {
        let p = player(picks[i]);
        async move { r.around(b, &p, 5).await.map(|_| ()).map_err(Into::into) }
    })
    .await?;
    let bytes_per_player = memory_per_player(&router, &board).await?;
    delete_board(&router, &board).await?;
    let row = Row {
        target,
        layout: name.to_string(),
        players,
        load_s,
        writes_per_s,
        rank: ms(&rank),
        top: ms(&top),
        around: ms(&around),
        bytes_per_player,
    };
    eprintln!("{row:?}");
    Ok(row)
}

fn round_trips(layout: &str) -> &'static str {
    if layout.starts_with("single") {
        "1 / 1 / 1 / 1"
    } else if layout.starts_with("hash") {
        "1 (all nodes in parallel) / 2 / 1 (fan-out) / 3"
    } else {
        "2 (+1-2 when players change shard) / 1 (fan-out) / 2 / 2"
    }
}

fn command_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine(redis_version: &str) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0)))
        .unwrap_or(0);
    format!(
        "{cores} cores ({cpu}), {:.0} GiB RAM, Linux {}, Redis {redis_version} on loopback, client and Redis on the same machine",
        mem as f64 / 1024.0 / 1024.0,
        command_output("uname", &["-r"])
    )
}

/// Least-squares fit of `y = a + b * log10(n)` through the points.
fn fit_log(points: &[(usize, f64)]) -> Option<(f64, f64)> {
    if points.len() < 2 {
        return None;
    }
    let xs: Vec<f64> = points.iter().map(|(n, _)| (*n as f64).log10()).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(points).map(|(x, p)| (x - mx) * (p.1 - my)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    Some((my - b * mx, b))
}

fn chart(rows: &[Row], path: &std::path::Path) -> anyhow::Result<()> {
    let single: Vec<&Row> = rows.iter().filter(|r| r.target == "redis").collect();
    let mut names: Vec<String> = single.iter().map(|r| r.layout.clone()).collect();
    names.dedup();
    names.sort();
    names.dedup();
    let max_n = single.iter().map(|r| r.players).max().unwrap_or(1) as f64;
    let min_n = single.iter().map(|r| r.players).min().unwrap_or(1) as f64;
    let max_rank = single.iter().map(|r| r.rank.0).fold(0.0, f64::max) * 1.2;
    let max_mem = single.iter().map(|r| r.bytes_per_player).fold(0.0, f64::max) * 1.2;
    let root = SVGBackend::new(path, (1100, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(550);
    let colors = [RED, BLUE, GREEN, MAGENTA, BLACK, CYAN];
    for (area, title, value, max) in [
        (&left, "rank latency p50 (ms) vs players", 0usize, max_rank),
        (&right, "Redis memory per player (bytes) vs players", 1usize, max_mem),
    ] {
        let mut c = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d((min_n / 1.5..max_n * 1.5).log_scale(), 0.0..max.max(1e-3))?;
        c.configure_mesh().x_desc("players (log scale)").draw()?;
        for (i, name) in names.iter().enumerate() {
            let color = colors[i % colors.len()];
            let pts: Vec<(f64, f64)> = single
                .iter()
                .filter(|r| &r.layout == name)
                .map(|r| (r.players as f64, if value == 0 { r.rank.0 } else { r.bytes_per_player }))
                .collect();
            c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            c.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[allow(clippy::too_many_lines, reason = "the report's text reads best in one place")]
fn report(rows: &[Row], args: &Args, machine: &str, elapsed_s: f64) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Sharding layouts compared\n");
    let _ = writeln!(
        md,
        "Measured in one run of `cargo run --release -p leaderboard-benches --bin compare` (wrapped by `scripts/compare-layouts.sh`), {elapsed_s:.0} s in all.\n"
    );
    let _ = writeln!(md, "Machine: {machine}.\n");
    let _ = writeln!(
        md,
        "Work: boards loaded with loadgen's heavy-tailed initial scores (seed {}); writes are 40 batches of 5000 realistic game results (20% beat the personal best, Zipf activity); each read kind runs {} times one at a time from one client (latency, not throughput). `range` boundaries split each board into equal-population shards. Memory is `MEMORY USAGE` of the board's keys divided by its players.\n",
        leaderboard_benches::SEED,
        args.ops
    );
    let _ = writeln!(
        md,
        "| where | layout | players | bulk load players/s | writes/s | rank p50 / p99 ms | top-100 p50 / p99 ms | around p50 / p99 ms | bytes/player | round trips write / rank / top / around |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {:.0} | {:.3} / {:.3} | {:.3} / {:.3} | {:.3} / {:.3} | {:.1} | {} |",
            r.target,
            r.layout,
            r.players,
            r.players as f64 / r.load_s,
            r.writes_per_s,
            r.rank.0,
            r.rank.1,
            r.top.0,
            r.top.1,
            r.around.0,
            r.around.1,
            r.bytes_per_player,
            round_trips(&r.layout)
        );
    }
    let _ = writeln!(md, "\n![rank latency and memory against players](sharding-comparison.svg)\n");
    let _ = writeln!(md, "## Projection to 100 M and 1 B players\n");
    let _ = writeln!(
        md,
        "From the single-Redis rows: rank p50 fitted as `a + b·log10(players)` (sorted-set operations are O(log n)), memory per player taken from the largest board measured.\n"
    );
    let _ =
        writeln!(md, "| layout | fitted rank p50 at 100 M (ms) | at 1 B (ms) | memory at 100 M (GiB) | at 1 B (GiB) |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    let mut names: Vec<&String> = rows.iter().filter(|r| r.target == "redis").map(|r| &r.layout).collect();
    names.sort();
    names.dedup();
    for name in names {
        let pts: Vec<(usize, f64)> =
            rows.iter().filter(|r| r.target == "redis" && &r.layout == name).map(|r| (r.players, r.rank.0)).collect();
        let bpp = rows
            .iter()
            .filter(|r| r.target == "redis" && &r.layout == name)
            .max_by_key(|r| r.players)
            .map_or(0.0, |r| r.bytes_per_player);
        if let Some((a, b)) = fit_log(&pts) {
            let gib = |n: f64| n * bpp / 1024f64.powi(3);
            let _ = writeln!(
                md,
                "| {name} | {:.3} | {:.3} | {:.1} | {:.1} |",
                a + b * 8.0,
                a + b * 9.0,
                gib(1e8),
                gib(1e9)
            );
        }
    }
    let _ = writeln!(
        md,
        "\nAssumptions, stated so they can be checked: (1) latency keeps growing with log(players) as measured between the sizes above; (2) the client, the network and Redis behave as on this machine (loopback, no other load), so absolute numbers are a floor; (3) memory per player stays constant (it does for skiplist-encoded sorted sets); (4) at 1 B players the memory column no longer fits one node: the board must be spread over a Redis Cluster, where `hash` and `range` shards land on different nodes and every fan-out pays the slowest node's round trip.\n"
    );
    let _ = writeln!(md, "## Which layout when\n");
    let largest = rows.iter().filter(|r| r.target == "redis").map(|r| r.players).max().unwrap_or(0);
    let at_largest: Vec<&Row> = rows.iter().filter(|r| r.target == "redis" && r.players == largest).collect();
    let lowest = |f: fn(&Row) -> f64| {
        at_largest.iter().min_by(|a, b| f(a).total_cmp(&f(b))).map_or(String::new(), |r| r.layout.clone())
    };
    let most_writes = at_largest
        .iter()
        .max_by(|a, b| a.writes_per_s.total_cmp(&b.writes_per_s))
        .map_or(String::new(), |r| r.layout.clone());
    let _ = writeln!(
        md,
        "Measured at {largest} players: lowest rank p50 **{}**, lowest top-100 p50 **{}**, lowest around p50 **{}**, most writes/s **{most_writes}**.\n",
        lowest(|r| r.rank.0),
        lowest(|r| r.top.0),
        lowest(|r| r.around.0),
    );
    let _ = writeln!(
        md,
        "- **single** while a board fits one Redis node comfortably (about 100 bytes per player: tens of millions of players per node). Every read is one round trip and ranks are exact."
    );
    let _ = writeln!(
        md,
        "- **hash:N** when one board's writes or memory outgrow a node and reads are mostly the top of the board: writes spread evenly over N keys (and nodes, on a cluster), but a rank counts in every shard (2 round trips, N commands) and an around-list seeks every shard (3 round trips)."
    );
    let _ = writeln!(
        md,
        "- **range** (equal-population boundaries, rebalanced online as scores drift) for the largest boards: a rank needs one count in the player's own shard plus precomputed sizes of the shards above, at the price of a bounded rank error between size refreshes (`rank_error_bound`) and extra round trips when a player crosses a boundary."
    );
    md
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let mut rows = Vec::new();
    for &size in &args.sizes {
        for (name, spec) in layouts(size) {
            rows.push(measure_layout("redis", &args.redis, &name, spec, size, args.ops).await?);
        }
    }
    if !args.cluster.trim().is_empty() {
        for (name, spec) in layouts(args.cluster_size) {
            rows.push(
                measure_layout(
                    "cluster",
                    &format!("cluster:{}", args.cluster),
                    &name,
                    spec,
                    args.cluster_size,
                    args.ops,
                )
                .await?,
            );
        }
    }
    let probe = router(&args.redis, leaderboard_store::LayoutSpec::Single).await?;
    let info: String = probe.store().query(redis::cmd("INFO").arg("server")).await?;
    let version = info.lines().find_map(|l| l.strip_prefix("redis_version:")).unwrap_or("?").trim().to_string();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    chart(&rows, &args.out.join("sharding-comparison.svg"))?;
    let md = report(&rows, &args, &machine(&version), started.elapsed().as_secs_f64());
    std::fs::write(args.out.join("sharding-comparison.md"), md)?;
    eprintln!("wrote {}/sharding-comparison.md and .svg", args.out.display());
    Ok(())
}
