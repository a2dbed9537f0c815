//! `rebuild`: every retained event replayed into a lost store, after the boards of a rules file
//! are created; refused when events have expired.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use leaderboard_store::board::snapshot::SCAN_CHUNK;
use leaderboard_store::layout::record;
use leaderboard_store::marker::epoch::{self, Origin, State};
use leaderboard_store::{LayoutSpec, Router, RouterOptions, Store};

use super::epoch::install_epoch;
use super::replay::{RestoreReport, ingest_config, replay_group, replay_into};
use super::{KafkaArgs, layout_of};
use crate::snapshot::{Item, Reader, Section};
use leaderboard_runtime::RedisArgs;

/// How `rebuild` runs.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// The layout of boards the rules file does not name.
    pub layout: LayoutSpec,
    /// A snapshot file whose boards' rules and layouts to create first (its players are not loaded).
    pub rules_from: Option<PathBuf>,
    /// Delete boards a lost store holds (written after the loss, before it was noticed).
    pub discard_existing: bool,
    /// No progress bar.
    pub quiet: bool,
}

/// Replays every retained event into a lost store (see the module docs).
///
/// # Errors
/// A store that is not lost; boards in it without `discard_existing`;
/// expired events; the broker or Redis failing.
pub async fn rebuild(
    store: &Store,
    redis: &RedisArgs,
    kafka: &KafkaArgs,
    options: &RebuildOptions,
) -> anyhow::Result<RestoreReport> {
    let started = Instant::now();
    if let State::Intact(e) = epoch::read(store).await? {
        bail!(
            "the store holds its epoch {} ({:?}): it did not lose its data. A rebuild is for a lost store",
            e.id,
            e.origin
        );
    }
    let existing = record::boards(store).await?;
    if !existing.is_empty() {
        if !options.discard_existing {
            bail!(
                "the store holds {} boards (written after the loss, or by a version without epochs): pass \
                 --discard-existing to delete them first, or run `lb-admin epoch --adopt` to keep the store as it is",
                existing.len()
            );
        }
        for board in &existing {
            if let Some((router, _)) = Router::for_board(store, board, RouterOptions::default()).await? {
                router.delete_board(board).await?;
            }
        }
    }
    let config = ingest_config(redis, kafka, &options.layout.to_string(), &replay_group(kafka, "rebuild"))?;
    // Refuse before creating anything when events have expired.
    ingest::recovery::require_retained(
        &ingest::recovery::retained(&config).await?,
        &ingest::recovery::Start::Earliest,
    )?;
    let mut report =
        RestoreReport { players: super::players::give_back(store, kafka, &[]).await?, ..RestoreReport::default() };
    if let Some(file) = &options.rules_from {
        report.loaded.boards = create_boards_of(store, file).await?;
    }
    super::players::give_back_resets(store, &mut report.players).await?;
    replay_into(
        config,
        ingest::config::Replay::default(),
        ingest::recovery::Start::Earliest,
        options.quiet,
        &mut report,
    )
    .await?;
    install_epoch(store, redis, Origin::Rebuild).await?;
    report.epoch_installed = true;
    report.total_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Creates every board of the snapshot `file` with its rules and layout (no players, no seasons).
async fn create_boards_of(store: &Store, file: &Path) -> anyhow::Result<u64> {
    let file = file.to_path_buf();
    let sections = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Section>> {
        let mut reader = Reader::open(&file, SCAN_CHUNK)?;
        let mut sections = Vec::new();
        while let Some(item) = reader.next_item()? {
            if let Item::Section(s) = item
                && s.season.is_none()
            {
                sections.push(*s);
            }
        }
        Ok(sections)
    })
    .await
    .context("reader")??;
    for section in &sections {
        let router = Router::new(store.clone(), layout_of(section, None), RouterOptions::default());
        let board = section.board_id()?;
        // The store is lost: whatever its keys hold was written after the loss, record or not
        // (`restore::create_board` says why a `sum` board cannot keep it).
        router.delete_board(&board).await?;
        router.create_for_restore(&board, section.record.rules).await?;
    }
    Ok(sections.len() as u64)
}
