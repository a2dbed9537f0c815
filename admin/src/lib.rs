//! `lb-admin`: the operator's command line for boards and their layouts.
//!
//! | command | what it does |
//! |---|---|
//! | `boards` | every board: recorded layout, total, each shard's score range and size, rebalance or migration state |
//! | `propose <board> --shards N` | equal-population boundaries from the board's current scores (any layout) |
//! | `rebalance <board> (--boundaries a,b,.. \| --shards N)` | moves a `range` board to new boundaries online, with a progress bar; resumes the same rebalance if one was interrupted; `--only-if-skewed R` does nothing unless the largest shard holds more than `R` times the mean |
//! | `migrate <board> --to <layout> [--shards N]` | moves a board to another layout (`single`, `hash:N`, `range:a,b,..`; `--to range --shards N` picks equal-population boundaries) online, with a progress bar |
//! | `watch <board>` | follows a rebalance or migration another process runs, until it ends |
//! | `resume <board>` | finishes the interrupted rebalance or migration, to the target it was started with |
//! | `abort <board>` | abandons the rebalance or migration in progress; its half-built target is deleted after the grace period |
//! | `rules <board> [--order asc\|desc] [--ties shared\|earliest] [--min-score N] [--max-score N] [--layout L]` | shows a board's rules, or changes the ones given (bounds at any time; order and ties only when creating the board, with `--layout`) |
//! | `delete <board>` | removes a board: every key of every layout it uses, and its record |
//! | `audit [--count N] [--refused]` | the newest entries of the audit log, newest first; `--refused`: of the requests refused for their credentials |
//! | `snapshot --out FILE [--board B]..` | writes boards (all by default) with their seasons to a file, with the Kafka offsets it is complete up to |
//! | `restore --file FILE [--board B].. [--layout L] [--no-replay] [--unchecked]` | loads a snapshot into boards that do not exist (any layout), then replays the topic from its offsets until caught up; refuses a file without the store's epoch unless `--unchecked`, and says when the snapshot predates a recovery |
//! | `reset <board> [--clock C]` | ends a `manual` board's season now and opens the next |
//! | `rebuild [--layout L] [--rules-from FILE] [--discard-existing]` | replays every retained event into a store that lost its data; refuses when events have expired |
//! | `catch-up [--layout L]` | replays, into a store that went back in time, the topic from the store's own applied offsets; installs a new epoch |
//! | `epoch [--adopt]` | the store's epoch (how ingest and the api notice a wiped store) and why it was marked lost; `--adopt` accepts the store as it is |
//!
//! Commands that change something (`rebalance`, `migrate`, `resume`, `abort`, `rules` with a change, `reset`, `delete`,
//! `restore`, `rebuild`, `catch-up`, `epoch --adopt`) are
//! written to the audit log (`lb:audit`, shared with the api's admin routes) as `cli:$USER`.
//!
//! Every command reads the layout each board is recorded with from Redis
//! (`leaderboard_store::layout::record`), so it needs only `--redis`. `--json` prints
//! one JSON document instead of text (no progress bar), for scripts.
//!
//! Not built: a policy that rebalances by itself; `rebalance --only-if-skewed` run from a
//! scheduler is the supported way to rebalance on a threshold.
//!
//! # Layout
//! - [`cmd`]: one module per command (its arguments, what it runs, what it prints), and
//!   [`cmd::Command`], whose one exhaustive `match` dispatches them and writes the audit log.
//! - [`recover`]: the recovery operations behind `snapshot`, `restore`, `rebuild`, `catch-up`
//!   and `epoch`, one file each, with the replay they share; the runbook is `docs/operations.md`.
//! - [`snapshot`]: the snapshot file's format (writer and reader).
//! - the `--redis`/`--redis-ca` flags and the connection they make: `leaderboard_runtime::RedisArgs`, as the services.
//! - `board`: a board's name checked, and a router with the layout it is recorded with.
//! - `progress`: driving and following rebalances and migrations with a progress bar
//!   (`--chunk`, `--grace`).
//! - `output`: text, or with `--json` one JSON document.
//! - `players_log`: keeping registry changes in the players log, and reading it back for recovery.
//! - `main.rs`: the `lb-admin` binary, which parses the command line and calls [`run`].

pub mod cmd;
pub mod recover;
pub mod snapshot;

mod board;
mod output;
mod players_log;
mod progress;

use std::io::Write;

use clap::Parser;

use crate::cmd::Command;
use crate::output::Output;
use leaderboard_runtime::RedisArgs;

/// Operate leaderboards: list boards, propose boundaries, drive and follow rebalances and layout migrations.
#[derive(Debug, Parser)]
#[command(name = "lb-admin", version, about)]
pub struct Cli {
    /// Where Redis is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Runs `cli`, writing its report to `out`.
///
/// # Errors
/// Redis unreachable, an unknown board, a board of the wrong layout for the command, or a
/// rebalance conflict (another rebalance to other boundaries is in progress).
pub async fn run(cli: Cli, out: &mut impl Write) -> anyhow::Result<()> {
    let store = cli.redis.connect().await?;
    let ctx = cmd::Context { store: &store, redis: &cli.redis };
    cli.command.run(&ctx, &mut Output::new(out, cli.json)).await
}
