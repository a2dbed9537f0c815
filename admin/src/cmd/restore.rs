//! `lb-admin restore --file FILE [--board B].. [--layout L] [--no-replay] [--unchecked]`: loads a
//! snapshot into boards that do not exist (any layout), then replays the topic from its offsets
//! until caught up ([`crate::recover::restore()`]); refuses a file without the store's epoch unless
//! `--unchecked`, and says when the snapshot predates a recovery.

use std::io::Write;
use std::path::PathBuf;

use super::Context;
use crate::board::board_ids;
use crate::output::Output;
use crate::recover::{self, KafkaArgs, RestoreOptions, RestoreReport};

/// The arguments of `restore`.
#[derive(Debug, clap::Args)]
pub struct Restore {
    /// The snapshot file.
    #[arg(long)]
    file: PathBuf,
    /// Only these boards (repeatable), with their seasons.
    #[arg(long = "board")]
    pub(super) boards: Vec<String>,
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
    kafka: KafkaArgs,
}

/// Restores the file.
pub(crate) async fn run(args: Restore, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let options = RestoreOptions {
        boards: board_ids(&args.boards)?,
        layout: args.layout.map(|l| l.parse()).transpose()?,
        replay: !args.no_replay,
        unchecked: args.unchecked,
        quiet: out.json,
    };
    let r = recover::restore(ctx.store, ctx.redis, &args.kafka, &args.file, &options).await?;
    if out.json {
        return out.sorted_document(&r);
    }
    print_report(out, "restored", &r)?;
    if let Some(predates) = &r.predates {
        writeln!(out, "note: {predates}")?;
    }
    Ok(())
}

/// The text report of a restore, rebuild or catch-up: what was loaded, what was replayed, and
/// whether the store got a new epoch.
pub(super) fn print_report(out: &mut impl Write, what: &str, r: &RestoreReport) -> std::io::Result<()> {
    let p = &r.players;
    let log = if p.found { format!("{} players", p.players) } else { "absent".into() };
    writeln!(
        out,
        "player registry: {} erasures and {} bans given back to the store (snapshot file: {} players; players log \
         {}: {log})",
        p.erasures, p.bans, p.in_file, p.topic
    )?;
    writeln!(
        out,
        "{what}: {} boards and seasons, {} players loaded ({} left out: erased or banned) in {:.1}s; {} records \
         replayed ({} events written, {} refused as the live workers refused them) in {:.1}s; {}; {:.1}s in all",
        r.loaded.boards,
        r.loaded.players,
        r.left_out,
        r.load_seconds,
        r.replayed_records,
        r.replayed_events,
        r.replay_refused,
        r.replay_seconds,
        if r.epoch_installed { "new epoch installed: workers and apis resume" } else { "epoch unchanged" },
        r.total_seconds
    )
}
