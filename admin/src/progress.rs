//! Driving and following long layout operations with a progress bar.
//!
//! Rebalances and migrations run in bounded steps (`max_chunks` per call): each
//! step reports the members it copied, which moves the bar, and the next call
//! resumes from the position saved in Redis.

use std::future::Future;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use leaderboard_contract::BoardId;
use leaderboard_store::layout::record;
use leaderboard_store::{LayoutSpec, MigrationOutcome, RebalanceOptions, RebalanceOutcome, Router};

use crate::output::join;

/// How a rebalance or migration runs: `--chunk` and `--grace`.
#[derive(Debug, Clone, clap::Args)]
pub struct Tuning {
    /// Members copied per step.
    #[arg(long, default_value_t = 1000)]
    pub chunk: usize,
    /// How long the replaced generation is kept after the switch (longer than any read).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
}

/// Chunks per call: the bar moves (and Ctrl-C loses) at most this much work at a time.
const CHUNKS_PER_STEP: usize = 20;

/// One call's result: members copied, and the final message once done.
struct Step {
    copied: u64,
    finished: Option<String>,
}

fn options(tuning: &Tuning) -> RebalanceOptions {
    RebalanceOptions { chunk: tuning.chunk, max_chunks: Some(CHUNKS_PER_STEP), grace: tuning.grace }
}

pub(crate) fn bar(total: u64, quiet: bool, message: String, template: &str) -> ProgressBar {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(total) };
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.set_message(message);
    bar
}

/// Calls `step` until it reports an end, advancing a bar of `total` players.
async fn drive<F, Fut>(total: u64, quiet: bool, message: String, mut step: F) -> anyhow::Result<String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Step>>,
{
    let bar = bar(total, quiet, message, "{msg} [{bar:40}] {pos}/{len} players copied ({eta} left)");
    loop {
        let Step { copied, finished } = step().await?;
        bar.inc(copied);
        if let Some(message) = finished {
            bar.finish_and_clear();
            return Ok(message);
        }
        // The last steps of a resumed operation may pause with nothing copied: keep going.
        if bar.position() >= bar.length().unwrap_or(u64::MAX) {
            bar.set_length(bar.position() + 1);
        }
    }
}

/// Runs (or resumes) a rebalance to `boundaries`.
pub(crate) async fn rebalance(
    router: &Router,
    board: &BoardId,
    boundaries: Vec<u64>,
    tuning: &Tuning,
    quiet: bool,
) -> anyhow::Result<String> {
    let total = router.stats(board).await?.total;
    let options = options(tuning);
    drive(total, quiet, format!("{board} -> {}", join(&boundaries)), || async {
        Ok(match router.rebalance(board, boundaries.clone(), options).await? {
            RebalanceOutcome::Paused { copied } => Step { copied, finished: None },
            RebalanceOutcome::Done { generation, copied } => Step {
                copied,
                finished: Some(format!("now on generation {generation}, boundaries {}", join(&boundaries))),
            },
            RebalanceOutcome::Unchanged => {
                Step { copied: 0, finished: Some(format!("already on boundaries {}", join(&boundaries))) }
            }
        })
    })
    .await
}

/// Runs (or resumes) a migration to the layout `to`.
pub(crate) async fn migrate(
    router: &Router,
    board: &BoardId,
    to: &LayoutSpec,
    tuning: &Tuning,
    quiet: bool,
) -> anyhow::Result<String> {
    let total = router.stats(board).await?.total;
    let options = options(tuning);
    drive(total, quiet, format!("{board} -> {to}"), || async {
        Ok(match router.migrate_layout(board, to, options).await? {
            MigrationOutcome::Paused { copied } => Step { copied, finished: None },
            MigrationOutcome::Done { copied } => {
                Step { copied, finished: Some(format!("now on layout {to}; the previous layout's keys are deleted")) }
            }
            MigrationOutcome::Unchanged => Step { copied: 0, finished: Some(format!("already on layout {to}")) },
        })
    })
    .await
}

/// Polls the board until no rebalance or migration is in progress.
pub(crate) async fn watch(router: &Router, board: &BoardId, quiet: bool) -> anyhow::Result<()> {
    let bar = bar(0, quiet, String::new(), "{msg} [{bar:40}] {pos}/{len}");
    loop {
        let record = record::recorded(router.store(), board).await?;
        let position = match record.as_ref().and_then(|r| r.migration.clone().map(|m| (r.layout, m))) {
            Some((from, migration)) => {
                let keys = router.stats(board).await?.shards.len();
                Some((format!("{board}: {from} -> {} (source key)", migration.to), migration.key, keys))
            }
            None if record.as_ref().is_some_and(|r| r.layout == record::RecordedLayout::Range) => {
                let meta = router.range_meta(board).await?;
                meta.migration.map(|m| {
                    (format!("{board} -> {} (shard)", join(&m.target.boundaries)), m.shard, meta.active.shard_count())
                })
            }
            None => None,
        };
        let Some((message, at, of)) = position else {
            bar.finish_and_clear();
            return Ok(());
        };
        bar.set_message(message);
        bar.set_length(of as u64);
        bar.set_position(at as u64);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
