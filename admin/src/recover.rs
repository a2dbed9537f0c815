//! Disaster recovery: snapshots, restore, rebuilding from Kafka, and the store's epoch.
//!
//! - `snapshot` reads the ingest group's committed offsets, then scans the
//!   boards into a file ([`crate::snapshot`]).
//! - `restore` loads a file into boards that do not exist (any layout), then
//!   replays the topic from the file's offsets to the end offsets it reads
//!   when the load is done ([`ingest::recovery`]); on a lost store it finally
//!   installs a new epoch, and the paused workers and apis carry on.
//! - `rebuild` replays every retained event into a lost store, refusing if
//!   any has expired, then installs a new epoch.
//! - `catch-up` replays, into a store that went back in time (a rollback,
//!   [`shard_router::applied`]), the topic from the store's own applied
//!   offsets to the end offsets it reads when it starts, then installs a new epoch.
//! - `epoch` shows the store's epoch (and why it was marked lost);
//!   `epoch --adopt` accepts the store as it is (after an upgrade from a
//!   version without epochs, or to give up on lost data knowingly).
//!
//! Each installs its epoch on every copy and returns only once every replica
//! connected at that moment has it (`WAIT`, at most 10 s; otherwise it fails
//! and says so), so a failover right after recovery finds it.
//!
//! The runbook is `docs/operations.md`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use clap::Parser as _;
use leaderboard_contract::BoardId;
use serde::Serialize;
use shard_router::applied;
use shard_router::board_record::{self, RecordedLayout};
use shard_router::epoch::{self, Origin, State};
use shard_router::seasons::SeasonEntry;
use shard_router::snapshot::SCAN_CHUNK;
use shard_router::{LayoutSpec, Router, RouterOptions, Rules, Store};
use tokio::sync::mpsc;

use crate::progress::bar;
use crate::snapshot::{Header, Item, Reader, SeasonLine, Section, Totals, Writer};

/// Where the events are: the same flags and environment variables as ingest's.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "LB_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic carrying score events.
    #[arg(long, env = "LB_TOPIC", default_value = leaderboard_contract::SCORES_TOPIC)]
    pub topic: String,
    /// The live ingest workers' consumer group.
    #[arg(long, env = "LB_INGEST_GROUP", default_value = "leaderboard-ingest")]
    pub group: String,
    /// Extra librdkafka settings as `key=value` (TLS, SASL), as ingest's `--kafka-option`.
    #[arg(long = "kafka-option", env = "LB_KAFKA_OPTIONS", value_delimiter = ',', hide_env_values = true)]
    pub kafka_options: Vec<String>,
    /// How the live workers judge signed events, for a replay to judge them alike.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// The live workers' signature policy (the same flags and variables as
/// ingest's), plus the keys retired since records still retained were signed:
/// a replay verifies every record as the live workers did when it came, and
/// fails rather than pass or drop one signed with a key it lacks.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// The live policy: `--producer-keys` (`LB_PRODUCER_KEYS`), `--require-signatures`.
    #[command(flatten)]
    pub signatures: ingest::config::Signatures,
    /// Keys no longer accepted live that signed records the topic still retains, as
    /// `key-id:hex-secret`, comma-separated: keep them here until retention has removed those records.
    #[arg(long, env = "LB_RETIRED_PRODUCER_KEYS", value_delimiter = ',', hide_env_values = true,
          value_parser = leaderboard_contract::signature::ProducerKey::parse)]
    pub retired_producer_keys: Vec<leaderboard_contract::signature::ProducerKey>,
}

impl PolicyArgs {
    /// The policy a replay runs with: every key, current and retired.
    fn for_replay(&self) -> ingest::config::Signatures {
        let mut keys = self.signatures.producer_keys.clone();
        keys.extend(self.retired_producer_keys.iter().cloned());
        ingest::config::Signatures { producer_keys: keys, require_signatures: self.signatures.require_signatures }
    }
}

/// How to reach Redis, for the replay's pipeline.
#[derive(Debug, Clone)]
pub struct RedisArgs {
    /// The `--redis` URL.
    pub url: String,
    /// The `--redis-ca` file.
    pub ca: Option<PathBuf>,
}

impl RedisArgs {
    /// A connection of its own.
    async fn connect(&self) -> anyhow::Result<Store> {
        let target = shard_router::RedisTarget::parse(&self.url)?;
        let options = leaderboard_runtime::store_options(self.ca.as_deref())?;
        Store::connect(&target, options).await.context("connecting to redis")
    }
}

/// Longest wait for the replicas to confirm a new epoch.
const EPOCH_REPLICA_TIMEOUT: Duration = Duration::from_secs(10);
/// One `WAIT` of it: shorter than a Redis reply may take (`StoreOptions::response_timeout`).
const EPOCH_WAIT_STEP: Duration = Duration::from_secs(1);

/// Installs a new epoch of `origin` and returns once every replica connected now has it (`WAIT`,
/// as ingest waits for its batches): a failover right after recovery must not promote a replica
/// without it, or the store would look lost again and ingest pause once more.
async fn install_epoch(store: &Store, redis: &RedisArgs, origin: Origin) -> anyhow::Result<()> {
    // `WAIT 0` on a connection that never wrote counts the replicas connected now.
    let probe = redis.connect().await?;
    let installed = epoch::install(store, origin).await?;
    let connected = probe.wait_for_replicas(0, Duration::from_millis(1)).await?;
    let deadline = Instant::now() + EPOCH_REPLICA_TIMEOUT;
    let mut acked = store.wait_for_replicas(connected, EPOCH_WAIT_STEP).await?;
    while acked < connected && Instant::now() < deadline {
        // Each `WAIT` covers every write of this connection so far: the epoch, again.
        acked = store.wait_for_replicas(connected, EPOCH_WAIT_STEP).await?;
    }
    ensure!(
        acked >= connected,
        "the new epoch {} reached {acked} of the {connected} connected replicas in {EPOCH_REPLICA_TIMEOUT:?}: a \
         failover now would make the store look lost; see to the replicas, then run `lb-admin epoch --adopt`",
        installed.id
    );
    Ok(())
}

/// Settings of a replay's pipeline under consumer group `group`, new boards getting `layout`.
fn ingest_config(redis: &RedisArgs, kafka: &KafkaArgs, layout: &str, group: &str) -> anyhow::Result<ingest::Config> {
    let mut args: Vec<String> = ["ingest", "--brokers", &kafka.brokers, "--topic", &kafka.topic, "--group", group]
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(["--redis".into(), redis.url.clone(), "--layout".into(), layout.into()]);
    if let Some(ca) = &redis.ca {
        args.extend(["--redis-ca".into(), ca.display().to_string()]);
    }
    for option in &kafka.kafka_options {
        args.extend(["--kafka-option".into(), option.clone()]);
    }
    let mut config = ingest::Config::try_parse_from(args).context("the replay's settings")?;
    config.signatures = kafka.policy.for_replay();
    Ok(config)
}

/// A consumer group of its own for one replay, named after the live one.
fn replay_group(kafka: &KafkaArgs, what: &str) -> String {
    format!("{}.{what}.{}", kafka.group, now_ms())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The layout a section's board is restored with: `layout` if given, else the one it had.
fn layout_of(section: &Section, layout: Option<&LayoutSpec>) -> LayoutSpec {
    if let Some(spec) = layout {
        return spec.clone();
    }
    match section.record.layout {
        RecordedLayout::Single => LayoutSpec::Single,
        RecordedLayout::Hash { shards } => LayoutSpec::Hash { shards },
        RecordedLayout::Range => LayoutSpec::Range { boundaries: section.boundaries.clone() },
    }
}

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
    let boards = if boards.is_empty() { board_record::boards(store).await? } else { boards.to_vec() };
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
    while let Some(rows) = scan.next().await? {
        progress.inc(rows.len() as u64);
        send(tx, Item::Rows(rows)).await?;
    }
    Ok(())
}

async fn send(tx: &mpsc::Sender<Sink>, item: Item) -> anyhow::Result<()> {
    tx.send(Sink::Item(item)).await.map_err(|_| anyhow::anyhow!("the snapshot writer stopped"))
}

/// What `restore` (and `rebuild`) did.
#[derive(Debug, Default, Serialize)]
pub struct RestoreReport {
    /// Boards and seasons loaded, and their players.
    pub loaded: Totals,
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
    let mut report = RestoreReport { snapshot_epoch: Some(taken_in.id.clone()), ..RestoreReport::default() };
    if let State::Intact(now) = epoch::read(store).await?
        && now.id != taken_in.id
        && now.at_ms > taken_in.at_ms
    {
        // Restoring into a store that was lost and recovered since the snapshot: its rows predate
        // that recovery (the replay from its offsets brings them up to date).
        report.predates = Some(format!(
            "the snapshot was taken in epoch {}, before the store's epoch {} ({:?}, made at {} ms): its rows predate \
             that recovery, and the replay from its offsets brings them up to date",
            taken_in.id, now.id, now.origin, now.at_ms
        ));
    }
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
    let mut restored: HashMap<BoardId, Restored> = HashMap::new();
    let mut current: Loading = None;
    let wanted = |b: &BoardId| options.boards.is_empty() || options.boards.contains(b);
    let loading = async {
        while let Some(item) = rx.recv().await {
            match item {
                Item::Section(section) => {
                    finish_season(current.take()).await?;
                    let stored = section.board_id()?;
                    current = if stored.is_season() {
                        open_season(&stored, &section, &restored).await?
                    } else if wanted(&stored) {
                        let router = create_board(store, &stored, &section, options, lost).await?;
                        let rules = section.record.rules;
                        restored.insert(stored.clone(), Restored { router: router.clone(), rules });
                        Some((router, None))
                    } else {
                        None
                    };
                    if current.is_some() {
                        report.loaded.boards += 1;
                    }
                }
                Item::Rows(rows) => {
                    if let Some((router, _)) = &current {
                        router.apply(&rows).await?;
                        report.loaded.players += rows.len() as u64;
                        progress.inc(rows.len() as u64);
                    }
                }
            }
        }
        finish_season(current.take()).await
    }
    .await;
    drop(rx);
    reading.await.context("reader")??;
    loading?;
    progress.finish_and_clear();
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

/// The section being loaded: its board's router, and for a season its board and entry.
type Loading = Option<(Router, Option<(BoardId, SeasonEntry)>)>;

/// Opens the season `stored` of a board restored in this run; `None` when its board is not.
async fn open_season(
    stored: &BoardId,
    section: &Section,
    restored: &HashMap<BoardId, Restored>,
) -> anyhow::Result<Loading> {
    let Some((parent, _)) = stored.season_parts() else { return Ok(None) };
    let parent = BoardId::new(parent).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (Some(r), Some(line)) = (restored.get(&parent), &section.season) else { return Ok(None) };
    let entry = SeasonEntry {
        id: line.id.clone(),
        start_ms: line.start_ms,
        end_ms: line.end_ms,
        closed_at_ms: line.closed_at_ms,
    };
    r.router.restore_season(&parent, &r.rules, &entry).await?;
    Ok(Some((r.router.clone(), Some((parent, entry)))))
}

/// Creates the board `stored` of `section` with its rules, in its layout or `options.layout`.
/// In a lost store, what the board holds was written after the loss, before it was noticed:
/// not the truth, so it is deleted first.
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

/// Replays from `start` to the topic's end offsets now, with a progress bar.
async fn replay_into(
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
    let existing = board_record::boards(store).await?;
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
    let mut report = RestoreReport::default();
    if let Some(file) = &options.rules_from {
        report.loaded.boards = create_boards_of(store, file).await?;
    }
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
        router.create_for_restore(&section.board_id()?, section.record.rules).await?;
    }
    Ok(sections.len() as u64)
}

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
    let loss = epoch::loss(store).await?;
    if !loss.is_some_and(|l| l.cause == epoch::Cause::Rollback && l.topic == kafka.topic) {
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
    let mut report = RestoreReport::default();
    replay_into(config, ingest::config::Replay::default(), ingest::recovery::Start::At(from), quiet, &mut report)
        .await?;
    install_epoch(store, redis, Origin::CatchUp).await?;
    report.epoch_installed = true;
    report.total_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The store's epoch, as `epoch` prints it.
#[derive(Debug, Serialize)]
pub struct EpochReport {
    /// `intact`, `missing` or `damaged`.
    pub state: &'static str,
    /// The epoch, when intact.
    pub epoch: Option<epoch::Epoch>,
    /// Why a process marked the store lost, when one did (a rollback).
    pub loss: Option<epoch::Loss>,
}

/// Shows the store's epoch, or with `adopt` installs a new one (see the module
/// docs); adopting also forgets the store's applied offsets, which the store
/// as it is now no longer answers for: the next batch of each partition
/// records them again ([`shard_router::applied`]).
///
/// # Errors
/// When Redis fails, or the connected replicas do not confirm the new epoch in time.
pub async fn epoch_command(store: &Store, redis: &RedisArgs, adopt: bool) -> anyhow::Result<EpochReport> {
    if adopt {
        applied::forget(store).await?;
        install_epoch(store, redis, Origin::Adopt).await?;
    }
    let loss = epoch::loss(store).await?;
    Ok(match epoch::read(store).await? {
        State::Intact(e) => EpochReport { state: "intact", epoch: Some(e), loss: None },
        State::Missing => EpochReport { state: "missing", epoch: None, loss },
        State::Damaged => EpochReport { state: "damaged", epoch: None, loss },
    })
}
