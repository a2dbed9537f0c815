//! `lb-admin ban <player> (--all | --boards b1,b2) [--closed-seasons] [--reason ..]`:
//! bans a player from boards: they leave them (and, with `--closed-seasons`,
//! their closed seasons, which are amended), and their events for them go to
//! the dead letters (`banned`) until `lb-admin unban`.

use std::io::Write;

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::clock::system_ms;
use leaderboard_store::marker::registry::{Ban as StoredBan, BanScope};

use super::Context;
use super::erase::RemovedReport;
use crate::board::player_router;
use crate::output::Output;

/// The arguments of `ban`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["all", "boards"])))]
pub struct Ban {
    /// The player.
    pub(super) player: String,
    /// Every board, present and future.
    #[arg(long)]
    all: bool,
    /// The boards (comma-separated; their seasons included).
    #[arg(long, value_delimiter = ',')]
    boards: Vec<String>,
    /// Also remove the player from those boards' closed seasons (they are amended).
    #[arg(long)]
    closed_seasons: bool,
    /// Why (at most 256 characters), for the audit log and `lb-admin player`.
    #[arg(long, default_value = "")]
    reason: String,
    /// Where the players log is.
    #[command(flatten)]
    keep: crate::players_log::KeepArgs,
}

/// Bans the player.
pub(crate) async fn run(args: Ban, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let player = PlayerId::new(args.player)?;
    let boards = if args.all {
        BanScope::ALL
    } else {
        BanScope::Boards(args.boards.into_iter().map(BoardId::new).collect::<Result<_, _>>()?)
    };
    let ban = StoredBan { boards, closed_seasons: args.closed_seasons, reason: args.reason, at_ms: system_ms() };
    let removed = player_router(ctx.store).ban_player(&player, &ban).await?;
    args.keep.keep(ctx.store, &player).await?;
    RemovedReport::new(&player, &removed, None).print("banned", out)
}
