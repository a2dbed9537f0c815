//! The snapshot file: boards, their seasons and the Kafka offsets they are complete up to.
//!
//! A zstd stream (with its content checksum) of UTF-8 lines:
//!
//! ```text
//! {"format":"lb-snapshot","version":1,"created_at_ms":..,"topic":"scores","group":"..","offsets":{"0":1234,..}}
//! {"board":"global","record":{..},"boundaries":[..]}            one header per board or season
//! p-000123\t4821\t0                                               one line per player: id, score, time (ms)
//! p-000124\t4800\t0\t{"name":"Ada"}                               and the entry's metadata, when it has any
//! {"board":"global@2026-11-24","record":{..},"boundaries":[],"season":{"id":..,"start_ms":..,"end_ms":..,"closed_at_ms":..}}
//! {"board":"xp","record":{..,"rules":{..,"operator":"sum"}},"boundaries":[]}   a `last` or `sum` board:
//! {"shard":"lb:{xp:h4.0}:z","applied":{"scores:0":1234,..}}      each shard, read at one instant:
//! p-000042\t5100\t0                                               its players,
//! {"ids":[["p-000042","<hex>"],..]}                              and their idempotency keys
//! ...
//! {"players":[{"player":"p-000042","erased_at_ms":1765100000000},{"player":"p-7","ban":{..}},..]}
//! {"end":{"boards":2,"players":1000000,"marked":2}}
//! ```
//!
//! A player id cannot start with `{`, so a header is told from a row by its
//! first byte. A board's seasons follow the board. The closing line counts
//! what the file holds: a file without it, or whose counts differ, is
//! refused as truncated (and zstd's checksum refuses a corrupted one).
//!
//! The `players` lines (at most [`MARKS_PER_LINE`] players each) are the
//! player registry (erasures and bans) read **after** the scan, so an erasure
//! made during it is there; files written before they existed have none, and
//! their closing line no `marked`. `restore` reads them first
//! ([`registry_of`]): they decide which rows stay out.
//!
//! `offsets` are the ingest group's committed offsets, read **before** the
//! boards were scanned: every event below them is in the file, and a replay
//! from them restores whatever the scan may have missed
//! ([`leaderboard_store::board::snapshot`]). A `last` or `sum` board's shards
//! carry their own applied offsets, read with their players at one instant,
//! so the replay skips what each shard held (version 2 of the format; version
//! 1 files, which have no such lines, still read).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context as _, bail, ensure};
use leaderboard_contract::{BoardId, Meta, PlayerId};
use leaderboard_semantics::ScoreUpdate;
use leaderboard_store::layout::record::BoardRecord;
use leaderboard_store::marker::registry::PlayerMarks;
use serde::{Deserialize, Serialize};

/// The first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always `lb-snapshot`.
    pub format: String,
    /// The format's version (1).
    pub version: u32,
    /// When the snapshot started, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The topic the offsets are of.
    pub topic: String,
    /// The ingest group whose committed offsets these are.
    pub group: String,
    /// Per partition: every event below this offset is in the snapshot.
    pub offsets: BTreeMap<i32, i64>,
    /// The store's epoch, the same before and after the scan (absent in files
    /// written before snapshots carried it).
    #[serde(default)]
    pub epoch: Option<leaderboard_store::marker::epoch::Epoch>,
}

/// A season's entry as the file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeasonLine {
    /// The season id.
    pub id: String,
    /// First millisecond of the season.
    pub start_ms: i64,
    /// First millisecond after it.
    pub end_ms: i64,
    /// When it closed, if it had.
    pub closed_at_ms: Option<i64>,
    /// When an erasure or a ban last amended it after it closed, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amended_at_ms: Option<i64>,
    /// Its result's revision (0 in snapshots older than season results).
    #[serde(default)]
    pub revision: u32,
    /// The highest revision of its result produced when the snapshot was taken.
    #[serde(default)]
    pub produced: u32,
}

/// The header of one board or season.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// The board, as stored (`<board>@<id>` for a season).
    pub board: String,
    /// Its record: layout and rules.
    pub record: BoardRecord,
    /// Its `range` boundaries (ranking keys); empty for other layouts.
    pub boundaries: Vec<u64>,
    /// For a season: its entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub season: Option<SeasonLine>,
}

impl Section {
    /// The board (or season) this section holds.
    ///
    /// # Errors
    /// When the name is neither a board's nor a season's.
    pub fn board_id(&self) -> anyhow::Result<BoardId> {
        BoardId::stored(&self.board).map_err(|e| anyhow::anyhow!("a section names {:?}: {e}", self.board))
    }
}

/// The closing line's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Boards and seasons.
    pub boards: u64,
    /// Player rows.
    pub players: u64,
    /// Players the registry marks (erased or banned).
    #[serde(default)]
    pub marked: u64,
    /// Shards of `last` and `sum` boards.
    #[serde(default)]
    pub shards: u64,
    /// Players' idempotency keys of `last` and `sum` boards.
    #[serde(default)]
    pub ids: u64,
}

#[derive(Serialize, Deserialize)]
struct End {
    end: Totals,
}

/// A `last` or `sum` board's shard, as read at one instant: its rows and ids follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardLine {
    /// The shard's key.
    pub shard: String,
    /// Per `<topic>:<partition>`, the offset after the last record the shard took.
    pub applied: BTreeMap<String, i64>,
}

/// Players' idempotency keys, as a line holds them (hex).
#[derive(Serialize, Deserialize)]
struct Ids {
    ids: Vec<(PlayerId, String)>,
}

/// A player the registry marks, as a `players` line holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkedPlayer {
    /// The player.
    pub player: PlayerId,
    /// Their marks.
    #[serde(flatten)]
    pub marks: PlayerMarks,
}

#[derive(Serialize, Deserialize)]
struct Players {
    players: Vec<MarkedPlayer>,
}

/// Most players one `players` line holds.
pub const MARKS_PER_LINE: usize = 1000;

/// Most players one `ids` line holds.
pub const IDS_PER_LINE: usize = 1000;

/// The current format's name and version.
pub const FORMAT: &str = "lb-snapshot";
/// The current format's version (2: shards and ids of `last` and `sum` boards).
pub const VERSION: u32 = 2;

/// Writes a snapshot file. Blocking: run it on a blocking thread.
pub struct Writer {
    out: BufWriter<zstd::Encoder<'static, std::fs::File>>,
    totals: Totals,
}

impl Writer {
    /// Creates `path` (it must not exist) and writes the header.
    ///
    /// # Errors
    /// When the file cannot be created or written.
    pub fn create(path: &Path, header: &Header) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        let mut encoder = zstd::Encoder::new(file, 3)?;
        encoder.include_checksum(true)?;
        let mut out = BufWriter::with_capacity(1 << 20, encoder);
        writeln!(out, "{}", serde_json::to_string(header)?)?;
        Ok(Self { out, totals: Totals::default() })
    }

    /// Starts a board or season.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn section(&mut self, section: &Section) -> anyhow::Result<()> {
        writeln!(self.out, "{}", serde_json::to_string(section)?)?;
        self.totals.boards += 1;
        Ok(())
    }

    /// Adds players to the current section.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn rows(&mut self, rows: &[ScoreUpdate]) -> anyhow::Result<()> {
        for r in rows {
            match &r.meta {
                // A `Meta` holds no tab or line break outside its strings, and JSON escapes those inside.
                Some(meta) => writeln!(self.out, "{}\t{}\t{}\t{meta}", r.player, r.score, r.time_ms)?,
                None => writeln!(self.out, "{}\t{}\t{}", r.player, r.score, r.time_ms)?,
            }
        }
        self.totals.players += rows.len() as u64;
        Ok(())
    }

    /// Starts a shard of the current (`last` or `sum`) section.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn shard(&mut self, shard: &ShardLine) -> anyhow::Result<()> {
        writeln!(self.out, "{}", serde_json::to_string(shard)?)?;
        self.totals.shards += 1;
        Ok(())
    }

    /// Adds players' idempotency keys to the current shard.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn ids(&mut self, ids: &[(PlayerId, Vec<u8>)]) -> anyhow::Result<()> {
        for chunk in ids.chunks(IDS_PER_LINE) {
            let ids = chunk.iter().map(|(p, bytes)| (p.clone(), hex::encode(bytes))).collect();
            writeln!(self.out, "{}", serde_json::to_string(&Ids { ids })?)?;
        }
        self.totals.ids += ids.len() as u64;
        Ok(())
    }

    /// Writes the player registry (after every section).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn players(&mut self, marked: &[(PlayerId, PlayerMarks)]) -> anyhow::Result<()> {
        for chunk in marked.chunks(MARKS_PER_LINE) {
            let players = chunk
                .iter()
                .map(|(player, marks)| MarkedPlayer { player: player.clone(), marks: marks.clone() })
                .collect();
            writeln!(self.out, "{}", serde_json::to_string(&Players { players })?)?;
        }
        self.totals.marked += marked.len() as u64;
        Ok(())
    }

    /// Writes the closing line, finishes the stream and syncs the file to disk.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn finish(mut self) -> anyhow::Result<Totals> {
        writeln!(self.out, "{}", serde_json::to_string(&End { end: self.totals })?)?;
        let encoder = self.out.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        let file = encoder.finish()?;
        file.sync_all()?;
        Ok(self.totals)
    }
}

/// What [`Reader::next_item`] returns.
#[derive(Debug)]
pub enum Item {
    /// A board or season starts.
    Section(Box<Section>),
    /// Up to `chunk` players of the current section.
    Rows(Vec<ScoreUpdate>),
    /// A shard of the current (`last` or `sum`) section starts.
    Shard(ShardLine),
    /// Idempotency keys of the current shard's players.
    Ids(Vec<(PlayerId, Vec<u8>)>),
}

/// Reads a snapshot file. Blocking: run it on a blocking thread.
pub struct Reader {
    lines: std::io::Lines<BufReader<zstd::Decoder<'static, BufReader<std::fs::File>>>>,
    /// The header.
    pub header: Header,
    board: Option<BoardId>,
    pending: Option<String>,
    seen: Totals,
    chunk: usize,
}

impl Reader {
    /// Opens `path` and reads its header; rows come `chunk` at a time.
    ///
    /// # Errors
    /// When the file cannot be read or is not a snapshot of this version.
    pub fn open(path: &Path, chunk: usize) -> anyhow::Result<Self> {
        let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut lines = BufReader::with_capacity(1 << 20, zstd::Decoder::new(file)?).lines();
        let first = lines.next().context("an empty file")??;
        let header: Header = serde_json::from_str(&first).context("not a snapshot file (its first line)")?;
        ensure!(header.format == FORMAT, "not a snapshot file (format {:?})", header.format);
        ensure!((1..=VERSION).contains(&header.version), "snapshot format version {} is not supported", header.version);
        Ok(Self { lines, header, board: None, pending: None, seen: Totals::default(), chunk: chunk.max(1) })
    }

    /// The next section or chunk of rows; `None` at the verified end.
    ///
    /// # Errors
    /// A malformed line, or a truncated or corrupted file.
    pub fn next_item(&mut self) -> anyhow::Result<Option<Item>> {
        let mut rows = Vec::new();
        loop {
            let line = match self.pending.take() {
                Some(line) => line,
                None => match self.lines.next() {
                    Some(line) => line.context("reading the snapshot (truncated or corrupted?)")?,
                    None => bail!("the snapshot ends without its closing line: it is truncated"),
                },
            };
            if line.starts_with('{') {
                if !rows.is_empty() {
                    self.pending = Some(line);
                    return Ok(Some(Item::Rows(rows)));
                }
                if let Ok(End { end }) = serde_json::from_str::<End>(&line) {
                    ensure!(end == self.seen, "the snapshot holds {:?} but says {end:?}: it is damaged", self.seen);
                    return Ok(None);
                }
                if line.starts_with(PLAYERS_LINE) {
                    // Read before the rows by `registry_of`; here only counted.
                    let players: Players = serde_json::from_str(&line).context("a malformed players line")?;
                    self.seen.marked += players.players.len() as u64;
                    continue;
                }
                if line.starts_with(SHARD_LINE) {
                    let shard: ShardLine = serde_json::from_str(&line).context("a malformed shard line")?;
                    ensure!(self.board.is_some(), "a shard line before any section header");
                    self.seen.shards += 1;
                    return Ok(Some(Item::Shard(shard)));
                }
                if line.starts_with(IDS_LINE) {
                    let ids: Ids = serde_json::from_str(&line).context("a malformed ids line")?;
                    let ids = ids
                        .ids
                        .into_iter()
                        .map(|(p, text)| Ok((p, hex::decode(&text).context("an ids line's keys")?)))
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    self.seen.ids += ids.len() as u64;
                    return Ok(Some(Item::Ids(ids)));
                }
                let section: Section = serde_json::from_str(&line).context("a malformed section header")?;
                self.board = Some(section.board_id()?);
                self.seen.boards += 1;
                return Ok(Some(Item::Section(Box::new(section))));
            }
            let board = self.board.clone().context("player rows before any section header")?;
            rows.push(parse_row(board, &line)?);
            self.seen.players += 1;
            if rows.len() >= self.chunk {
                return Ok(Some(Item::Rows(rows)));
            }
        }
    }
}

/// How a `players` line starts.
const PLAYERS_LINE: &str = "{\"players\":";
/// How a shard line starts.
const SHARD_LINE: &str = "{\"shard\":";
/// How an ids line starts.
const IDS_LINE: &str = "{\"ids\":";

/// The player registry `path` holds (none in files written before snapshots carried it), read in
/// one pass that skips every row. Blocking: run it on a blocking thread.
///
/// # Errors
/// When the file cannot be read or a `players` line is malformed.
pub fn registry_of(path: &Path) -> anyhow::Result<Vec<(PlayerId, PlayerMarks)>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut marked = Vec::new();
    for line in BufReader::with_capacity(1 << 20, zstd::Decoder::new(file)?).lines() {
        let line = line.context("reading the snapshot (truncated or corrupted?)")?;
        if line.starts_with(PLAYERS_LINE) {
            let players: Players = serde_json::from_str(&line).context("a malformed players line")?;
            marked.extend(players.players.into_iter().map(|m| (m.player, m.marks)));
        }
    }
    Ok(marked)
}

fn parse_row(board: BoardId, line: &str) -> anyhow::Result<ScoreUpdate> {
    let mut fields = line.split('\t');
    let (Some(player), Some(score), Some(time), meta, None) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        bail!("a malformed player row: {:?}", line.chars().take(80).collect::<String>());
    };
    Ok(ScoreUpdate {
        board,
        player: PlayerId::new(player).map_err(|e| anyhow::anyhow!("a player row: {e}"))?,
        score: score.parse().context("a player row's score")?,
        time_ms: time.parse().context("a player row's time")?,
        meta: meta.map(Meta::parse).transpose().context("a player row's metadata")?,
        source: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT.into(),
            version: VERSION,
            created_at_ms: 1,
            topic: "scores".into(),
            group: "g".into(),
            offsets: [(0, 7), (1, 9)].into_iter().collect(),
            epoch: None,
        }
    }

    fn row(board: &BoardId, i: u64) -> ScoreUpdate {
        ScoreUpdate {
            board: board.clone(),
            player: PlayerId::new(format!("p-{i}")).expect("id"),
            score: i,
            time_ms: i * 2,
            meta: (i % 2 == 1).then(|| Meta::parse(&format!(r#"{{"name":"p\t{i}"}}"#)).expect("meta")),
            source: None,
        }
    }

    fn write(path: &Path, boards: &[(&str, u64)]) -> Totals {
        let mut w = Writer::create(path, &header()).expect("create");
        for (name, players) in boards {
            let board = BoardId::new(*name).expect("board");
            let record = BoardRecord::plain("hash:2".parse().expect("layout"));
            w.section(&Section { board: board.to_string(), record, boundaries: vec![], season: None })
                .expect("section");
            w.rows(&(0..*players).map(|i| row(&board, i)).collect::<Vec<_>>()).expect("rows");
            if *name == "b" {
                let shard = ShardLine { shard: "lb:{b:h2.0}:z".into(), applied: [("scores:0".to_string(), 12)].into() };
                w.shard(&shard).expect("shard");
                let ids =
                    [(PlayerId::new("p-0").expect("id"), vec![0, 255, 7]), (PlayerId::new("p-1").expect("id"), vec![])];
                w.ids(&ids).expect("ids");
            }
        }
        w.players(&marked()).expect("players");
        w.finish().expect("finish")
    }

    fn marked() -> Vec<(PlayerId, PlayerMarks)> {
        let ban = leaderboard_store::marker::registry::Ban {
            boards: leaderboard_store::marker::registry::BanScope::ALL,
            closed_seasons: true,
            reason: "aimbot".into(),
            at_ms: 3,
        };
        vec![
            (PlayerId::new("gone").expect("id"), PlayerMarks { erased_at_ms: Some(5), ban: None }),
            (PlayerId::new("cheat").expect("id"), PlayerMarks { erased_at_ms: None, ban: Some(ban) }),
        ]
    }

    #[test]
    fn round_trips_boards_rows_and_offsets() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s.lbsnap");
        assert_eq!(
            write(&path, &[("a", 5), ("b", 0), ("c", 3)]),
            Totals { boards: 3, players: 8, marked: 2, shards: 1, ids: 2 }
        );
        assert!(Writer::create(&path, &header()).is_err(), "never overwrites a file");
        let mut r = Reader::open(&path, 2).expect("open");
        assert_eq!(r.header, header());
        let mut seen = Vec::new();
        while let Some(item) = r.next_item().expect("item") {
            seen.push(match item {
                Item::Section(s) => format!("[{}]", s.board),
                Item::Shard(s) => format!("<{} {:?}>", s.shard, s.applied),
                Item::Ids(ids) => format!("{ids:?}"),
                Item::Rows(rows) => rows
                    .iter()
                    .map(|u| {
                        let meta = u.meta.as_ref().map(|m| format!("+{m}")).unwrap_or_default();
                        format!("{}={}@{}{meta}", u.player, u.score, u.time_ms)
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            });
        }
        assert_eq!(
            seen,
            [
                "[a]",
                r#"p-0=0@0,p-1=1@2+{"name":"p\t1"}"#,
                r#"p-2=2@4,p-3=3@6+{"name":"p\t3"}"#,
                "p-4=4@8",
                "[b]",
                r#"<lb:{b:h2.0}:z {"scores:0": 12}>"#,
                r#"[(PlayerId("p-0"), [0, 255, 7]), (PlayerId("p-1"), [])]"#,
                "[c]",
                r#"p-0=0@0,p-1=1@2+{"name":"p\t1"}"#,
                "p-2=2@4"
            ]
        );
        assert_eq!(registry_of(&path).expect("registry"), marked(), "the registry, read first");
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s.lbsnap");
        write(&path, &[("a", 50_000)]);
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("cut");
        let mut r = Reader::open(&path, 1000).expect("the header is still there");
        let err =
            std::iter::from_fn(|| r.next_item().transpose()).find_map(Result::err).expect("an error before the end");
        assert!(format!("{err:#}").contains("truncated"), "{err:#}");
    }
}
