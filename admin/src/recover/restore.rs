//! `restore`: a snapshot file loaded into boards that do not exist, with their seasons, then the
//! topic replayed from the file's offsets; a lost store gets a new epoch at the end. Players the
//! registry says must not come back (erased after the snapshot, banned) are left out of the rows.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, bail};
use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::Rules;
use leaderboard_store::board::seasons::SeasonEntry;
use leaderboard_store::board::snapshot::SCAN_CHUNK;
use leaderboard_store::marker::epoch::{self, Origin, State};
use leaderboard_store::marker::registry;
use leaderboard_store::{LayoutSpec, Router, RouterOptions, Store};
use tokio::sync::mpsc;

use super::epoch::install_epoch;
use super::replay::{RestoreReport, ingest_config, replay_group, replay_into};
use super::{KafkaArgs, layout_of};
use crate::progress::bar;
use crate::snapshot::{Item, Reader, Section, registry_of};
use leaderboard_runtime::RedisArgs;

/// How `restore` runs.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Restore only these boards (with their seasons); every board in the file when empty.
    pub boards: Vec<BoardId>,
    /// Restore into this layout instead of each board's own.
    pub layout: Option<LayoutSpec>,
    /// Replay the topic from the file's offsets afterwards.
    pub replay: bool,
    /// Accept a file whose header carries no epoch: written before snapshots refused a lost
    /// store, so it may hold what was left of one (a wiped store's zero boards).
    pub unchecked: bool,
    /// No progress bar.
    pub quiet: bool,
}

/// A board restored in this run, for its seasons.
struct Restored {
    router: Router,
    rules: Rules,
}

/// Loads `file` and replays from its offsets (see the module docs).
///
/// # Errors
/// A board in the file that exists in a store that is not lost; a damaged
/// file; the broker or Redis failing; events the replay needs having expired.
pub async fn restore(
    store: &Store,
    redis: &RedisArgs,
    kafka: &KafkaArgs,
    file: &Path,
    options: &RestoreOptions,
) -> anyhow::Result<RestoreReport> {
    let started = Instant::now();
    let lost = !matches!(epoch::read(store).await?, State::Intact(_));
    let mut reader = {
        let file = file.to_path_buf();
        tokio::task::spawn_blocking(move || Reader::open(&file, SCAN_CHUNK)).await.context("reader")??
    };
    let header = reader.header.clone();
    let Some(taken_in) = header.epoch.clone().or_else(|| options.unchecked.then(epoch::Epoch::unknown)) else {
        bail!(
            "{} carries no epoch: it was written before snapshots refused a lost store, so it may hold what was left \
             of one (a wiped store snapshots as zero boards, and restoring that finishes the loss). Check its totals \
             (`lb-admin restore` prints them), then pass --unchecked to restore it anyway",
            file.display()
        );
    };
    let mut report = RestoreReport {
        snapshot_epoch: Some(taken_in.id.clone()),
        predates: predates(store, &taken_in).await?,
        ..RestoreReport::default()
    };
    // Before any row is admitted: the registry decides which rows stay out.
    let in_file = {
        let file = file.to_path_buf();
        tokio::task::spawn_blocking(move || registry_of(&file)).await.context("reader")??
    };
    report.players = super::players::give_back(store, kafka, &in_file).await?;
    let (tx, mut rx) = mpsc::channel::<Item>(8);
    let reading = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        while let Some(item) = reader.next_item()? {
            if tx.blocking_send(item).is_err() {
                break;
            }
        }
        Ok(())
    });
    let progress = bar(0, options.quiet, "restore".into(), "{msg} {pos} players loaded ({per_sec})");
    let mut loader = Loader {
        store,
        options,
        lost,
        taken_at_ms: header.created_at_ms,
        restored: HashMap::new(),
        current: None,
        section_board: None,
        shard: None,
        report: &mut report,
        progress: &progress,
    };
    let loading = async {
        while let Some(item) = rx.recv().await {
            loader.load(item).await?;
        }
        finish_season(loader.current.take()).await
    }
    .await;
    drop(rx);
    reading.await.context("reader")??;
    loading?;
    progress.finish_and_clear();
    super::players::give_back_resets(store, &mut report.players).await?;
    report.load_seconds = started.elapsed().as_secs_f64();
    if options.replay {
        let layout = options.layout.as_ref().map_or_else(|| "single".to_string(), ToString::to_string);
        let config = ingest_config(redis, kafka, &layout, &replay_group(kafka, "restore"))?;
        anyhow::ensure!(
            config.topic == header.topic,
            "the snapshot is of topic {}, not {}",
            header.topic,
            config.topic
        );
        let scope = ingest::config::Replay { boards: options.boards.iter().cloned().collect() };
        let start = ingest::recovery::Start::At(header.offsets.clone());
        replay_into(config, scope, start, options.quiet, &mut report).await?;
    }
    if lost {
        install_epoch(store, redis, Origin::Restore).await?;
        report.epoch_installed = true;
    }
    report.total_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// What a restore has loaded so far, and where the next item goes.
struct Loader<'a> {
    store: &'a Store,
    options: &'a RestoreOptions,
    lost: bool,
    taken_at_ms: i64,
    restored: HashMap<BoardId, Restored>,
    current: Loading,
    /// The board (or season) of the section being loaded, when it is restored.
    section_board: Option<BoardId>,
    /// The `last` or `sum` shard being loaded.
    shard: Option<String>,
    report: &'a mut RestoreReport,
    progress: &'a indicatif::ProgressBar,
}

impl Loader<'_> {
    /// Loads one item of the file.
    async fn load(&mut self, item: Item) -> anyhow::Result<()> {
        match item {
            Item::Section(section) => self.section(&section).await?,
            Item::Rows(rows) => {
                if let (Some((router, season)), Some(stored)) = (&self.current, &self.section_board) {
                    let closed = season.as_ref().is_some_and(|(_, entry)| entry.closed_at_ms.is_some());
                    let (rows, left_out) =
                        admitted(self.store, stored, rows, |r| &r.player, self.taken_at_ms, closed).await?;
                    self.report.left_out += left_out;
                    // Each player's score as the file holds it, whatever the board's operator.
                    router.load(&rows).await?;
                    self.report.loaded.players += rows.len() as u64;
                    self.progress.inc(rows.len() as u64);
                }
            }
            Item::Shard(line) => {
                if let (Some((router, _)), Some(stored)) = (&self.current, &self.section_board) {
                    // Checked there: the shard must be one of the board's as restored.
                    router.load_shard_state(stored, &line.shard, &line.applied, &[]).await?;
                    self.shard = Some(line.shard);
                }
            }
            Item::Ids(ids) => {
                if let (Some((router, season)), Some(stored), Some(shard)) =
                    (&self.current, &self.section_board, &self.shard)
                {
                    let closed = season.as_ref().is_some_and(|(_, entry)| entry.closed_at_ms.is_some());
                    let (ids, _) = admitted(self.store, stored, ids, |(p, _)| p, self.taken_at_ms, closed).await?;
                    router.load_shard_state(stored, shard, &std::collections::BTreeMap::new(), &ids).await?;
                }
            }
        }
        Ok(())
    }

    /// A board or season starts: the previous season is finished, this one created (when wanted).
    async fn section(&mut self, section: &Section) -> anyhow::Result<()> {
        finish_season(self.current.take()).await?;
        let stored = section.board_id()?;
        self.shard = None;
        let rules = section.record.rules;
        if rules.operator.exactly_once()
            && let Some(layout) = &self.options.layout
            && leaderboard_store::layout::record::RecordedLayout::of(layout) != section.record.layout
        {
            bail!(
                "board {stored} uses operator {} and is restored into its own layout ({}), not {layout}: its shards' \
                 applied offsets are those of that layout",
                rules.operator,
                section.record.layout
            );
        }
        let wanted = self.options.boards.is_empty() || self.options.boards.contains(&stored);
        self.current = if stored.is_season() {
            open_season(&stored, section, &self.restored, self.lost).await?
        } else if wanted {
            let router = create_board(self.store, &stored, section, self.options, self.lost).await?;
            self.restored.insert(stored.clone(), Restored { router: router.clone(), rules });
            Some((router, None))
        } else {
            None
        };
        if self.current.is_some() {
            self.report.loaded.boards += 1;
        }
        self.section_board = self.current.as_ref().map(|_| stored);
        Ok(())
    }
}

/// `items` of `board` (rows, ids) without those of the players the registry says must not
/// come back, and how many were left out: players erased after the snapshot was taken at
/// `taken_at_ms` (the items predate the erasure; one erased before it has only items of a new
/// start), and players banned from the board (from a `closed` season only when the ban reached
/// closed seasons).
async fn admitted<T>(
    store: &Store,
    board: &BoardId,
    items: Vec<T>,
    player: impl Fn(&T) -> &PlayerId,
    taken_at_ms: i64,
    closed: bool,
) -> anyhow::Result<(Vec<T>, u64)> {
    let marks = registry::marks(store, items.iter().map(&player)).await?;
    if marks.is_empty() {
        return Ok((items, 0));
    }
    let before = items.len();
    let kept: Vec<T> = items
        .into_iter()
        .filter(|item| {
            let p = player(item);
            // An erasure at the snapshot's very start may have missed its scan: it is left out too.
            let erased = marks.erased.get(p).is_some_and(|&at| at >= taken_at_ms);
            let banned = marks.ban_on(p, board).is_some_and(|ban| !closed || ban.closed_seasons);
            !erased && !banned
        })
        .collect();
    let left_out = (before - kept.len()) as u64;
    Ok((kept, left_out))
}

/// The section being loaded: its board's router, and for a season its board and entry.
type Loading = Option<(Router, Option<(BoardId, SeasonEntry)>)>;

/// Opens the season `stored` of a board restored in this run; `None` when its board is not.
async fn open_season(
    stored: &BoardId,
    section: &Section,
    restored: &HashMap<BoardId, Restored>,
    lost: bool,
) -> anyhow::Result<Loading> {
    let Some((parent, _)) = stored.season_parts() else { return Ok(None) };
    let parent = BoardId::new(parent).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (Some(r), Some(line)) = (restored.get(&parent), &section.season) else { return Ok(None) };
    if lost {
        // What a worker wrote into the wiped store before it noticed (see `create_board`).
        r.router.delete_board(stored).await?;
    }
    let entry = SeasonEntry {
        id: line.id.clone(),
        start_ms: line.start_ms,
        end_ms: line.end_ms,
        closed_at_ms: line.closed_at_ms,
        amended_at_ms: line.amended_at_ms,
        revision: line.revision,
        produced: line.produced,
        amending: Vec::new(),
    };
    r.router.restore_season(&parent, &r.rules, &entry).await?;
    Ok(Some((r.router.clone(), Some((parent, entry)))))
}

/// Creates the board `stored` of `section` with its rules, in its layout or `options.layout`.
/// In a lost store, what the board holds was written after the loss, before it was noticed:
/// not the truth, so it is deleted first, in the layout its record names and in the one it is
/// restored into. The wipe may have taken the record and left keys a worker wrote afterwards
/// with the record it had cached: harmless to a best score (the restored rows and the replay
/// keep the better), not to a `sum` (a stray total the replay adds to, and stray applied offsets).
async fn create_board(
    store: &Store,
    stored: &BoardId,
    section: &Section,
    options: &RestoreOptions,
    lost: bool,
) -> anyhow::Result<Router> {
    if lost && let Some((stray, _)) = Router::for_board(store, stored, RouterOptions::default()).await? {
        stray.delete_board(stored).await?;
    }
    let router = Router::new(store.clone(), layout_of(section, options.layout.as_ref()), RouterOptions::default());
    if lost {
        router.delete_board(stored).await?;
    }
    router.create_for_restore(stored, section.record.rules).await?;
    Ok(router)
}

/// Closes a restored season that was closed, once its players are in.
async fn finish_season(section: Loading) -> anyhow::Result<()> {
    if let Some((router, Some((board, entry)))) = section {
        router.finish_restored_season(&board, &entry).await?;
    }
    Ok(())
}

/// When the store was lost and recovered since the snapshot (taken in epoch `taken_in`): which
/// recovery its rows predate (the replay from its offsets brings them up to date).
async fn predates(store: &Store, taken_in: &epoch::Epoch) -> anyhow::Result<Option<String>> {
    Ok(match epoch::read(store).await? {
        State::Intact(now) if now.id != taken_in.id && now.at_ms > taken_in.at_ms => Some(format!(
            "the snapshot was taken in epoch {}, before the store's epoch {} ({:?}, made at {} ms): its rows predate \
             that recovery, and the replay from its offsets brings them up to date",
            taken_in.id, now.id, now.origin, now.at_ms
        )),
        _ => None,
    })
}
