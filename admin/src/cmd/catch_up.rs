//! `lb-admin catch-up [--layout L]`: replays, into a store that went back in time, the topic from
//! the store's own applied offsets; installs a new epoch ([`crate::recover::catch_up()`]).

use std::io::Write;

use super::Context;
use super::restore::print_report;
use crate::output::Output;
use crate::recover::{self, KafkaArgs};

/// The arguments of `catch-up`.
#[derive(Debug, clap::Args)]
pub struct CatchUp {
    /// The layout of boards the replay creates (boards that exist keep theirs).
    #[arg(long, env = "LB_LAYOUT", default_value = "single")]
    layout: String,
    /// Where the events are.
    #[command(flatten)]
    kafka: KafkaArgs,
}

/// Catches the store up.
pub(crate) async fn run(args: CatchUp, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let r = recover::catch_up(ctx.store, ctx.redis, &args.kafka, &args.layout.parse()?, out.json).await?;
    if out.json {
        return out.sorted_document(&r);
    }
    print_report(out, "caught up", &r)?;
    Ok(())
}
