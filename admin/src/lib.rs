//! `lb-admin`: the operator's command line for boards and their layouts.
//!
//! | command | what it does |
//! |---|---|
//! | `boards` | every board: recorded layout, total, each shard's score range and size, rebalance state |
//! | `propose <board> --shards N` | equal-population boundaries for a `range` (or `single`) board |
//! | `rebalance <board> (--boundaries a,b,.. \| --shards N)` | moves a `range` board to new boundaries online, with a progress bar; resumes the same rebalance if one was interrupted; `--only-if-skewed R` does nothing unless the largest shard holds more than `R` times the mean |
//! | `watch <board>` | follows a rebalance another process runs, until it ends |
//! | `resume <board>` | finishes the interrupted rebalance, to the boundaries it was started with |
//! | `abort <board>` | abandons the rebalance in progress; its half-built generation is deleted after the grace period |
//!
//! Every command reads the layout each board was created with from Redis
//! (`shard_router::board_record`), so it needs only `--redis`. `--json` prints
//! one JSON document instead of text (no progress bar), for scripts.
//!
//! Not built: migrating a board between layouts (`single` ⇄ `hash:N` ⇄ `range`), and a
//! policy that rebalances by itself; `rebalance --only-if-skewed` run from a scheduler is
//! the supported way to rebalance on a threshold.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use leaderboard_contract::BoardId;
use serde::Serialize;
use shard_router::{
    BoardStats, LayoutSpec, RebalanceOptions, RebalanceOutcome, Router, RouterOptions, Store, StoreOptions,
    board_record,
};

/// Operate leaderboards: list boards, propose boundaries, drive and follow range rebalances.
#[derive(Debug, Parser)]
#[command(name = "lb-admin", version, about)]
pub struct Cli {
    /// Redis (same syntax as the services' `--redis`).
    #[arg(long, global = true, env = "LB_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis: String,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every board with its layout, total and shards.
    Boards,
    /// Equal-population boundaries for a board's current players.
    Propose {
        /// The board.
        board: String,
        /// How many shards.
        #[arg(long)]
        shards: usize,
    },
    /// Moves a range board to new boundaries online (or resumes the same move).
    Rebalance {
        /// The board.
        board: String,
        /// The new boundaries (lower bounds of shards 1..), comma-separated.
        #[arg(long, value_delimiter = ',', conflicts_with = "shards", required_unless_present = "shards")]
        boundaries: Vec<u64>,
        /// Or: equal-population boundaries for this many shards.
        #[arg(long)]
        shards: Option<usize>,
        /// Do nothing unless the largest shard holds more than this many times the mean.
        #[arg(long)]
        only_if_skewed: Option<f64>,
        /// Chunk size and grace period.
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Follows a rebalance another process runs, until it ends.
    Watch {
        /// The board.
        board: String,
    },
    /// Finishes an interrupted rebalance, to the boundaries it was started with.
    Resume {
        /// The board.
        board: String,
        /// Chunk size and grace period.
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Abandons the rebalance in progress.
    Abort {
        /// The board.
        board: String,
        /// How long the half-built generation is kept before deletion (reads in flight).
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        grace: Duration,
    },
}

/// How a rebalance runs.
#[derive(Debug, Clone, clap::Args)]
pub struct Tuning {
    /// Members copied per step.
    #[arg(long, default_value_t = 1000)]
    pub chunk: usize,
    /// How long the replaced generation is kept after the switch (longer than any read).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
}

/// One board, as `boards` reports it.
#[derive(Debug, Serialize)]
struct BoardLine {
    board: String,
    /// The recorded layout (`range` boards: with their current boundaries).
    layout: String,
    #[serde(flatten)]
    stats: Option<BoardStats>,
}

/// Runs `cli`, writing its report to `out`.
///
/// # Errors
/// Redis unreachable, an unknown board, a board of the wrong layout for the command, or a
/// rebalance conflict (another rebalance to other boundaries is in progress).
pub async fn run(cli: Cli, out: &mut impl Write) -> anyhow::Result<()> {
    let target = shard_router::RedisTarget::parse(&cli.redis)?;
    let store = Store::connect(&target, StoreOptions::default()).await.context("connecting to redis")?;
    match cli.command {
        Command::Boards => {
            let mut lines = Vec::new();
            for board in board_record::boards(&store).await? {
                lines.push(describe(&store, &board).await?);
            }
            if cli.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&lines)?)?;
            } else {
                for line in &lines {
                    print_board(out, line)?;
                }
            }
        }
        Command::Propose { board, shards } => {
            let board = board_id(&board)?;
            let router = router_for(&store, &board).await?;
            let boundaries = router.propose_boundaries(&board, shards).await?;
            if cli.json {
                writeln!(out, "{}", serde_json::json!({ "board": board.as_str(), "boundaries": boundaries }))?;
            } else {
                writeln!(out, "{}", join(&boundaries))?;
            }
        }
        Command::Rebalance { board, boundaries, shards, only_if_skewed, tuning } => {
            let board = board_id(&board)?;
            let router = range_router(&store, &board).await?;
            if let Some(ratio) = only_if_skewed {
                let stats = router.stats(&board).await?;
                let skew = skew(&stats);
                if skew <= ratio {
                    report(out, cli.json, &board, &format!("not skewed: largest shard {skew:.2}x the mean"))?;
                    return Ok(());
                }
            }
            let boundaries = match shards {
                Some(n) => router.propose_boundaries(&board, n).await?,
                None => boundaries,
            };
            let outcome = drive(&router, &board, boundaries, &tuning, cli.json).await?;
            report(out, cli.json, &board, &outcome)?;
        }
        Command::Resume { board, tuning } => {
            let board = board_id(&board)?;
            let router = range_router(&store, &board).await?;
            let Some(migration) = router.range_meta(&board).await?.migration else {
                bail!("board {board} has no rebalance in progress");
            };
            let outcome = drive(&router, &board, migration.target.boundaries, &tuning, cli.json).await?;
            report(out, cli.json, &board, &outcome)?;
        }
        Command::Watch { board } => {
            let board = board_id(&board)?;
            let router = range_router(&store, &board).await?;
            watch(&router, &board, cli.json).await?;
            report(out, cli.json, &board, "no rebalance in progress")?;
        }
        Command::Abort { board, grace } => {
            let board = board_id(&board)?;
            let router = range_router(&store, &board).await?;
            let aborted = router.abort_rebalance(&board, grace).await?;
            let what = if aborted { "rebalance abandoned; its generation deleted" } else { "no rebalance in progress" };
            report(out, cli.json, &board, what)?;
        }
    }
    Ok(())
}

fn board_id(name: &str) -> anyhow::Result<BoardId> {
    BoardId::new(name.to_string()).map_err(|e| anyhow::anyhow!("invalid board name {name:?}: {e}"))
}

fn join(values: &[u64]) -> String {
    values.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// A router for `board` with the layout it is recorded with.
async fn router_for(store: &Store, board: &BoardId) -> anyhow::Result<Router> {
    let recorded = board_record::recorded(store, board).await?.with_context(|| {
        format!("board {board} has no recorded layout (it does not exist, or predates layout records)")
    })?;
    let spec: LayoutSpec = match recorded.as_str() {
        // A range board's boundaries are in its metadata; these only matter for new boards.
        "range" => LayoutSpec::Range { boundaries: Vec::new() },
        other => other.parse()?,
    };
    Ok(Router::new(store.clone(), spec, RouterOptions::default()))
}

async fn range_router(store: &Store, board: &BoardId) -> anyhow::Result<Router> {
    let router = router_for(store, board).await?;
    if !matches!(router.spec(), LayoutSpec::Range { .. }) {
        bail!("board {board} uses layout {}, not range: only range boards rebalance", router.spec());
    }
    Ok(router)
}

async fn describe(store: &Store, board: &BoardId) -> anyhow::Result<BoardLine> {
    let router = router_for(store, board).await?;
    let stats = router.stats(board).await?;
    Ok(BoardLine { board: board.to_string(), layout: stats.layout.clone(), stats: Some(stats) })
}

fn print_board(out: &mut impl Write, line: &BoardLine) -> std::io::Result<()> {
    let Some(stats) = &line.stats else { return writeln!(out, "{}  {}", line.board, line.layout) };
    let rebalancing = if stats.rebalancing == Some(true) { "  (rebalancing)" } else { "" };
    writeln!(out, "{}  {}  {} players{rebalancing}", line.board, line.layout, stats.total)?;
    for shard in &stats.shards {
        let range = match (shard.min_score, shard.max_score) {
            (Some(min), Some(max)) => format!("{min}..={max}"),
            (Some(min), None) => format!("{min}.."),
            _ => "-".into(),
        };
        writeln!(out, "  shard {:>3}  {:>14}  {:>12} players", shard.index, range, shard.size)?;
    }
    Ok(())
}

/// The largest shard's size over the mean size.
fn skew(stats: &BoardStats) -> f64 {
    let largest = stats.shards.iter().map(|s| s.size).max().unwrap_or(0);
    let mean = stats.total as f64 / stats.shards.len().max(1) as f64;
    if mean == 0.0 { 0.0 } else { largest as f64 / mean }
}

fn report(out: &mut impl Write, json: bool, board: &BoardId, what: &str) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::json!({ "board": board.as_str(), "result": what }))
    } else {
        writeln!(out, "{board}: {what}")
    }
}

/// Runs (or resumes) the rebalance in steps, showing how many members were copied.
async fn drive(
    router: &Router,
    board: &BoardId,
    boundaries: Vec<u64>,
    tuning: &Tuning,
    quiet: bool,
) -> anyhow::Result<String> {
    let total = router.stats(board).await?.total;
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(total) };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} players copied ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("{board} -> {}", join(&boundaries)));
    let options = RebalanceOptions { chunk: tuning.chunk, max_chunks: Some(20), grace: tuning.grace };
    loop {
        match router.rebalance(board, boundaries.clone(), options).await? {
            RebalanceOutcome::Paused { copied } => bar.inc(copied),
            RebalanceOutcome::Done { generation, copied } => {
                bar.inc(copied);
                bar.finish_and_clear();
                return Ok(format!("now on generation {generation}, boundaries {}", join(&boundaries)));
            }
            RebalanceOutcome::Unchanged => {
                bar.finish_and_clear();
                return Ok(format!("already on boundaries {}", join(&boundaries)));
            }
        }
        // The last steps of a resumed rebalance may pause with nothing copied: keep going.
        if bar.position() >= bar.length().unwrap_or(u64::MAX) {
            bar.set_length(bar.position() + 1);
        }
    }
}

/// Polls the board's metadata until no rebalance is in progress.
async fn watch(router: &Router, board: &BoardId, quiet: bool) -> anyhow::Result<()> {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] shard {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    loop {
        let meta = router.range_meta(board).await?;
        let Some(migration) = meta.migration else {
            bar.finish_and_clear();
            return Ok(());
        };
        bar.set_length(meta.active.shard_count() as u64);
        bar.set_position(migration.shard as u64);
        bar.set_message(format!("{board} -> {}", join(&migration.target.boundaries)));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
