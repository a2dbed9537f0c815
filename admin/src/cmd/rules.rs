//! `lb-admin rules <board> [--order asc|desc] [--ties shared|earliest] [--operator best|last|sum]
//! [--min-score N] [--max-score N] [--reset hour|day|week|month|span|manual ..] [--layout L] ..`: shows a board's rules, or changes the ones
//! given (bounds at any time; order, ties and operator only when creating the board, with `--layout`).

use std::io::Write;

use anyhow::{Context as _, bail};
use leaderboard_semantics::{Operator, Order, Rules as BoardRules, Ties};
use leaderboard_store::layout::record;
use leaderboard_store::{Router, RouterOptions};

use super::Context;
use crate::board::{board_id, router_for};
use crate::output::Output;

/// The arguments of `rules`.
#[derive(Debug, clap::Args)]
pub struct Rules {
    /// The board.
    pub(super) board: String,
    /// The rules to change.
    #[command(flatten)]
    pub(super) set: RuleFlags,
    /// The layout of a board this creates (`single`, `hash:N`, `range:a,b,..`).
    #[arg(long)]
    layout: Option<String>,
    /// The clock a `manual` board's first season starts by.
    #[command(flatten)]
    clock: super::reset::ClockArg,
    /// Where the players log is (it keeps a `manual` board's resets for recovery).
    #[command(flatten)]
    keep: crate::players_log::KeepArgs,
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
    /// Seasons: reset every `hour` (UTC), `day`, `week` or `month`, every `--length` from
    /// `--start` (`span`), or by hand (`manual`: `lb-admin reset`); fixed once set.
    #[arg(long, value_parser = ["hour", "day", "week", "month", "span", "manual"])]
    reset: Option<String>,
    /// The offset the reset happens at 00:00 of (`+09:00`; default `+00:00`); with `--reset`.
    #[arg(long, requires = "reset", allow_hyphen_values = true)]
    utc_offset: Option<String>,
    /// The day weekly seasons start (`mon` ... `sun`; default `mon`); with `--reset week`.
    #[arg(long, requires = "reset")]
    weekday: Option<String>,
    /// The first season's start (RFC 3339, whole minutes: `2026-12-04T18:00:00Z`); with `--reset span`.
    #[arg(long, requires = "reset")]
    start: Option<String>,
    /// Each season's length (`3d`, `90m`; whole minutes, at most `366d`); with `--reset span`.
    #[arg(long, requires = "reset")]
    length: Option<String>,
    /// Closed seasons kept (default 12).
    #[arg(long)]
    keep_seasons: Option<u32>,
    /// How long after its end a season takes late events (`10s`, `5m`; default `10s`).
    #[arg(long)]
    late_grace: Option<humantime::Duration>,
    /// `best` (the best score counts), `last` (the latest event) or `sum` (scores add up);
    /// only when creating the board, whose layout must then be `single` or `hash:N`.
    #[arg(long, value_parser = ["best", "last", "sum"])]
    operator: Option<String>,
    /// On `last` and `sum` boards: how far apart two records with one `id` may be and still
    /// apply once (`24h`; at most `7d`).
    #[arg(long)]
    dedup_window: Option<humantime::Duration>,
}

/// Prints the board's rules, after changing the ones given.
pub(crate) async fn run(args: Rules, ctx: &Context<'_>, out: &mut Output<impl Write>) -> anyhow::Result<()> {
    let Rules { board, set, layout, clock, keep } = args;
    let board = board_id(&board)?;
    let record = record::recorded(ctx.store, &board).await?;
    let current = record.as_ref().map(|r| r.rules).unwrap_or_default();
    let rules = if set.any() {
        let router = match (&record, layout) {
            (Some(_), _) => router_for(ctx.store, &board).await?,
            (None, Some(spec)) => Router::new(ctx.store.clone(), spec.parse()?, RouterOptions::default()),
            (None, None) => bail!("board {board} does not exist: give --layout to create it"),
        };
        let rules = router.set_rules(&board, set.applied_to(current)?).await?.rules;
        if rules.reset.is_some_and(|r| r.is_manual())
            && router.start_manual(&board, clock.clock.now_ms()).await?.is_some()
        {
            // The first season starts now (a board that has seasons keeps them).
            keep.keep_resets(ctx.store, &board).await?;
        }
        rules
    } else if record.is_some() {
        current
    } else {
        bail!("board {board} does not exist (it has the default rules until created)");
    };
    if out.json {
        writeln!(out, "{}", serde_json::json!({ "board": board.as_str(), "rules": rules }))?;
    } else {
        writeln!(out, "{board}  {rules}")?;
    }
    Ok(())
}

impl RuleFlags {
    /// Whether any rule is given.
    pub(super) fn any(&self) -> bool {
        self.order.is_some()
            || self.ties.is_some()
            || self.min_score.is_some()
            || self.max_score.is_some()
            || self.reset.is_some()
            || self.keep_seasons.is_some()
            || self.late_grace.is_some()
            || self.operator.is_some()
            || self.dedup_window.is_some()
    }

    /// `current` with the given rules replaced.
    fn applied_to(&self, current: BoardRules) -> anyhow::Result<BoardRules> {
        let reset = match &self.reset {
            Some(every) => {
                let mut json = serde_json::json!({ "every": every });
                if let Some(offset) = &self.utc_offset {
                    json["utc_offset"] = offset.clone().into();
                }
                if let Some(weekday) = &self.weekday {
                    json["weekday"] = weekday.clone().into();
                }
                if let Some(start) = &self.start {
                    json["start"] = start.clone().into();
                }
                if let Some(length) = &self.length {
                    json["length"] = length.clone().into();
                }
                Some(serde_json::from_value(json).context("--reset")?)
            }
            None => current.reset,
        };
        Ok(BoardRules {
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
            operator: match self.operator.as_deref() {
                Some("last") => Operator::Last,
                Some("sum") => Operator::Sum,
                Some(_) => Operator::Best,
                None => current.operator,
            },
            dedup_window: self.dedup_window.map_or(current.dedup_window, Into::into),
        })
    }
}
