//! `snapshot`: the ingest group's committed offsets, then every board and season scanned into a
//! file ([`crate::snapshot`]) by a writer on a blocking thread.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail, ensure};
use leaderboard_contract::BoardId;
use leaderboard_store::layout::record;
use leaderboard_store::marker::applied;
use leaderboard_store::marker::epoch::{self, State};
use leaderboard_store::marker::registry;
use leaderboard_store::{Router, RouterOptions, Store};
use serde::Serialize;
use tokio::sync::mpsc;

use super::replay::ingest_config;
use super::{KafkaArgs, now_ms};
use crate::progress::bar;
use crate::snapshot::{Header, Item, SeasonLine, Section, ShardLine, Totals, Writer};
use leaderboard_runtime::RedisArgs;
use leaderboard_store::board::snapshot::Scanned;

/// What `snapshot` did.
#[derive(Debug, Serialize)]
pub struct SnapshotReport {
    /// The file.
    pub file: PathBuf,
    /// Boards and seasons, and players, in it.
    pub totals: Totals,
    /// The offsets it is complete up to.
    pub offsets: std::collections::BTreeMap<i32, i64>,
    /// How long it took, in seconds.
    pub seconds: f64,
}

enum Sink {
    Item(Item),
    /// The player registry, after every section.
    Players(Vec<(leaderboard_contract::PlayerId, leaderboard_store::marker::registry::PlayerMarks)>),
    Done,
}

/// Writes `boards` (every board when empty) and their seasons to `file`.
///
/// # Errors
/// When the broker or Redis fails, the file exists, or a board is being rebalanced.
pub async fn snapshot(
    store: &Store,
    redis: &RedisArgs,
    kafka: &KafkaArgs,
    boards: &[BoardId],
    file: &Path,
    quiet: bool,
) -> anyhow::Result<SnapshotReport> {
    let started = Instant::now();
    let config = ingest_config(redis, kafka, "single", &kafka.group)?;
    // Before the scan: every event below these offsets is in Redis before the scan starts.
    let offsets = ingest::recovery::committed(&config, &kafka.group).await.context("reading the group's offsets")?;
    // A lost store's remains must never become the newest snapshot, the one the runbook restores.
    let before = intact_epoch(store, &kafka.topic, &offsets).await?;
    let boards = if boards.is_empty() { record::boards(store).await? } else { boards.to_vec() };
    let header = Header {
        format: crate::snapshot::FORMAT.into(),
        version: crate::snapshot::VERSION,
        created_at_ms: now_ms(),
        topic: kafka.topic.clone(),
        group: kafka.group.clone(),
        offsets: offsets.clone(),
        epoch: Some(before.clone()),
    };
    let partial = file.with_extension("partial");
    let (tx, mut rx) = mpsc::channel::<Sink>(8);
    let writer = {
        let (partial, file) = (partial.clone(), file.to_path_buf());
        tokio::task::spawn_blocking(move || -> anyhow::Result<Totals> {
            anyhow::ensure!(!file.exists(), "{} exists; a snapshot never overwrites a file", file.display());
            let mut w = Writer::create(&partial, &header)?;
            while let Some(sink) = rx.blocking_recv() {
                match sink {
                    Sink::Item(Item::Section(s)) => w.section(&s)?,
                    Sink::Item(Item::Rows(rows)) => w.rows(&rows)?,
                    Sink::Item(Item::Shard(shard)) => w.shard(&shard)?,
                    Sink::Item(Item::Ids(ids)) => w.ids(&ids)?,
                    Sink::Players(marked) => w.players(&marked)?,
                    Sink::Done => {
                        let totals = w.finish()?;
                        std::fs::rename(&partial, &file)?;
                        return Ok(totals);
                    }
                }
            }
            bail!("the snapshot was interrupted")
        })
    };
    let progress = bar(0, quiet, "snapshot".into(), "{msg} {pos} players written ({per_sec})");
    let scanned = async {
        for board in &boards {
            let Some((router, _)) = Router::for_board(store, board, RouterOptions::default()).await? else { continue };
            write_board(&router, board, None, &tx, &progress).await?;
            for entry in router.seasons(board).await? {
                let season = SeasonLine {
                    id: entry.id.clone(),
                    start_ms: entry.start_ms,
                    end_ms: entry.end_ms,
                    closed_at_ms: entry.closed_at_ms,
                    amended_at_ms: entry.amended_at_ms,
                    revision: entry.revision,
                    produced: entry.produced,
                };
                write_board(&router, &board.season(&entry.id), Some(season), &tx, &progress).await?;
            }
        }
        // Unchanged during the scan: a loss or a recovery meanwhile makes the rows a mix of two stores.
        let after = intact_epoch(store, &kafka.topic, &offsets).await?;
        ensure!(
            after.id == before.id,
            "the store's epoch changed during the scan ({} to {}): it was lost and recovered meanwhile; take the \
             snapshot again",
            before.id,
            after.id
        );
        // After the scan: an erasure made during it is in the file, and restore leaves its rows out.
        let marked = registry::all(store).await.context("reading the player registry")?;
        tx.send(Sink::Players(marked)).await.map_err(|_| anyhow::anyhow!("the snapshot writer stopped"))?;
        tx.send(Sink::Done).await.map_err(|_| anyhow::anyhow!("the snapshot writer stopped"))
    }
    .await;
    drop(tx);
    let written = writer.await.context("snapshot writer")?;
    progress.finish_and_clear();
    if scanned.is_err() || written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    scanned?;
    Ok(SnapshotReport { file: file.to_path_buf(), totals: written?, offsets, seconds: started.elapsed().as_secs_f64() })
}

/// The store's epoch, refusing a store that is lost (no intact epoch) or went
/// back in time (a node's applied offsets below the group's `committed` ones).
async fn intact_epoch(store: &Store, topic: &str, committed: &applied::Offsets) -> anyhow::Result<epoch::Epoch> {
    let State::Intact(known) = epoch::read(store).await? else {
        bail!(
            "the store is lost (its epoch is missing or damaged: wiped, or marked lost by ingest): a snapshot \
             would hold what is left of it, not the truth. Recover it first (docs/operations.md)"
        );
    };
    if let Some(b) = applied::first_behind(&applied::read(store, topic).await?, committed) {
        bail!(
            "the store went back in time: a node has applied partition {} up to offset {}, below the {} the group \
             committed. A snapshot of it would miss acknowledged events; recover it first (lb-admin catch-up)",
            b.partition,
            b.applied,
            b.expected
        );
    }
    Ok(known)
}

/// Sends one board's (or season's) section and players to the writer.
async fn write_board(
    router: &Router,
    board: &BoardId,
    season: Option<SeasonLine>,
    tx: &mpsc::Sender<Sink>,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let Some(shape) = router.shape(board).await? else { return Ok(()) };
    let section = Section { board: board.to_string(), record: shape.record, boundaries: shape.boundaries, season };
    send(tx, Item::Section(Box::new(section))).await?;
    let mut scan = router.scan_players(board).await?;
    while let Some(scanned) = scan.next().await? {
        let item = match scanned {
            Scanned::Rows(rows) => {
                progress.inc(rows.len() as u64);
                Item::Rows(rows)
            }
            Scanned::Shard { key, applied } => Item::Shard(ShardLine { shard: key, applied }),
            Scanned::Ids(ids) => Item::Ids(ids),
        };
        send(tx, item).await?;
    }
    Ok(())
}

async fn send(tx: &mpsc::Sender<Sink>, item: Item) -> anyhow::Result<()> {
    tx.send(Sink::Item(item)).await.map_err(|_| anyhow::anyhow!("the snapshot writer stopped"))
}
