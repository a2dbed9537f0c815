//! `catch-up`: a store that went back in time replayed from its own lowest applied offsets.

use std::time::Instant;

use anyhow::bail;
use leaderboard_store::marker::applied;
use leaderboard_store::marker::epoch::{self, Origin, State};
use leaderboard_store::marker::loss;
use leaderboard_store::{LayoutSpec, Store};

use super::KafkaArgs;
use super::epoch::install_epoch;
use super::replay::{RestoreReport, ingest_config, replay_group, replay_into};
use leaderboard_runtime::RedisArgs;

/// Replays what a store that went back in time forgot (see the module docs):
/// from the lowest applied offset of each partition over every node, to the
/// end offsets read when it starts; then installs a new epoch.
///
/// # Errors
/// A store that is not lost, or was not found rolled back (a wipe: restore or
/// rebuild); expired events; the broker or Redis failing.
pub async fn catch_up(
    store: &Store,
    redis: &RedisArgs,
    kafka: &KafkaArgs,
    layout: &LayoutSpec,
    quiet: bool,
) -> anyhow::Result<RestoreReport> {
    let started = Instant::now();
    if let State::Intact(e) = epoch::read(store).await? {
        bail!(
            "the store holds its epoch {} ({:?}): it is not lost. A catch-up is for a store found rolled back",
            e.id,
            e.origin
        );
    }
    let loss = loss::loss(store).await?;
    if !loss.is_some_and(|l| l.cause == loss::Cause::Rollback && l.topic == kafka.topic) {
        bail!(
            "the store was not found rolled back on topic {} (no loss note says so): it was wiped or damaged. \
             Restore the newest snapshot (lb-admin restore) or rebuild from Kafka (lb-admin rebuild)",
            kafka.topic
        );
    }
    let Some(from) = applied::lowest(store, &kafka.topic).await? else {
        bail!(
            "a node holds no applied offsets of topic {}: it was wiped, not rolled back. Restore the newest \
             snapshot (lb-admin restore) or rebuild from Kafka (lb-admin rebuild)",
            kafka.topic
        );
    };
    let config = ingest_config(redis, kafka, &layout.to_string(), &replay_group(kafka, "catch-up"))?;
    // The rollback took the registry back in time too: erasures and bans made since are given back,
    // and the players they name taken out of what the rolled-back store holds of them.
    let mut report =
        RestoreReport { players: super::players::give_back(store, kafka, &[]).await?, ..RestoreReport::default() };
    // And the resets of `manual` boards made since.
    super::players::give_back_resets(store, &mut report.players).await?;
    replay_into(config, ingest::config::Replay::default(), ingest::recovery::Start::At(from), quiet, &mut report)
        .await?;
    install_epoch(store, redis, Origin::CatchUp).await?;
    report.epoch_installed = true;
    report.total_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
