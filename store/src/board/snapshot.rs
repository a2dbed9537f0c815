//! Reading a board out (for a snapshot) and writing one back (a restore).
//!
//! A board is read out as its record (layout, rules), its `range` boundaries
//! and its players, by `ZSCAN` over the keys of the layout it is read from.
//! `ZSCAN` returns every member present for the whole scan; a player written
//! during it may be missed (a new player in a key already scanned, a `range`
//! move between shards), which is why a snapshot is paired with the Kafka offsets read
//! **before** the scan: every event below them is in Redis before the scan
//! starts, and a replay from them re-applies everything the scan may have
//! missed (best-score writes make the overlap harmless).
//!
//! Writing back goes through the best-score write path ([`Router::load`]) of a
//! router configured with any layout, so a board can be restored into
//! another layout than it was read from.
//!
//! `last` and `sum` boards cannot take that overlap: a replayed increment
//! counts again. Their shards are read one at a time **at one instant**: a
//! `MULTI` copies the shard's players, metadata and idempotency keys to keys
//! of the same slot (living at most an hour) and reads its applied offsets
//! ([`crate::layout::scripts`]) in the same transaction; the copy is then
//! scanned at leisure and deleted. Restored into the same layout with those
//! offsets ([`Router::load_shard_state`]), each shard skips, in the replay
//! from the file's offsets, exactly the records its copy already held. The
//! copy costs, for its lifetime, the memory of one shard.

use std::collections::BTreeMap;

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::ScoreUpdate;
use leaderboard_semantics::rules::Rules;
use leaderboard_semantics::season::Season;

use crate::board::scan::{ScanPage, scan_page};
use crate::board::seasons::SeasonEntry;
use crate::connection::reply::{as_array, as_bytes, as_scan, as_u64};
use crate::layout::record::{self, BoardRecord, RecordedLayout};
use crate::layout::router::Router;
use crate::layout::{keys, member, range::meta};
use crate::{Error, Result};

/// Members per `ZSCAN` call.
pub const SCAN_CHUNK: usize = 10_000;

/// What a board is, apart from its players.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardShape {
    /// Its record: layout and rules.
    pub record: BoardRecord,
    /// The `range` layout's active boundaries (ranking keys); empty for other layouts.
    pub boundaries: Vec<u64>,
}

impl Router {
    /// `board`'s shape, or `None` when it has no record.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for unreadable metadata.
    pub async fn shape(&self, board: &BoardId) -> Result<Option<BoardShape>> {
        let Some(record) = record::recorded(self.store(), board).await? else { return Ok(None) };
        let boundaries = if record.layout == RecordedLayout::Range {
            meta::load(self.store(), &keys::range_meta(board)).await?.map(|m| m.meta.active.boundaries)
        } else {
            None
        };
        Ok(Some(BoardShape { record, boundaries: boundaries.unwrap_or_default() }))
    }

    /// Every player of `board` (scores as clients see them, and the time of
    /// reaching them on `earliest` boards), read in chunks of about [`SCAN_CHUNK`].
    ///
    /// # Errors
    /// [`Error::UnknownBoard`] without a record; [`Error::Busy`] while a
    /// `range` rebalance moves the board's players; [`Error::Redis`] when Redis fails.
    pub async fn scan_players(&self, board: &BoardId) -> Result<PlayerScan<'_>> {
        let record =
            record::recorded(self.store(), board).await?.ok_or_else(|| Error::UnknownBoard(board.to_string()))?;
        let keys = self.snapshot_keys(board, &record).await?;
        let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Ok(PlayerScan {
            router: self,
            board: board.clone(),
            record,
            keys,
            key: 0,
            cursor: 0,
            frozen: None,
            ids_cursor: None,
            nonce: format!("{nonce:x}"),
        })
    }

    /// The sorted sets a snapshot reads `board` from: its shards, or the homes
    /// of a `range` board of `last` or `sum`, whose shards only index them
    /// (and whose homes stay where they are while a rebalance runs).
    async fn snapshot_keys(&self, board: &BoardId, record: &BoardRecord) -> Result<Vec<String>> {
        if record.keeps_homes() {
            return Ok(keys::tally_homes(board));
        }
        self.layout_keys(board, record.layout, false).await
    }

    /// Writes back a `last` or `sum` shard's applied offsets and its players'
    /// idempotency keys, as a snapshot read them ([`Scanned`]), into a board
    /// restored with the same layout (its players are loaded with [`Router::load`]).
    ///
    /// # Errors
    /// [`Error::InvalidLayout`] when `shard` is not a shard of `board` as stored
    /// now (another layout); [`Error::Redis`] when Redis fails.
    pub async fn load_shard_state(
        &self,
        board: &BoardId,
        shard: &str,
        applied: &BTreeMap<String, i64>,
        ids: &[(PlayerId, Vec<u8>)],
    ) -> Result<()> {
        let record =
            record::recorded(self.store(), board).await?.ok_or_else(|| Error::UnknownBoard(board.to_string()))?;
        if !self.snapshot_keys(board, &record).await?.iter().any(|k| k == shard) {
            return Err(Error::InvalidLayout(format!(
                "{shard} is not a shard of board {board} as stored ({}): a last or sum board is restored into its own layout",
                record.layout
            )));
        }
        if applied.is_empty() && ids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        if !applied.is_empty() {
            pipe.cmd("HSET").arg(keys::applied_offsets(shard)).arg(applied).ignore();
        }
        for chunk in ids.chunks(SCAN_CHUNK) {
            let fields: Vec<(Vec<u8>, &[u8])> = chunk.iter().map(|(p, v)| (member::encode(p), v.as_slice())).collect();
            pipe.cmd("HSET").arg(keys::recent_ids(shard)).arg(fields).ignore();
        }
        self.store().run(&pipe).await?;
        Ok(())
    }

    /// Creates `board` for a restore, with this router's configured layout and
    /// `rules` (for `range`, the configured boundaries).
    ///
    /// # Errors
    /// [`Error::BoardExists`] when the board has a record (a restore never
    /// merges into a live board); as [`Router::set_rules`].
    pub async fn create_for_restore(&self, board: &BoardId, rules: Rules) -> Result<()> {
        if record::recorded(self.store(), board).await?.is_some() {
            return Err(Error::BoardExists(board.to_string()));
        }
        self.set_rules(board, rules).await?;
        Ok(())
    }

    /// Opens season `entry` of `board` (created for a restore) with `rules`;
    /// its players are then written with [`Router::apply`] under its stored
    /// name, and [`Router::finish_restored_season`] closes it if it was closed.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub async fn restore_season(&self, board: &BoardId, rules: &Rules, entry: &SeasonEntry) -> Result<BoardId> {
        let season = Season { id: entry.id.clone(), start_ms: entry.start_ms, end_ms: entry.end_ms };
        self.open_season(board, rules, &season).await
    }

    /// Sets the fence of a restored season that was closed, at its original closing time, and
    /// says when it was amended, if it was.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub async fn finish_restored_season(&self, board: &BoardId, entry: &SeasonEntry) -> Result<()> {
        if let Some(closed_at) = entry.closed_at_ms {
            self.close_season(board, &entry.id, closed_at).await?;
        }
        if let Some(amended_at) = entry.amended_at_ms {
            // The snapshot holds the amended season: no player is still being taken out.
            self.amend_season(board, &entry.id, amended_at, None).await?;
        }
        if entry.closed_at_ms.is_some() {
            self.revise_restored_season(board, entry).await?;
        }
        Ok(())
    }
}

/// What a scan of a board reads next ([`PlayerScan::next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    /// `last` and `sum` boards: a shard starts, read at one instant; `applied`
    /// are its applied offsets at that instant. Its rows and ids follow.
    Shard {
        /// The shard's key.
        key: String,
        /// Per `<topic>:<partition>`, the offset after the last record the shard took.
        applied: BTreeMap<String, i64>,
    },
    /// Players (scores as clients see them, and the time of reaching them on `earliest` boards).
    Rows(Vec<ScoreUpdate>),
    /// `last` and `sum` boards: players' remembered idempotency keys, as the shard keeps them.
    Ids(Vec<(PlayerId, Vec<u8>)>),
}

/// A scan of one board's players ([`Router::scan_players`]).
#[derive(Debug)]
pub struct PlayerScan<'a> {
    router: &'a Router,
    board: BoardId,
    record: BoardRecord,
    keys: Vec<String>,
    key: usize,
    cursor: u64,
    /// `last` and `sum` boards: the copy of the current shard being read.
    frozen: Option<String>,
    /// `last` and `sum` boards: once the copy's rows are read, the `HSCAN` cursor of its ids.
    ids_cursor: Option<u64>,
    nonce: String,
}

impl PlayerScan<'_> {
    /// The next item (a chunk may be empty); `None` once every key was scanned.
    ///
    /// # Errors
    /// [`Error::Contended`] at the end when the board changed layout during
    /// the scan (its old keys may be gone: scan again); [`Error::Redis`] when Redis fails.
    pub async fn next(&mut self) -> Result<Option<Scanned>> {
        let Some(key) = self.keys.get(self.key).cloned() else {
            let after = record::recorded(self.router.store(), &self.board).await?;
            if after.is_none_or(|a| a.layout != self.record.layout) {
                return Err(Error::Contended(self.board.to_string()));
            }
            return Ok(None);
        };
        if !self.record.rules.operator.exactly_once() {
            let rows = self.page(&key).await?;
            if self.cursor == 0 {
                self.key += 1;
            }
            return Ok(Some(Scanned::Rows(rows)));
        }
        let Some(copy) = self.frozen.clone() else {
            let (copy, applied) = self.freeze(&key).await?;
            self.frozen = Some(copy);
            return Ok(Some(Scanned::Shard { key, applied }));
        };
        if let Some(cursor) = self.ids_cursor {
            let (next, ids) = self.ids_page(&copy, cursor).await?;
            if next == 0 {
                let _: i64 = self.router.store().query(&keys::unlink_shard(&copy)).await?;
                self.frozen = None;
                self.ids_cursor = None;
                self.key += 1;
            } else {
                self.ids_cursor = Some(next);
            }
            return Ok(Some(Scanned::Ids(ids)));
        }
        let rows = self.page(&copy).await?;
        if self.cursor == 0 {
            self.ids_cursor = Some(0);
        }
        Ok(Some(Scanned::Rows(rows)))
    }

    /// One `ZSCAN` page of `key` from the scan's cursor, scores as clients see them.
    async fn page(&mut self, key: &str) -> Result<Vec<ScoreUpdate>> {
        let ScanPage { cursor: next, updates: mut rows } =
            scan_page(self.router.store(), &self.board, key, self.cursor, SCAN_CHUNK).await?;
        for row in &mut rows {
            row.score = self.record.rules.score(row.score);
        }
        self.cursor = next;
        Ok(rows)
    }

    /// Copies the shard `key` (players, metadata, idempotency keys) beside it
    /// and reads its applied offsets, in one transaction; returns the copy's key.
    async fn freeze(&self, key: &str) -> Result<(String, BTreeMap<String, i64>)> {
        let copy = format!("{}:snap{}:z", key.strip_suffix(":z").unwrap_or(key), self.nonce);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (from, to) in [
            (key.to_string(), copy.clone()),
            (keys::entry_meta(key), keys::entry_meta(&copy)),
            (keys::recent_ids(key), keys::recent_ids(&copy)),
        ] {
            // Gone by itself if this process dies before deleting it.
            pipe.cmd("COPY").arg(&from).arg(&to).arg("REPLACE").ignore();
            pipe.cmd("EXPIRE").arg(&to).arg(3600).ignore();
        }
        pipe.cmd("HGETALL").arg(keys::applied_offsets(key));
        let replies = self.router.store().run(&pipe).await?;
        let flat = replies.into_iter().next().map(as_array).transpose()?.unwrap_or_default();
        let mut applied = BTreeMap::new();
        for pair in flat.chunks_exact(2) {
            let field = String::from_utf8(as_bytes(pair[0].clone())?)
                .map_err(|_| Error::Corrupt(format!("{key}: an applied offset's name is not UTF-8")))?;
            applied.insert(field, i64::try_from(as_u64(&pair[1])?).unwrap_or(i64::MAX));
        }
        Ok((copy, applied))
    }

    /// One `HSCAN` page of the copy's idempotency keys.
    async fn ids_page(&self, copy: &str, cursor: u64) -> Result<(u64, Vec<(PlayerId, Vec<u8>)>)> {
        let reply: Vec<redis::Value> = self
            .router
            .store()
            .query(redis::cmd("HSCAN").arg(keys::recent_ids(copy)).arg(cursor).arg("COUNT").arg(SCAN_CHUNK))
            .await?;
        let (next, flat) = as_scan(reply)?;
        let mut ids = Vec::with_capacity(flat.len() / 2);
        for pair in flat.chunks_exact(2) {
            let field = as_bytes(pair[0].clone())?;
            let player =
                member::decode_any(&field).ok_or_else(|| Error::Corrupt("foreign member in a shard's ids".into()))?;
            ids.push((player.player, as_bytes(pair[1].clone())?));
        }
        Ok((next, ids))
    }
}
