//! Replaying the topic into the store, shared by restore, rebuild and catch-up: the pipeline's
//! settings (ingest's own, under a consumer group of the replay's own), the replay with its
//! progress bar, and the report.

use std::time::Instant;

use anyhow::{Context as _, ensure};
use clap::Parser as _;
use serde::Serialize;

use super::{KafkaArgs, now_ms};
use crate::progress::bar;
use crate::snapshot::Totals;
use leaderboard_runtime::RedisArgs;

/// What `restore` (and `rebuild`) did.
#[derive(Debug, Default, Serialize)]
pub struct RestoreReport {
    /// Boards and seasons loaded, and their players.
    pub loaded: Totals,
    /// The erasures and bans the players log gave the store back before anything was loaded.
    pub players: super::players::PlayersGivenBack,
    /// `restore`: rows of the file left out because the registry says so: players erased after
    /// the snapshot was taken, or banned from the board (docs/contract.md#players-erasure-and-bans).
    pub left_out: u64,
    /// Seconds spent loading the file.
    pub load_seconds: f64,
    /// Records the replay read, and the events it wrote.
    pub replayed_records: u64,
    /// Events the replay wrote (after coalescing and the cache).
    pub replayed_events: u64,
    /// Records the replay refused, as the live workers dead-lettered them (malformed, out of
    /// bounds, a forged signature, a season closed when they reached Kafka).
    pub replay_refused: u64,
    /// Seconds spent replaying.
    pub replay_seconds: f64,
    /// Whether the store was lost, and a new epoch was installed.
    pub epoch_installed: bool,
    /// `restore`: the epoch the snapshot was taken in (`unknown` for an unchecked file).
    pub snapshot_epoch: Option<String>,
    /// `restore`: when the snapshot predates a recovery of the store, which.
    pub predates: Option<String>,
    /// Seconds from start to the end: the recovery time.
    pub total_seconds: f64,
}

/// Settings of a replay's pipeline under consumer group `group`, new boards getting `layout`.
pub(super) fn ingest_config(
    redis: &RedisArgs,
    kafka: &KafkaArgs,
    layout: &str,
    group: &str,
) -> anyhow::Result<ingest::Config> {
    let mut args: Vec<String> = ["ingest", "--brokers", &kafka.brokers, "--topic", &kafka.topic, "--group", group]
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(["--redis".into(), redis.redis.clone(), "--layout".into(), layout.into()]);
    if let Some(ca) = &redis.redis_ca {
        args.extend(["--redis-ca".into(), ca.display().to_string()]);
    }
    let mut config = ingest::Config::try_parse_from(args).context("the replay's settings")?;
    config.signatures = kafka.policy.for_replay();
    config.kafka_options.clone_from(&kafka.kafka.kafka_options);
    Ok(config)
}

/// A consumer group of its own for one replay, named after the live one.
pub(super) fn replay_group(kafka: &KafkaArgs, what: &str) -> String {
    format!("{}.{what}.{}", kafka.group, now_ms())
}

/// Replays from `start` to the topic's end offsets now, with a progress bar.
pub(super) async fn replay_into(
    config: ingest::Config,
    scope: ingest::config::Replay,
    start: ingest::recovery::Start,
    quiet: bool,
    report: &mut RestoreReport,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let until = ingest::recovery::retained(&config).await?.into_iter().map(|(p, r)| (p, r.high)).collect();
    let progress = bar(0, quiet, "replay".into(), "{msg} [{bar:40}] {pos}/{len} records ({eta} left)");
    let done = ingest::recovery::replay(config, scope, start, until, |p| {
        progress.set_length(p.total);
        progress.set_position(p.done);
    })
    .await?;
    progress.finish_and_clear();
    ensure!(
        done.unverifiable == 0,
        "{} replayed records are signed with keys this replay was not given, so it cannot judge them as the live \
         workers did (nothing of them was applied). Give it every key that signed a record the topic retains: \
         the live ones (LB_PRODUCER_KEYS) and the retired ones (LB_RETIRED_PRODUCER_KEYS); then run it again",
        done.unverifiable
    );
    report.replayed_records = done.consumed;
    report.replayed_events = done.applied;
    report.replay_refused = done.dead_lettered;
    report.replay_seconds = started.elapsed().as_secs_f64();
    Ok(())
}
