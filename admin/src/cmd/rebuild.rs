//! `lb-admin rebuild [--layout L] [--rules-from FILE] [--discard-existing]`: replays every
//! retained event into a store that lost its data; refuses when events have expired
//! ([`crate::recover::rebuild()`]).

use std::io::Write;
use std::path::PathBuf;

use super::Context;
use super::restore::print_report;
use crate::output::Output;
use crate::recover::{self, KafkaArgs, RebuildOptions};

/// The arguments of `rebuild`.
#[derive(Debug, clap::Args)]
pub struct Rebuild {
    /// The layout of the boards created (those `--rules-from` does not name).
    #[arg(long, env = "LB_LAYOUT", default_value = "single")]
    layout: String,
    /// A snapshot file whose boards' rules and layouts to create first (its players are not loaded).
    #[arg(long)]
    rules_from: Option<PathBuf>,
    /// Delete the boards the lost store holds (written after the loss) before replaying.
    #[arg(long)]
    discard_existing: bool,
    /// Where the events are.
    #[command(flatten)]
    kafka: KafkaArgs,
}

/// Rebuilds the store.
pub(crate) async fn run(args: Rebuild, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let options = RebuildOptions {
        layout: args.layout.parse()?,
        rules_from: args.rules_from,
        discard_existing: args.discard_existing,
        quiet: out.json,
    };
    let r = recover::rebuild(ctx.store, ctx.redis, &args.kafka, &options).await?;
    if out.json {
        return out.sorted_document(&r);
    }
    print_report(out, "rebuilt", &r)?;
    Ok(())
}
