//! `lb-admin epoch [--adopt]`: the store's epoch (how ingest and the api notice a wiped store) and
//! why it was marked lost; `--adopt` accepts the store as it is ([`crate::recover::epoch_command`]).

use std::io::Write;

use super::Context;
use crate::output::Output;
use crate::recover;

/// The arguments of `epoch`.
#[derive(Debug, clap::Args)]
pub struct Epoch {
    /// Install a new epoch: the running workers and apis accept the store as it is now.
    #[arg(long)]
    pub(super) adopt: bool,
}

/// Prints the epoch, after adopting the store when asked.
pub(crate) async fn run(args: Epoch, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let r = recover::epoch_command(ctx.store, ctx.redis, args.adopt).await?;
    if out.json {
        return out.sorted_document(&r);
    }
    match &r.epoch {
        Some(e) => writeln!(out, "{}: {} ({:?}, made at {} ms)", r.state, e.id, e.origin, e.at_ms)?,
        None => writeln!(out, "{}", r.state)?,
    }
    if let Some(loss) = &r.loss {
        writeln!(
            out,
            "marked lost at {} ms: {} on topic {} (partition {}: applied {}, committed {}); run `lb-admin catch-up`",
            loss.at_ms,
            loss.cause.as_str(),
            loss.topic,
            loss.behind.partition,
            loss.behind.applied,
            loss.behind.expected
        )?;
    }
    Ok(())
}
