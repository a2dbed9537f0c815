//! Seasons in Redis: opening one, closing it behind a fence, and retention.
//!
//! Season `id` of board `b` is stored as a board of its own, `b@id`
//! ([`BoardId::season`]), with `b`'s layout and order and ties at the time it
//! opens (a `range` season takes `b`'s boundaries then), so every layout,
//! the Cluster's hash tags and the `earliest` player index work unchanged.
//! `lb:{b}:seasons` ([`keys::seasons`]) maps each season id to its
//! [`SeasonEntry`]: its interval, and when it closed.
//!
//! # Closing exactly once
//! There is no coordinator: Redis is the arbiter. Every write to a season
//! runs behind its shard's closed marker ([`keys::closed_marker`], same hash
//! tag as the shard): once the marker exists, the write script writes nothing
//! and the writer learns that the update was refused ([`crate::layout::router::Closed`]).
//! Closing ([`Router::close_due`]) sets the marker of every shard (`SET`:
//! idempotent, so a closer that dies midway is finished by the next), then
//! records `closed_at` in the season's entry with a compare-and-set script:
//! exactly one closer wins that step, whoever's clock passed `end +
//! late_grace` first. A shard's content is final once its marker is set:
//! each write ran before (it is in the frozen season) or after (refused).
//! Clock skew between closers only moves when the fence goes up.
//!
//! Closing also records that revision 1 of the season's result is due (an
//! amendment, the next revision): [`crate::board::results`] produces it.
//!
//! Then the closed seasons beyond the board's `keep_seasons` are deleted,
//! oldest first (storage first, entry last, so a closer that dies midway
//! leaves an entry the next closer deletes again), once their result is produced.

use std::collections::HashMap;

use leaderboard_contract::BoardId;
use leaderboard_semantics::rules::Rules;
use leaderboard_semantics::season::{Season, manual_index};
use serde::{Deserialize, Serialize};

use crate::layout::keys;
use crate::layout::range::meta;
use crate::layout::record::RecordedLayout;
use crate::layout::router::Router;
use crate::layout::spec::LayoutSpec;
use crate::{Error, Result};

/// A season as its board's registry holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeasonEntry {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    #[serde(skip)]
    pub id: String,
    /// First millisecond of the season.
    pub start_ms: i64,
    /// First millisecond after the season.
    pub end_ms: i64,
    /// When a closer set its fence and recorded it, in milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at_ms: Option<i64>,
    /// When the closed season was last amended (a player erased or banned out of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amended_at_ms: Option<i64>,
    /// The result revision the season's state calls for: 1 once closed, one
    /// more per amendment (0: open, or closed before results were produced).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revision: u32,
    /// The highest revision of its result the results topic acknowledged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub produced: u32,
    /// Players an amendment is taking out of the closed season right now:
    /// its next revision is due once they are out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amending: Vec<String>,
}

#[allow(clippy::trivially_copy_pass_by_ref, reason = "serde's skip_serializing_if passes a reference")]
const fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl SeasonEntry {
    /// The entry of a season just opened.
    pub fn of(season: &Season) -> Self {
        Self {
            id: season.id.clone(),
            start_ms: season.start_ms,
            end_ms: season.end_ms,
            closed_at_ms: None,
            amended_at_ms: None,
            revision: 0,
            produced: 0,
            amending: Vec::new(),
        }
    }

    /// The entry of season `id` (stored as `stored`) from its registry JSON.
    fn parse(stored: &BoardId, id: String, json: &str) -> Result<Self> {
        let entry: Self = serde_json::from_str(json).map_err(|e| Error::Corrupt(format!("season {stored}: {e}")))?;
        Ok(Self { id, ..entry })
    }

    /// Whether the season is closed (frozen).
    pub fn closed(&self) -> bool {
        self.closed_at_ms.is_some()
    }

    /// Whether a revision of its result is to be produced now (none while
    /// an amendment is taking players out).
    pub fn result_due(&self) -> bool {
        self.closed() && self.revision > self.produced && self.amending.is_empty()
    }
}

/// `CLOSE registry id now` → 1 when this call recorded the close (and that
/// revision 1 of its result is due), 0 when the season was already closed (or
/// has no entry).
const CLOSE: &str = season_entry_script!(
    r"
if entry['closed_at_ms'] then return 0 end
entry['closed_at_ms'] = tonumber(ARGV[2])
entry['revision'] = 1
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return 1
"
);

/// `AMEND registry id at [player]` → 1 when the closed season's entry now says
/// it was amended at `at` and that `player` (if given) is being taken out of
/// it, 0 for an open season (or no entry).
const AMEND: &str = season_entry_script!(
    r"
if not entry['closed_at_ms'] then return 0 end
entry['amended_at_ms'] = tonumber(ARGV[2])
local amending = entry['amending'] or {}
for _, p in ipairs(amending) do
  if p == ARGV[3] then amending = nil break end
end
if amending and ARGV[3] then
  table.insert(amending, ARGV[3])
  entry['amending'] = amending
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return 1
"
);

/// `AMENDED registry id player` → 1 when `player` was being taken out of the
/// closed season and is now out: the next revision of its result is due.
/// An entry's list is dropped when empty (cjson writes an empty table as `{}`).
const AMENDED: &str = season_entry_script!(
    r"
local amending = entry['amending'] or {}
for i, p in ipairs(amending) do
  if p == ARGV[2] then
    table.remove(amending, i)
    if #amending == 0 then entry['amending'] = nil end
    entry['revision'] = (entry['revision'] or 1) + 1
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
    return 1
  end
end
return 0
"
);

/// `REVISED registry id revision produced` → raises a restored closed season's
/// result revision and what was produced of it to the snapshot's (never lowers them).
const REVISED: &str = season_entry_script!(
    r"
entry['revision'] = math.max(entry['revision'] or 0, tonumber(ARGV[2]))
entry['produced'] = math.max(entry['produced'] or 0, tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return 1
"
);

/// What [`Router::close_due`] did, and the registry it worked from.
#[derive(Debug, Clone, Default)]
pub struct Closing {
    /// The seasons this call closed.
    pub closed: Vec<String>,
    /// The board's seasons, newest first, as read, with this call's closes applied.
    pub entries: Vec<SeasonEntry>,
}

/// The season of `rules` that `time_ms` falls in, for a board with a reset;
/// `None` for a board without one (or a time seasons are not computed for,
/// which `ts` validation already excludes).
pub fn season_of(rules: &Rules, time_ms: u64) -> Option<Season> {
    rules.reset.as_ref().and_then(|reset| reset.season_at(i64::try_from(time_ms).ok()?).ok())
}

/// Whether `season` takes no more events at `now_ms` under `rules`
/// (its end plus `late_grace` has passed).
pub fn past_grace(rules: &Rules, season: &Season, now_ms: i64) -> bool {
    let grace = i64::try_from(rules.late_grace.as_millis()).unwrap_or(i64::MAX);
    now_ms >= season.end_ms.saturating_add(grace)
}

/// Every board with a reset schedule (what closers check), by `SSCAN`.
///
/// # Errors
/// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for a name that is not a board's.
pub async fn seasonal_boards(store: &crate::Store) -> Result<Vec<BoardId>> {
    let mut boards = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, names): (u64, Vec<String>) =
            store.query(redis::cmd("SSCAN").arg(keys::SEASONAL_BOARDS).arg(cursor).arg("COUNT").arg(1000)).await?;
        for name in names {
            let board = BoardId::new(name.clone())
                .map_err(|_| Error::Corrupt(format!("{} holds {name:?}", keys::SEASONAL_BOARDS)))?;
            boards.push(board);
        }
        if next == 0 {
            boards.sort();
            boards.dedup();
            return Ok(boards);
        }
        cursor = next;
    }
}

impl Router {
    /// Opens season `season` of `board` if it is not open yet: its entry in
    /// the registry and its storage, with `board`'s recorded layout (for
    /// `range`, `board`'s current boundaries) and `rules`' order and ties.
    /// Returns the name the season is stored under.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub async fn open_season(&self, board: &BoardId, rules: &Rules, season: &Season) -> Result<BoardId> {
        let name = board.season(&season.id);
        let entry = serde_json::to_string(&SeasonEntry::of(season)).map_err(|e| Error::Corrupt(e.to_string()))?;
        let _: i64 =
            self.store().query(redis::cmd("HSETNX").arg(keys::seasons(board)).arg(&season.id).arg(entry)).await?;
        if manual_index(&season.id).is_some() {
            // A `manual` season's start is its board's record of resets (a restore brings it back
            // from the snapshot's entry; a writer found it there).
            let start =
                redis::cmd("ZADD").arg(keys::resets(board)).arg("NX").arg(season.start_ms).arg(&season.id).clone();
            let _: i64 = self.store().query(&start).await?;
        }
        if crate::layout::record::recorded(self.store(), &name).await?.is_some() {
            return Ok(name);
        }
        let layout = match crate::layout::record::recorded(self.store(), board).await? {
            Some(record) => record.layout,
            None => RecordedLayout::of(self.spec()),
        };
        if layout == RecordedLayout::Range {
            let boundaries = match meta::load(self.store(), &keys::range_meta(board)).await? {
                Some(loaded) => loaded.meta.active.boundaries,
                None => match self.spec() {
                    LayoutSpec::Range { boundaries } => boundaries.clone(),
                    _ => Vec::new(),
                },
            };
            // Metadata before the record: a writer that finds the record finds the shards too.
            meta::load_or_create(self.store(), &keys::range_meta(&name), &boundaries).await?;
        }
        crate::layout::record::set_rules(self.store(), &name, layout, rules.for_season()).await?;
        self.forget(&name);
        Ok(name)
    }

    /// `board`'s seasons, newest first.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for an unreadable entry.
    pub async fn seasons(&self, board: &BoardId) -> Result<Vec<SeasonEntry>> {
        let raw: HashMap<String, String> = self.store().query(redis::cmd("HGETALL").arg(keys::seasons(board))).await?;
        let mut entries = raw
            .into_iter()
            .map(|(id, json)| SeasonEntry::parse(&board.season(&id), id, &json))
            .collect::<Result<Vec<_>>>()?;
        entries.sort_by_key(|e| std::cmp::Reverse(e.start_ms));
        Ok(entries)
    }

    /// Closes every open season of `board` whose end plus `late_grace` has
    /// passed at `now_ms` and by `applied_before_ms` (a time before which every
    /// record is applied: the watermark), recording it closed at `now_ms`.
    /// Returns the seasons this call closed (another closer may have set some
    /// fences too; each season is reported by exactly one closer) and the
    /// registry as read, with this call's closes applied, for the rest of a
    /// closing pass (results, retention) to go on from without reading it again.
    /// Safe to run from any number of processes at once, and again after a failure.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails (what was done stays done; run it again).
    pub async fn close_due(
        &self,
        board: &BoardId,
        rules: &Rules,
        now_ms: i64,
        applied_before_ms: i64,
    ) -> Result<Closing> {
        let mut closing = Closing { closed: Vec::new(), entries: self.seasons(board).await? };
        for entry in closing.entries.iter_mut().filter(|e| !e.closed()) {
            let season = Season { id: entry.id.clone(), start_ms: entry.start_ms, end_ms: entry.end_ms };
            let due = past_grace(rules, &season, now_ms) && past_grace(rules, &season, applied_before_ms);
            if due && self.close_season(board, &entry.id, now_ms).await? {
                // What the `CLOSE` script wrote.
                (entry.closed_at_ms, entry.revision) = (Some(now_ms), 1);
                closing.closed.push(entry.id.clone());
            }
        }
        Ok(closing)
    }

    /// Deletes the closed seasons of `board` beyond `keep_seasons` among
    /// `entries` (its registry, newest first), oldest first, except those
    /// whose result is still due (it is never lost, each candidate's entry is
    /// read again before it goes); returns their ids. Safe to run from any
    /// number of processes at once, and on entries read earlier: a season seen
    /// open or its result due is only kept longer.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails (what was done stays done; run it again).
    pub async fn remove_beyond_kept(
        &self,
        board: &BoardId,
        rules: &Rules,
        entries: &[SeasonEntry],
    ) -> Result<Vec<String>> {
        let closed: Vec<&SeasonEntry> = entries.iter().filter(|e| e.closed()).collect();
        let mut removed = Vec::new();
        for old in closed.iter().skip(rules.keep_seasons as usize).filter(|e| !e.result_due()) {
            // `entries` may be a pass old: an amendment since may have made a revision due.
            let stored = board.season(&old.id);
            if self.stored_season(&stored).await?.is_none_or(|now| now.result_due()) {
                continue;
            }
            self.delete_storage(&stored).await?;
            let _: i64 = self.store().query(redis::cmd("HDEL").arg(keys::seasons(board)).arg(&old.id)).await?;
            removed.push(old.id.clone());
        }
        Ok(removed)
    }

    /// Sets the fence of every shard of season `id` of `board`, then records
    /// it closed at `now_ms`; `true` when this call recorded it (exactly one
    /// call does), `false` when it was closed already.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub async fn close_season(&self, board: &BoardId, id: &str, now_ms: i64) -> Result<bool> {
        let name = board.season(id);
        if let Some(record) = crate::layout::record::recorded(self.store(), &name).await? {
            let homes = record.keeps_homes();
            let mut fenced = self.layout_keys(&name, record.layout, true).await?;
            if homes {
                fenced.extend(keys::tally_homes(&name));
            }
            for key in fenced {
                let _: () = self.store().query(redis::cmd("SET").arg(keys::closed_marker(&key)).arg(now_ms)).await?;
            }
            if homes {
                // The homes take nothing more: what a writer that stopped mid-batch left unplaced goes in now.
                self.range_boards().place_unplaced(self.store(), &name, record.rules.ties).await?;
            }
        }
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(CLOSE).arg(1).arg(keys::seasons(board)).arg(id).arg(now_ms);
        let won: i64 = self.store().query(&cmd).await?;
        if won == 1 {
            tracing::info!(%board, season = id, "season closed");
        }
        Ok(won == 1)
    }

    /// Records that the closed season `id` of `board` is amended at `at_ms`:
    /// `player` is being erased or banned out of it (no result is produced
    /// until [`Router::amended_season`] says they are out; `None`: a restored
    /// season that was amended); `false` for an open season.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub async fn amend_season(&self, board: &BoardId, id: &str, at_ms: i64, player: Option<&str>) -> Result<bool> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(AMEND).arg(1).arg(keys::seasons(board)).arg(id).arg(at_ms);
        if let Some(player) = player {
            cmd.arg(player);
        }
        let amended: i64 = self.store().query(&cmd).await?;
        Ok(amended == 1)
    }

    /// Records that `player` is out of the closed season `id` of `board`
    /// (after [`Router::amend_season`]): the next revision of its result is
    /// due. `false` when they were not being taken out.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub async fn amended_season(&self, board: &BoardId, id: &str, player: &str) -> Result<bool> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(AMENDED).arg(1).arg(keys::seasons(board)).arg(id).arg(player);
        let settled: i64 = self.store().query(&cmd).await?;
        Ok(settled == 1)
    }

    /// Gives a restored closed season its result revision and what was
    /// produced of it, from the snapshot (never lowering them).
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub async fn revise_restored_season(&self, board: &BoardId, entry: &SeasonEntry) -> Result<()> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(REVISED).arg(1).arg(keys::seasons(board)).arg(&entry.id).arg(entry.revision).arg(entry.produced);
        let _: i64 = self.store().query(&cmd).await?;
        Ok(())
    }

    /// Deletes every season of `board` and its registry (part of deleting the board).
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub(crate) async fn delete_seasons(&self, board: &BoardId) -> Result<()> {
        for entry in self.seasons(board).await? {
            self.delete_storage(&board.season(&entry.id)).await?;
        }
        let registry =
            redis::cmd("UNLINK").arg(keys::seasons(board)).arg(keys::resets(board)).arg(keys::viewed(board)).clone();
        let _: i64 = self.store().query(&registry).await?;
        let _: i64 = self.store().query(redis::cmd("SREM").arg(keys::SEASONAL_BOARDS).arg(board.as_str())).await?;
        Ok(())
    }

    /// The entry of the season stored as `stored` (`<board>@<id>`); `None`
    /// for a board, or a season never opened.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for an unreadable entry.
    pub async fn stored_season(&self, stored: &BoardId) -> Result<Option<SeasonEntry>> {
        let Some((board, id)) = stored.season_parts() else { return Ok(None) };
        let board = BoardId::new(board).map_err(|e| Error::Corrupt(format!("season {stored}: {e}")))?;
        let raw: Option<String> = self.store().query(redis::cmd("HGET").arg(keys::seasons(&board)).arg(id)).await?;
        raw.map(|json| SeasonEntry::parse(stored, id.to_string(), &json)).transpose()
    }
}
