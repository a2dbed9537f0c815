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
//! Writing back goes through the normal write path ([`Router::apply`]) of a
//! router configured with any layout, so a board can be restored into
//! another layout than it was read from.

use leaderboard_contract::BoardId;
use leaderboard_semantics::ScoreUpdate;
use leaderboard_semantics::rules::Rules;
use leaderboard_semantics::season::Season;

use crate::board::scan::{ScanPage, scan_page};
use crate::board::seasons::SeasonEntry;
use crate::layout::record::{self, BoardRecord, RecordedLayout};
use crate::layout::router::Router;
use crate::layout::{keys, range::meta};
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
        let keys = self.layout_keys(board, record.layout, false).await?;
        Ok(PlayerScan { router: self, board: board.clone(), record, keys, key: 0, cursor: 0 })
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
            self.amend_season(board, &entry.id, amended_at).await?;
        }
        Ok(())
    }
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
}

impl PlayerScan<'_> {
    /// The next chunk (possibly empty); `None` once every key was scanned.
    ///
    /// # Errors
    /// [`Error::Contended`] at the end when the board changed layout during
    /// the scan (its old keys may be gone: scan again); [`Error::Redis`] when Redis fails.
    pub async fn next(&mut self) -> Result<Option<Vec<ScoreUpdate>>> {
        let Some(key) = self.keys.get(self.key) else {
            let after = record::recorded(self.router.store(), &self.board).await?;
            if after.is_none_or(|a| a.layout != self.record.layout) {
                return Err(Error::Contended(self.board.to_string()));
            }
            return Ok(None);
        };
        let ScanPage { cursor: next, updates: mut rows } =
            scan_page(self.router.store(), &self.board, key, self.cursor, SCAN_CHUNK).await?;
        for row in &mut rows {
            row.score = self.record.rules.score(row.score);
        }
        if next == 0 {
            self.key += 1;
        }
        self.cursor = next;
        Ok(Some(rows))
    }
}
