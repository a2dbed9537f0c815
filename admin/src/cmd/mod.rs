//! The commands: one module each, holding its arguments, what it runs and what it prints.
//!
//! [`Command`] is the subcommand of the command line; `Command::run` matches every
//! variant once and hands it to its module's `run`, so the compiler proves each command
//! is handled, and only once. It also writes the commands that change something to the
//! audit log (`lb:audit`, shared with the api's admin routes) as `cli:$USER`.
//!
//! The player commands (`erase`, `ban`, `unban`, `player`) use `leaderboard_store::players`.
//! The layout commands drive [`leaderboard_store::Router`] (long ones through
//! `crate::progress`); the recovery commands (`snapshot`, `restore`,
//! `rebuild`, `catch-up`, `epoch`) run [`crate::recover`].

pub mod abort;
pub mod audit;
pub mod ban;
pub mod boards;
pub mod catch_up;
pub mod delete;
pub mod epoch;
pub mod erase;
pub mod migrate;
pub mod player;
pub mod propose;
pub mod rebalance;
pub mod rebuild;
pub mod reset;
pub mod restore;
pub mod resume;
pub mod rules;
pub mod snapshot;
pub mod unban;
pub mod watch;

use std::io::Write;

use anyhow::Context as _;
use clap::Subcommand;
use leaderboard_store::Store;
use leaderboard_store::marker::audit::AuditEntry;

use crate::output::Output;
use leaderboard_runtime::RedisArgs;

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every board with its layout, total and shards.
    Boards,
    /// Equal-population boundaries for a board's current players.
    Propose(propose::Propose),
    /// Moves a range board to new boundaries online (or resumes the same move).
    Rebalance(rebalance::Rebalance),
    /// Moves a board to another layout online (or resumes the same move).
    Migrate(migrate::Migrate),
    /// Follows a rebalance or migration another process runs, until it ends.
    Watch(watch::Watch),
    /// Finishes an interrupted rebalance or migration, to the target it was started with.
    Resume(resume::Resume),
    /// Shows a board's rules, or changes the ones given (creating the board with `--layout`).
    Rules(rules::Rules),
    /// Ends a `manual` board's season now and opens the next.
    Reset(reset::Reset),
    /// Removes a board: every key of every layout it uses, and its record.
    Delete(delete::Delete),
    /// The newest entries of the audit log (admin actions from the api and this tool).
    Audit(audit::Audit),
    /// Writes boards (every board by default) and their seasons to a snapshot file.
    Snapshot(snapshot::Snapshot),
    /// Loads a snapshot into boards that do not exist, then replays the topic from its offsets.
    Restore(restore::Restore),
    /// Replays every retained event into a store that lost its data.
    Rebuild(rebuild::Rebuild),
    /// Replays what a store that went back in time forgot, from its own applied offsets.
    CatchUp(catch_up::CatchUp),
    /// The store's epoch; `--adopt` accepts the store as it is.
    Epoch(epoch::Epoch),
    /// Abandons the rebalance or migration in progress.
    Abort(abort::Abort),
    /// Erases a player (GDPR): out of every board and season; earlier records never applied again.
    Erase(erase::Erase),
    /// Bans a player from boards (their events become dead letters `banned`).
    Ban(ban::Ban),
    /// Lifts a player's ban for future events.
    Unban(unban::Unban),
    /// Where a player stands: erasure, ban, and their boards.
    Player(player::Player),
}

/// What a command runs against.
pub(crate) struct Context<'a> {
    /// The connection every command uses.
    pub(crate) store: &'a Store,
    /// How to reach Redis, for the connections of a replay's pipeline.
    pub(crate) redis: &'a RedisArgs,
}

/// A command that changes something, as the audit log records it.
struct Audited {
    action: &'static str,
    /// The board, the boards (comma-separated), or `*` for the whole store.
    target: String,
}

impl Audited {
    fn new(action: &'static str, target: impl Into<String>) -> Self {
        Self { action, target: target.into() }
    }

    /// Writes the entry with the command's result. A failed command's own error is what the
    /// operator needs, even when the audit log could not record the failure either (the store
    /// that failed the command may refuse it): the log's error is returned only after a success.
    async fn record(self, store: &Store, succeeded: bool) -> anyhow::Result<()> {
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        let entry = AuditEntry {
            who: format!("cli:{user}"),
            action: self.action.into(),
            target: self.target,
            result: if succeeded { "ok".into() } else { "error".into() },
        };
        let recorded = leaderboard_store::marker::audit::record(store, &entry).await;
        if succeeded {
            recorded.context("writing the audit log")?;
        }
        Ok(())
    }
}

impl Command {
    /// Runs the command, writing its report to `out` and, when it changes something, its
    /// entry to the audit log.
    pub(crate) async fn run(self, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
        let audited = self.audited();
        let result = match self {
            Self::Boards => boards::run(ctx, out).await,
            Self::Propose(args) => propose::run(args, ctx, out).await,
            Self::Rebalance(args) => rebalance::run(args, ctx, out).await,
            Self::Migrate(args) => migrate::run(args, ctx, out).await,
            Self::Watch(args) => watch::run(args, ctx, out).await,
            Self::Resume(args) => resume::run(args, ctx, out).await,
            Self::Rules(args) => rules::run(args, ctx, out).await,
            Self::Reset(args) => reset::run(args, ctx, out).await,
            Self::Delete(args) => delete::run(args, ctx, out).await,
            Self::Audit(args) => audit::run(args, ctx, out).await,
            Self::Snapshot(args) => snapshot::run(args, ctx, out).await,
            Self::Restore(args) => restore::run(args, ctx, out).await,
            Self::Rebuild(args) => rebuild::run(args, ctx, out).await,
            Self::CatchUp(args) => catch_up::run(args, ctx, out).await,
            Self::Epoch(args) => epoch::run(args, ctx, out).await,
            Self::Abort(args) => abort::run(args, ctx, out).await,
            Self::Erase(args) => erase::run(args, ctx, out).await,
            Self::Ban(args) => ban::run(args, ctx, out).await,
            Self::Unban(args) => unban::run(args, ctx, out).await,
            Self::Player(args) => player::run(args, ctx, out).await,
        };
        if let Some(audited) = audited {
            audited.record(ctx.store, result.is_ok()).await?;
        }
        result
    }

    /// The audit log's entry for commands that change something.
    fn audited(&self) -> Option<Audited> {
        match self {
            Self::Rebalance(args) => Some(Audited::new("rebalance", &args.board)),
            Self::Migrate(args) => Some(Audited::new("migrate", &args.board)),
            Self::Resume(args) => Some(Audited::new("resume", &args.board)),
            Self::Abort(args) => Some(Audited::new("abort", &args.board)),
            Self::Delete(args) => Some(Audited::new("delete_board", &args.board)),
            Self::Reset(args) => Some(Audited::new("reset_season", &args.board)),
            Self::Rules(args) => args.set.any().then(|| Audited::new("set_rules", &args.board)),
            Self::Restore(args) => {
                Some(Audited::new("restore", if args.boards.is_empty() { "*".into() } else { args.boards.join(",") }))
            }
            Self::Rebuild(_) => Some(Audited::new("rebuild", "*")),
            Self::CatchUp(_) => Some(Audited::new("catch_up", "*")),
            Self::Epoch(args) => args.adopt.then(|| Audited::new("epoch_adopt", "*")),
            Self::Erase(args) => Some(Audited::new("erase_player", &args.player)),
            Self::Ban(args) => Some(Audited::new("ban_player", &args.player)),
            Self::Unban(args) => Some(Audited::new("unban_player", &args.player)),
            Self::Boards | Self::Propose(_) | Self::Watch(_) | Self::Audit(_) | Self::Snapshot(_) | Self::Player(_) => {
                None
            }
        }
    }
}
