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
//! | `rebuild [--layout L] [--rules-from FILE] [--discard-existing]` | replays every retained event into a store that lost its data; refuses when events have expired |
//! | `catch-up [--layout L]` | replays, into a store that went back in time, the topic from the store's own applied offsets; installs a new epoch |
//! | `epoch [--adopt]` | the store's epoch (how ingest and the api notice a wiped store) and why it was marked lost; `--adopt` accepts the store as it is |
//!
//! Recovery is in [`recover`], the snapshot file in [`snapshot`], the runbook in `docs/operations.md`.
//!
//! Commands that change something (`rebalance`, `migrate`, `resume`, `abort`, `rules` with a change, `delete`,
//! `restore`, `rebuild`, `catch-up`, `epoch --adopt`) are
//! written to the audit log (`lb:audit`, shared with the api's admin routes) as `cli:$USER`.
//!
//! Every command reads the layout each board is recorded with from Redis
//! (`shard_router::board_record`), so it needs only `--redis`. `--json` prints
//! one JSON document instead of text (no progress bar), for scripts.
//!
//! Not built: a policy that rebalances by itself; `rebalance --only-if-skewed` run from a
//! scheduler is the supported way to rebalance on a threshold.

mod progress;
pub mod recover;
pub mod snapshot;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use leaderboard_contract::BoardId;
use serde::Serialize;
use shard_router::audit::{self, AuditEntry};
use shard_router::board_record::{self, RecordedLayout};
use shard_router::{BoardStats, LayoutSpec, Order, Router, RouterOptions, Rules, Store, Ties};

/// Operate leaderboards: list boards, propose boundaries, drive and follow rebalances and layout migrations.
#[derive(Debug, Parser)]
#[command(name = "lb-admin", version, about)]
pub struct Cli {
    /// Redis (same syntax as the services' `--redis`).
    #[arg(long, global = true, env = "LB_REDIS_URL", default_value = "redis://127.0.0.1:6379", hide_env_values = true)]
    pub redis: String,
    /// `rediss://`: a PEM file of the CA certificates to verify Redis with (as the services' `--redis-ca`).
    #[arg(long, global = true, env = "LB_REDIS_CA")]
    pub redis_ca: Option<std::path::PathBuf>,
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
    /// Moves a board to another layout online (or resumes the same move).
    Migrate {
        /// The board.
        board: String,
        /// The target layout: `single`, `hash:N`, `range:a,b,..` (or `range` with `--shards`).
        #[arg(long)]
        to: String,
        /// For a `range` target: equal-population boundaries for this many shards.
        #[arg(long)]
        shards: Option<usize>,
        /// Chunk size and grace period.
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Follows a rebalance or migration another process runs, until it ends.
    Watch {
        /// The board.
        board: String,
    },
    /// Finishes an interrupted rebalance or migration, to the target it was started with.
    Resume {
        /// The board.
        board: String,
        /// Chunk size and grace period.
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Shows a board's rules, or changes the ones given (creating the board with `--layout`).
    Rules {
        /// The board.
        board: String,
        /// The rules to change.
        #[command(flatten)]
        set: RuleFlags,
        /// The layout of a board this creates (`single`, `hash:N`, `range:a,b,..`).
        #[arg(long)]
        layout: Option<String>,
    },
    /// Removes a board: every key of every layout it uses, and its record.
    Delete {
        /// The board.
        board: String,
    },
    /// The newest entries of the audit log (admin actions from the api and this tool).
    Audit {
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        count: usize,
        /// The log of admin requests refused for their credentials instead (401, 403; sampled).
        #[arg(long)]
        refused: bool,
    },
    /// Writes boards (every board by default) and their seasons to a snapshot file.
    Snapshot {
        /// The file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Only these boards (repeatable).
        #[arg(long = "board")]
        boards: Vec<String>,
        /// Where the events are.
        #[command(flatten)]
        kafka: recover::KafkaArgs,
    },
    /// Loads a snapshot into boards that do not exist, then replays the topic from its offsets.
    Restore {
        /// The snapshot file.
        #[arg(long)]
        file: PathBuf,
        /// Only these boards (repeatable), with their seasons.
        #[arg(long = "board")]
        boards: Vec<String>,
        /// Restore into this layout instead of each board's own (`single`, `hash:N`, `range:a,b,..`).
        #[arg(long)]
        layout: Option<String>,
        /// Load the file only; replay nothing.
        #[arg(long)]
        no_replay: bool,
        /// Accept a file without the store's epoch in its header (written before snapshots refused a lost store).
        #[arg(long)]
        unchecked: bool,
        /// Where the events are.
        #[command(flatten)]
        kafka: recover::KafkaArgs,
    },
    /// Replays every retained event into a store that lost its data.
    Rebuild {
        /// The layout of the boards created (those `--rules-from` does not name).
        #[arg(long, default_value = "single")]
        layout: String,
        /// A snapshot file whose boards' rules and layouts to create first (its players are not loaded).
        #[arg(long)]
        rules_from: Option<PathBuf>,
        /// Delete the boards the lost store holds (written after the loss) before replaying.
        #[arg(long)]
        discard_existing: bool,
        /// Where the events are.
        #[command(flatten)]
        kafka: recover::KafkaArgs,
    },
    /// Replays what a store that went back in time forgot, from its own applied offsets.
    CatchUp {
        /// The layout of boards the replay creates (boards that exist keep theirs).
        #[arg(long, default_value = "single")]
        layout: String,
        /// Where the events are.
        #[command(flatten)]
        kafka: recover::KafkaArgs,
    },
    /// The store's epoch; `--adopt` accepts the store as it is.
    Epoch {
        /// Install a new epoch: the running workers and apis accept the store as it is now.
        #[arg(long)]
        adopt: bool,
    },
    /// Abandons the rebalance or migration in progress.
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
    let options = leaderboard_runtime::store_options(cli.redis_ca.as_deref())?;
    let store = Store::connect(&target, options).await.context("connecting to redis")?;
    let audited = cli.command.audited();
    let redis = recover::RedisArgs { url: cli.redis.clone(), ca: cli.redis_ca.clone() };
    let result = match cli.command {
        command @ (Command::Snapshot { .. }
        | Command::Restore { .. }
        | Command::Rebuild { .. }
        | Command::CatchUp { .. }
        | Command::Epoch { .. }) => recovery(&store, &redis, command, cli.json, out).await,
        command => execute(&store, command, cli.json, out).await,
    };
    if let Some((action, board)) = audited {
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        let entry = AuditEntry {
            who: format!("cli:{user}"),
            action: action.into(),
            target: board,
            result: if result.is_ok() { "ok".into() } else { "error".into() },
        };
        // A failed command's own error is what the operator needs, even when the audit log
        // could not record the failure either (the store that failed the command may refuse it).
        let recorded = audit::record(&store, &entry).await;
        if result.is_ok() {
            recorded.context("writing the audit log")?;
        }
    }
    result
}

impl Command {
    /// The audit log's action and board for commands that change something.
    fn audited(&self) -> Option<(&'static str, String)> {
        match self {
            Self::Rebalance { board, .. } => Some(("rebalance", board.clone())),
            Self::Migrate { board, .. } => Some(("migrate", board.clone())),
            Self::Resume { board, .. } => Some(("resume", board.clone())),
            Self::Abort { board, .. } => Some(("abort", board.clone())),
            Self::Delete { board } => Some(("delete_board", board.clone())),
            Self::Rules { board, set, .. } if set.any() => Some(("set_rules", board.clone())),
            Self::Restore { boards, .. } => {
                Some(("restore", if boards.is_empty() { "*".into() } else { boards.join(",") }))
            }
            Self::Rebuild { .. } => Some(("rebuild", "*".into())),
            Self::CatchUp { .. } => Some(("catch_up", "*".into())),
            Self::Epoch { adopt: true } => Some(("epoch_adopt", "*".into())),
            Self::Rules { .. }
            | Self::Boards
            | Self::Propose { .. }
            | Self::Watch { .. }
            | Self::Audit { .. }
            | Self::Snapshot { .. }
            | Self::Epoch { adopt: false } => None,
        }
    }
}

async fn execute(store: &Store, command: Command, cli_json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        Command::Delete { board } => {
            let board = board_id(&board)?;
            let (router, _) = router_and_record(store, &board).await?;
            router.delete_board(&board).await?;
            report(out, cli_json, &board, "deleted: every key of every layout, and its record")?;
        }
        Command::Audit { count, refused } => {
            let log = if refused { audit::Log::Refused } else { audit::Log::Actions };
            let entries = audit::recent_in(store, log, count).await?;
            if cli_json {
                writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
            } else {
                for r in &entries {
                    let e = &r.entry;
                    writeln!(out, "{}  {}  {}  {}  {}", r.id, e.who, e.action, e.target, e.result)?;
                }
            }
        }
        Command::Boards => {
            let mut lines = Vec::new();
            for board in board_record::boards(store).await? {
                lines.extend(describe(store, &board).await?);
            }
            if cli_json {
                writeln!(out, "{}", serde_json::to_string_pretty(&lines)?)?;
            } else {
                for line in &lines {
                    print_board(out, line)?;
                }
            }
        }
        Command::Propose { board, shards } => {
            let board = board_id(&board)?;
            let router = router_for(store, &board).await?;
            let boundaries = router.propose_boundaries(&board, shards).await?;
            if cli_json {
                writeln!(out, "{}", serde_json::json!({ "board": board.as_str(), "boundaries": boundaries }))?;
            } else {
                writeln!(out, "{}", join(&boundaries))?;
            }
        }
        Command::Rules { board, set, layout } => {
            let board = board_id(&board)?;
            let record = board_record::recorded(store, &board).await?;
            let current = record.as_ref().map(|r| r.rules).unwrap_or_default();
            let rules = if set.any() {
                let router = match (&record, layout) {
                    (Some(_), _) => router_for(store, &board).await?,
                    (None, Some(spec)) => Router::new(store.clone(), spec.parse()?, RouterOptions::default()),
                    (None, None) => bail!("board {board} does not exist: give --layout to create it"),
                };
                router.set_rules(&board, set.applied_to(current)?).await?.rules
            } else if record.is_some() {
                current
            } else {
                bail!("board {board} does not exist (it has the default rules until created)");
            };
            if cli_json {
                writeln!(out, "{}", serde_json::json!({ "board": board.as_str(), "rules": rules }))?;
            } else {
                writeln!(out, "{board}  {rules}")?;
            }
        }
        other => layout_work(store, other, cli_json, out).await?,
    }
    Ok(())
}

/// `snapshot`, `restore`, `rebuild` and `epoch` ([`recover`]).
async fn recovery(
    store: &Store,
    redis: &recover::RedisArgs,
    command: Command,
    cli_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let boards = |names: &[String]| names.iter().map(|n| board_id(n)).collect::<anyhow::Result<Vec<_>>>();
    let json = match command {
        Command::Snapshot { out: file, boards: names, kafka } => {
            let r = recover::snapshot(store, redis, &kafka, &boards(&names)?, &file, cli_json).await?;
            if !cli_json {
                writeln!(
                    out,
                    "{}: {} boards and seasons, {} players, complete up to offsets {:?} ({:.1}s)",
                    r.file.display(),
                    r.totals.boards,
                    r.totals.players,
                    r.offsets,
                    r.seconds
                )?;
            }
            serde_json::to_value(r)?
        }
        Command::Restore { file, boards: names, layout, no_replay, unchecked, kafka } => {
            let options = recover::RestoreOptions {
                boards: boards(&names)?,
                layout: layout.map(|l| l.parse()).transpose()?,
                replay: !no_replay,
                unchecked,
                quiet: cli_json,
            };
            let r = recover::restore(store, redis, &kafka, &file, &options).await?;
            if !cli_json {
                print_recovery(out, "restored", &r)?;
                if let Some(predates) = &r.predates {
                    writeln!(out, "note: {predates}")?;
                }
            }
            serde_json::to_value(r)?
        }
        Command::Rebuild { layout, rules_from, discard_existing, kafka } => {
            let options =
                recover::RebuildOptions { layout: layout.parse()?, rules_from, discard_existing, quiet: cli_json };
            let r = recover::rebuild(store, redis, &kafka, &options).await?;
            if !cli_json {
                print_recovery(out, "rebuilt", &r)?;
            }
            serde_json::to_value(r)?
        }
        Command::CatchUp { layout, kafka } => {
            let r = recover::catch_up(store, redis, &kafka, &layout.parse()?, cli_json).await?;
            if !cli_json {
                print_recovery(out, "caught up", &r)?;
            }
            serde_json::to_value(r)?
        }
        Command::Epoch { adopt } => {
            let r = recover::epoch_command(store, redis, adopt).await?;
            if !cli_json {
                match &r.epoch {
                    Some(e) => writeln!(out, "{}: {} ({:?}, made at {} ms)", r.state, e.id, e.origin, e.at_ms)?,
                    None => writeln!(out, "{}", r.state)?,
                }
                if let Some(loss) = &r.loss {
                    writeln!(
                        out,
                        "marked lost at {} ms: {} on topic {} (partition {}: applied {}, committed {}); run \
                         `lb-admin catch-up`",
                        loss.at_ms,
                        loss.cause.as_str(),
                        loss.topic,
                        loss.behind.partition,
                        loss.behind.applied,
                        loss.behind.expected
                    )?;
                }
            }
            serde_json::to_value(r)?
        }
        other => bail!("not a recovery command: {other:?}"),
    };
    if cli_json {
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}

fn print_recovery(out: &mut impl Write, what: &str, r: &recover::RestoreReport) -> std::io::Result<()> {
    writeln!(
        out,
        "{what}: {} boards and seasons, {} players loaded in {:.1}s; {} records replayed ({} events written, {} \
         refused as the live workers refused them) in {:.1}s; {}; {:.1}s in all",
        r.loaded.boards,
        r.loaded.players,
        r.load_seconds,
        r.replayed_records,
        r.replayed_events,
        r.replay_refused,
        r.replay_seconds,
        if r.epoch_installed { "new epoch installed: workers and apis resume" } else { "epoch unchanged" },
        r.total_seconds
    )
}

/// The rule flags of `lb-admin rules`: each given one replaces the board's.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RuleFlags {
    /// `desc` (higher is better) or `asc` (lower is better); only when creating the board.
    #[arg(long, value_parser = ["desc", "asc"])]
    order: Option<String>,
    /// `shared` (equal scores share a rank) or `earliest`; only when creating the board.
    #[arg(long, value_parser = ["shared", "earliest"])]
    ties: Option<String>,
    /// Lowest accepted score (events below go to the dead letters as `out_of_bounds`).
    #[arg(long)]
    min_score: Option<u64>,
    /// Highest accepted score.
    #[arg(long)]
    max_score: Option<u64>,
    /// Seasons: reset every `day`, `week` or `month` (fixed once set).
    #[arg(long, value_parser = ["day", "week", "month"])]
    reset: Option<String>,
    /// The offset the reset happens at 00:00 of (`+09:00`; default `+00:00`); with `--reset`.
    #[arg(long, requires = "reset", allow_hyphen_values = true)]
    utc_offset: Option<String>,
    /// The day weekly seasons start (`mon` ... `sun`; default `mon`); with `--reset week`.
    #[arg(long, requires = "reset")]
    weekday: Option<String>,
    /// Closed seasons kept (default 12).
    #[arg(long)]
    keep_seasons: Option<u32>,
    /// How long after its end a season takes late events (`10s`, `5m`; default `10s`).
    #[arg(long)]
    late_grace: Option<humantime::Duration>,
}

impl RuleFlags {
    /// Whether any rule is given.
    fn any(&self) -> bool {
        self.order.is_some()
            || self.ties.is_some()
            || self.min_score.is_some()
            || self.max_score.is_some()
            || self.reset.is_some()
            || self.keep_seasons.is_some()
            || self.late_grace.is_some()
    }

    /// `current` with the given rules replaced.
    fn applied_to(&self, current: Rules) -> anyhow::Result<Rules> {
        let reset = match &self.reset {
            Some(every) => {
                let mut json = serde_json::json!({ "every": every });
                if let Some(offset) = &self.utc_offset {
                    json["utc_offset"] = offset.clone().into();
                }
                if let Some(weekday) = &self.weekday {
                    json["weekday"] = weekday.clone().into();
                }
                Some(serde_json::from_value(json).context("--reset")?)
            }
            None => current.reset,
        };
        Ok(Rules {
            order: match self.order.as_deref() {
                Some("asc") => Order::Asc,
                Some(_) => Order::Desc,
                None => current.order,
            },
            ties: match self.ties.as_deref() {
                Some("earliest") => Ties::Earliest,
                Some(_) => Ties::Shared,
                None => current.ties,
            },
            min_score: self.min_score.unwrap_or(current.min_score),
            max_score: self.max_score.unwrap_or(current.max_score),
            reset,
            keep_seasons: self.keep_seasons.unwrap_or(current.keep_seasons),
            late_grace: self.late_grace.map_or(current.late_grace, Into::into),
        })
    }
}

/// Rebalances and migrations: drive, resume, follow, abandon.
async fn layout_work(store: &Store, command: Command, cli_json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        Command::Rebalance { board, boundaries, shards, only_if_skewed, tuning } => {
            let board = board_id(&board)?;
            let router = range_router(store, &board).await?;
            if let Some(ratio) = only_if_skewed {
                let stats = router.stats(&board).await?;
                let skew = skew(&stats);
                if skew <= ratio {
                    report(out, cli_json, &board, &format!("not skewed: largest shard {skew:.2}x the mean"))?;
                    return Ok(());
                }
            }
            let boundaries = match shards {
                Some(n) => router.propose_boundaries(&board, n).await?,
                None => boundaries,
            };
            let outcome = progress::rebalance(&router, &board, boundaries, &tuning, cli_json).await?;
            report(out, cli_json, &board, &outcome)?;
        }
        Command::Migrate { board, to, shards, tuning } => {
            let board = board_id(&board)?;
            let router = router_for(store, &board).await?;
            let to: LayoutSpec = match (to.as_str(), shards) {
                ("range", Some(n)) => LayoutSpec::Range { boundaries: router.propose_boundaries(&board, n).await? },
                (_, Some(_)) => bail!("--shards goes with --to range"),
                (spec, None) => spec.parse()?,
            };
            let outcome = progress::migrate(&router, &board, &to, &tuning, cli_json).await?;
            report(out, cli_json, &board, &outcome)?;
        }
        Command::Resume { board, tuning } => {
            let board = board_id(&board)?;
            let (router, record) = router_and_record(store, &board).await?;
            let outcome = if let Some(migration) = record.migration {
                let to = match migration.to {
                    // The target's boundaries are in its metadata already: these are not used.
                    RecordedLayout::Range => LayoutSpec::Range { boundaries: Vec::new() },
                    other => other.to_string().parse()?,
                };
                progress::migrate(&router, &board, &to, &tuning, cli_json).await?
            } else if record.layout == RecordedLayout::Range
                && let Some(migration) = router.range_meta(&board).await?.migration
            {
                progress::rebalance(&router, &board, migration.target.boundaries, &tuning, cli_json).await?
            } else {
                bail!("board {board} has no rebalance or migration in progress");
            };
            report(out, cli_json, &board, &outcome)?;
        }
        Command::Watch { board } => {
            let board = board_id(&board)?;
            let router = router_for(store, &board).await?;
            progress::watch(&router, &board, cli_json).await?;
            report(out, cli_json, &board, "no rebalance or migration in progress")?;
        }
        Command::Abort { board, grace } => {
            let board = board_id(&board)?;
            let (router, record) = router_and_record(store, &board).await?;
            let what = if record.migration.is_some() {
                router.abort_layout_migration(&board, grace).await?;
                "migration abandoned; its target deleted"
            } else if record.layout == RecordedLayout::Range && router.abort_rebalance(&board, grace).await? {
                "rebalance abandoned; its generation deleted"
            } else {
                "no rebalance or migration in progress"
            };
            report(out, cli_json, &board, what)?;
        }
        Command::Boards
        | Command::Propose { .. }
        | Command::Delete { .. }
        | Command::Audit { .. }
        | Command::Rules { .. }
        | Command::Snapshot { .. }
        | Command::Restore { .. }
        | Command::Rebuild { .. }
        | Command::CatchUp { .. }
        | Command::Epoch { .. } => {
            bail!("not a layout command")
        }
    }
    Ok(())
}

fn board_id(name: &str) -> anyhow::Result<BoardId> {
    BoardId::new(name.to_string()).map_err(|e| anyhow::anyhow!("invalid board name {name:?}: {e}"))
}

pub(crate) fn join(values: &[u64]) -> String {
    values.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// A router for `board` with the layout it is recorded with, and the record.
async fn router_and_record(store: &Store, board: &BoardId) -> anyhow::Result<(Router, board_record::BoardRecord)> {
    Router::for_board(store, board, RouterOptions::default()).await?.with_context(|| {
        format!("board {board} has no recorded layout (it does not exist, or predates layout records)")
    })
}

async fn router_for(store: &Store, board: &BoardId) -> anyhow::Result<Router> {
    Ok(router_and_record(store, board).await?.0)
}

async fn range_router(store: &Store, board: &BoardId) -> anyhow::Result<Router> {
    let router = router_for(store, board).await?;
    if !matches!(router.spec(), LayoutSpec::Range { .. }) {
        bail!("board {board} uses layout {}, not range: only range boards rebalance (see `migrate`)", router.spec());
    }
    Ok(router)
}

/// The board's line; `None` when it was deleted after the list of boards was read.
async fn describe(store: &Store, board: &BoardId) -> anyhow::Result<Option<BoardLine>> {
    let Some((router, _)) = Router::for_board(store, board, RouterOptions::default()).await? else { return Ok(None) };
    let stats = router.stats(board).await?;
    Ok(Some(BoardLine { board: board.to_string(), layout: stats.layout.clone(), stats: Some(stats) }))
}

fn print_board(out: &mut impl Write, line: &BoardLine) -> std::io::Result<()> {
    let Some(stats) = &line.stats else { return writeln!(out, "{}  {}", line.board, line.layout) };
    let state = match (&stats.migrating_to, stats.rebalancing) {
        (Some(to), _) => format!("  (migrating to {to})"),
        (None, Some(true)) => "  (rebalancing)".into(),
        _ => String::new(),
    };
    writeln!(out, "{}  {}  {} players{state}  {}", line.board, line.layout, stats.total, stats.rules)?;
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
