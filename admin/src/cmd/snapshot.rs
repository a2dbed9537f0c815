//! `lb-admin snapshot --out FILE [--board B]..`: writes boards (all by default) with their seasons
//! to a file, with the Kafka offsets it is complete up to ([`crate::recover::snapshot()`]).

use std::io::Write;
use std::path::PathBuf;

use super::Context;
use crate::board::board_ids;
use crate::output::Output;
use crate::recover::{self, KafkaArgs};

/// The arguments of `snapshot`.
#[derive(Debug, clap::Args)]
pub struct Snapshot {
    /// The file to create (never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Only these boards (repeatable).
    #[arg(long = "board")]
    boards: Vec<String>,
    /// Where the events are.
    #[command(flatten)]
    kafka: KafkaArgs,
}

/// Takes the snapshot.
pub(crate) async fn run(args: Snapshot, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let boards = board_ids(&args.boards)?;
    let r = recover::snapshot(ctx.store, ctx.redis, &args.kafka, &boards, &args.out, out.json).await?;
    if out.json {
        return out.sorted_document(&r);
    }
    writeln!(
        out,
        "{}: {} boards and seasons, {} players, complete up to offsets {:?} ({:.1}s)",
        r.file.display(),
        r.totals.boards,
        r.totals.players,
        r.offsets,
        r.seconds
    )?;
    Ok(())
}
