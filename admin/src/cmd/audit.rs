//! `lb-admin audit [--count N] [--refused]`: the newest entries of the audit log, newest first;
//! `--refused`: of the requests refused for their credentials.

use std::io::Write;

use leaderboard_store::marker::audit::{self, Log};

use super::Context;
use crate::output::Output;

/// The arguments of `audit`.
#[derive(Debug, clap::Args)]
pub struct Audit {
    /// How many entries.
    #[arg(long, default_value_t = 50)]
    count: usize,
    /// The log of admin requests refused for their credentials instead (401, 403; sampled).
    #[arg(long)]
    refused: bool,
}

/// Prints the entries.
pub(crate) async fn run(args: Audit, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let log = if args.refused { Log::Refused } else { Log::Actions };
    let entries = audit::recent_in(ctx.store, log, args.count).await?;
    if out.json {
        out.document(&entries)?;
    } else {
        for r in &entries {
            let e = &r.entry;
            writeln!(out, "{}  {}  {}  {}  {}", r.id, e.who, e.action, e.target, e.result)?;
        }
    }
    Ok(())
}
