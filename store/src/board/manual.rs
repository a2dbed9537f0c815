//! `manual` seasons: a board whose seasons end when an admin resets it.
//!
//! No arithmetic decides a `manual` board's seasons: its resets do. They live
//! beside its season registry, under the same hash tag:
//! - `lb:{b}:resets` ([`keys::resets`]): each season's start, member `m<k>`,
//!   score the start. Seasons are contiguous: `m<k>` ends where `m<k+1>`
//!   starts, and the newest is open ([`OPEN_END_MS`]). The last
//!   [`MAX_RESETS_KEPT`] are kept.
//! - `lb:{b}:viewed` ([`keys::viewed`]): the latest event time a writer has
//!   assigned to a season by what it read of the resets.
//!
//! # Why an event lands in the season a later reader finds
//! A writer reads the starts covering its batch's event times and raises
//! `viewed` to the latest of them in the same script ([`Router::view_manual`]).
//! A reset ([`Router::reset_season`]) ends the open season at `now`, or just
//! after `viewed` or the season's start when those are later, in one script.
//! So every reset a writer did not see ends its season after every time that
//! writer assigned: what the writer decided is what the resets say, for live
//! workers, a worker paused between its read and its write, a redelivery,
//! and a replay that reads the resets long after. A producer's clock cannot
//! stretch a season without bound: ingest refuses event times more than a
//! minute ahead of its clock before they count here.
//!
//! The season registry ([`crate::board::seasons`]) holds each season's entry as
//! for every schedule; a reset writes the ended season's end and the next
//! one's entry in the same script, so closing, results and retention work
//! unchanged.

use leaderboard_contract::BoardId;
use leaderboard_semantics::season::{OPEN_END_MS, Season, manual_id, manual_index};
use serde::{Deserialize, Serialize};

use crate::layout::keys;
use crate::layout::router::Router;
use crate::{Error, Result, Store};

/// Most seasons of a `manual` board that may be not closed yet at once: a
/// reset beyond it is refused until the closer catches up (each waits out
/// its `late_grace` and the watermark), so resets cannot pile up seasons.
pub const MAX_UNCLOSED: usize = 16;

/// Season starts a `manual` board keeps (older ones are dropped: their
/// seasons passed their grace long before, see [`MAX_UNCLOSED`]).
pub const MAX_RESETS_KEPT: usize = 10_000;

/// `START registry resets viewed now` → the first season's start, when this
/// call opened it (at `now`, or after every time already assigned), or
/// nothing when the board has seasons already.
const START: &str = r"
if redis.call('ZCARD', KEYS[2]) > 0 then return false end
local at = math.max(tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[3]) or '-1e15') + 1)
redis.call('ZADD', KEYS[2], at, 'm1')
redis.call('HSET', KEYS[1], 'm1', cjson.encode({start_ms = at, end_ms = tonumber(ARGV[2])}))
return string.format('%d', at)
";

/// `RESET registry resets viewed now open_end max_unclosed kept ending` →
/// `{'ended', id, start, end, next}` after ending the open season at `end`
/// (`now`, or after every time assigned and after its start) and opening
/// `next`; `{'moved', id}` when the open season is `id`, not `ending` (when
/// given: a retried reset); `{'unclosed', n}` when `n` seasons are not closed
/// yet (at most `max_unclosed`); `{'first', at}` when the board had no season
/// and this opened its first.
const RESET: &str = r"
local viewed = tonumber(redis.call('GET', KEYS[3]) or '-1e15')
local at = math.max(tonumber(ARGV[1]), viewed + 1)
local newest = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #newest == 0 then
  redis.call('ZADD', KEYS[2], at, 'm1')
  redis.call('HSET', KEYS[1], 'm1', cjson.encode({start_ms = at, end_ms = tonumber(ARGV[2])}))
  return {'first', string.format('%d', at)}
end
local unclosed = 0
for _, raw in ipairs(redis.call('HVALS', KEYS[1])) do
  if not cjson.decode(raw)['closed_at_ms'] then unclosed = unclosed + 1 end
end
if unclosed >= tonumber(ARGV[3]) then return {'unclosed', string.format('%d', unclosed)} end
local id, start = newest[1], tonumber(newest[2])
if ARGV[5] ~= '' and ARGV[5] ~= id then return {'moved', id} end
at = math.max(at, start + 1)
local raw = redis.call('HGET', KEYS[1], id)
local entry = raw and cjson.decode(raw) or {start_ms = start}
entry['end_ms'] = at
redis.call('HSET', KEYS[1], id, cjson.encode(entry))
local next = 'm' .. string.format('%d', tonumber(string.sub(id, 2)) + 1)
redis.call('ZADD', KEYS[2], at, next)
redis.call('HSET', KEYS[1], next, cjson.encode({start_ms = at, end_ms = tonumber(ARGV[2])}))
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -1 - tonumber(ARGV[4]))
return {'ended', id, string.format('%d', start), string.format('%d', at), next}
";

/// The body of [`VIEW`] and [`ASSIGN`]: `KEYS[1]` the resets, `ARGV[1]` and `ARGV[2]` the times.
macro_rules! view_body {
    () => {
        r"
local out = {}
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)
out[1] = oldest[1] or ''
local before = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0, 2)
for i = #before - 1, 1, -2 do
  table.insert(out, before[i])
  table.insert(out, before[i + 1])
end
for _, part in ipairs({
  redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], ARGV[2], 'WITHSCORES'),
  redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf', 'WITHSCORES', 'LIMIT', 0, 1),
}) do
  for i = 1, #part do table.insert(out, part[i]) end
end
return out
"
    };
}

/// `VIEW resets from to` → `{oldest, id, start, ...}`: the oldest start kept,
/// then, in start order, the two seasons that started at or before `from`
/// (the one holding it and the one before), every start in `(from, to]`, and
/// the first after `to` (so each season's end is known). Reads only.
const VIEW: &str = view_body!();

/// `ASSIGN resets viewed from to`: [`VIEW`] after raising `viewed` to `to`.
const ASSIGN: &str = concat!(
    r"
if tonumber(ARGV[2]) > tonumber(redis.call('GET', KEYS[2]) or '-1e15') then
  redis.call('SET', KEYS[2], ARGV[2])
end
",
    view_body!()
);

/// `GIVE_BACK registry resets open_end [id start]...` → how many of the
/// starts the board lacked: adds them, then gives every season of the
/// registry not closed yet the end the starts say (a restored season that a
/// later reset ended). Registry entries are not created: writers open the
/// seasons events reach, as for every schedule.
const GIVE_BACK: &str = r"
local added = 0
for i = 2, #ARGV, 2 do
  added = added + redis.call('ZADD', KEYS[2], 'NX', ARGV[i + 1], ARGV[i])
end
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
  local entry = cjson.decode(redis.call('HGET', KEYS[1], id))
  if not entry['closed_at_ms'] then
    local start = string.format('%d', entry['start_ms'])
    local after = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. start, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    local stop = after[2] and tonumber(after[2]) or tonumber(ARGV[1])
    if entry['end_ms'] ~= stop then
      entry['end_ms'] = stop
      redis.call('HSET', KEYS[1], id, cjson.encode(entry))
    end
  end
end
return added
";

/// `SEASON resets id` → `{start, next start or nothing}` of season `id`; nothing when it is not kept.
const SEASON: &str = r"
local start = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not start then return false end
local after = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. start, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
return {start, after[2] or false}
";

/// One season's start, as the players log keeps a `manual` board's resets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeasonStart {
    /// `m<k>`.
    pub id: String,
    /// Its first millisecond.
    pub start_ms: i64,
}

/// The newest `newest` season starts of the `manual` board `board`, oldest first (none for another board).
///
/// # Errors
/// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for resets this crate did not write.
pub async fn starts(store: &Store, board: &BoardId, newest: usize) -> Result<Vec<SeasonStart>> {
    let from = -i64::try_from(newest.max(1)).unwrap_or(i64::MAX);
    let cmd = redis::cmd("ZRANGE").arg(keys::resets(board)).arg(from).arg(-1).arg("WITHSCORES").clone();
    let pairs: Vec<(String, String)> = store.query(&cmd).await?;
    pairs
        .into_iter()
        .map(|(id, start)| {
            if manual_index(&id).is_none() {
                return Err(Error::Corrupt(format!("the resets of board {board} hold {id:?}")));
            }
            Ok(SeasonStart { id, start_ms: millis(&start, board)? })
        })
        .collect()
}

/// Where a time falls among a `manual` board's seasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// Before the first season (or the board has none yet): in none.
    Before,
    /// In a season whose start is no longer kept: long closed.
    Gone,
    /// In this season.
    In(Season),
}

/// Some consecutive seasons of a `manual` board, as one read of its resets found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManualView {
    /// Consecutive seasons, oldest first (the last may be open: [`OPEN_END_MS`]).
    pub seasons: Vec<Season>,
    /// Whether the oldest season kept is the first (`m1`): then a time
    /// before every season is before the schedule began, not in a dropped season.
    pub from_first: bool,
}

impl ManualView {
    /// Where `t_ms` falls, among the times this view was read for.
    pub fn place(&self, t_ms: i64) -> Placed {
        if let Some(season) = self.seasons.iter().find(|s| (s.start_ms..s.end_ms).contains(&t_ms)) {
            return Placed::In(season.clone());
        }
        match self.seasons.first() {
            Some(first) if t_ms < first.start_ms && !self.from_first => Placed::Gone,
            _ => Placed::Before,
        }
    }

    /// The season that holds `t_ms` and the one before it.
    pub fn at_and_before(&self, t_ms: i64) -> (Option<&Season>, Option<&Season>) {
        match self.seasons.iter().position(|s| (s.start_ms..s.end_ms).contains(&t_ms)) {
            Some(i) => (self.seasons.get(i), i.checked_sub(1).and_then(|j| self.seasons.get(j))),
            None => (None, None),
        }
    }

    /// The view from the `VIEW` script's reply.
    fn parse(board: &BoardId, reply: Vec<String>) -> Result<Self> {
        let corrupt = || Error::Corrupt(format!("the resets of board {board}"));
        let mut items = reply.into_iter();
        let oldest = items.next().ok_or_else(corrupt)?;
        let mut starts: Vec<(String, i64)> = Vec::new();
        while let (Some(id), Some(start)) = (items.next(), items.next()) {
            let start: f64 = start.parse().map_err(|_| corrupt())?;
            if manual_index(&id).is_none() {
                return Err(corrupt());
            }
            #[allow(clippy::cast_possible_truncation, reason = "starts are whole milliseconds under 10^14")]
            starts.push((id, start as i64));
        }
        let ends = starts.iter().skip(1).map(|(_, start)| *start).chain(std::iter::once(OPEN_END_MS));
        let seasons =
            starts.iter().zip(ends).map(|((id, start), end)| Season { id: id.clone(), start_ms: *start, end_ms: end });
        Ok(Self { seasons: seasons.collect(), from_first: oldest == manual_id(1) })
    }
}

/// What a reset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetOutcome {
    /// The open season ended (at `ended.end_ms`) and `opened` began then.
    Ended {
        /// The season this reset ended.
        ended: Season,
        /// The season it opened.
        opened: Season,
    },
    /// The board had no season yet: this opened its first.
    First(Season),
}

fn millis(text: &str, board: &BoardId) -> Result<i64> {
    let value: f64 = text.parse().map_err(|_| Error::Corrupt(format!("the resets of board {board}: {text:?}")))?;
    #[allow(clippy::cast_possible_truncation, reason = "times are whole milliseconds under 10^14")]
    Ok(value as i64)
}

impl Router {
    /// Opens the first season of the `manual` board `board` at `now_ms` (or just
    /// after every time a writer assigned already) unless it has seasons;
    /// returns its start when this call opened it.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub async fn start_manual(&self, board: &BoardId, now_ms: i64) -> Result<Option<i64>> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(START).arg(3).arg(keys::seasons(board)).arg(keys::resets(board)).arg(keys::viewed(board));
        cmd.arg(now_ms).arg(OPEN_END_MS);
        let started: Option<String> = self.store().query(&cmd).await?;
        started.map(|at| millis(&at, board)).transpose()
    }

    /// Ends the open season of the `manual` board `board` at `now_ms` (or just
    /// after every time a writer assigned to it and after its start) and opens
    /// the next; opens the first when it has none (see the module docs).
    /// With `ending`, only if that is the open season: a retry of a reset that
    /// already ended it answers that reset's outcome again, and resets nothing.
    ///
    /// # Errors
    /// [`Error::UnknownBoard`] without a record; [`Error::NotManual`] for a
    /// board with another schedule or none; [`Error::TooManyUnclosed`] when
    /// [`MAX_UNCLOSED`] seasons are not closed yet; [`Error::NotCurrent`] when `ending` is neither the open season
    /// nor one a reset ended; [`Error::Redis`] when Redis fails.
    pub async fn reset_season(&self, board: &BoardId, now_ms: i64, ending: Option<&str>) -> Result<ResetOutcome> {
        let record = crate::layout::record::recorded(self.store(), board)
            .await?
            .ok_or_else(|| Error::UnknownBoard(board.to_string()))?;
        if !record.rules.reset.is_some_and(|r| r.is_manual()) {
            let schedule = record.rules.reset.map_or_else(|| "no reset schedule".to_string(), |r| r.to_string());
            return Err(Error::NotManual { board: board.to_string(), schedule });
        }
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RESET).arg(3).arg(keys::seasons(board)).arg(keys::resets(board)).arg(keys::viewed(board));
        cmd.arg(now_ms).arg(OPEN_END_MS).arg(MAX_UNCLOSED).arg(MAX_RESETS_KEPT).arg(ending.unwrap_or_default());
        let reply: Vec<String> = self.store().query(&cmd).await?;
        let corrupt = || Error::Corrupt(format!("reset of board {board}: {reply:?}"));
        match reply.as_slice() {
            [kind, at] if kind == "first" => {
                Ok(ResetOutcome::First(Season { id: manual_id(1), start_ms: millis(at, board)?, end_ms: OPEN_END_MS }))
            }
            [kind, open] if kind == "unclosed" => {
                Err(Error::TooManyUnclosed { board: board.to_string(), open: open.parse().map_err(|_| corrupt())? })
            }
            [kind, open] if kind == "moved" => {
                let ending = ending.unwrap_or_default();
                match (self.manual_season(board, ending).await?, manual_index(ending)) {
                    // A retry of the reset that ended `ending`: its outcome, as recorded.
                    (Some(ended), Some(k)) if ended.end_ms != OPEN_END_MS => {
                        let opened = self.manual_season(board, &manual_id(k + 1)).await?.ok_or_else(corrupt)?;
                        Ok(ResetOutcome::Ended { ended, opened })
                    }
                    _ => Err(Error::NotCurrent {
                        board: board.to_string(),
                        asked: ending.to_string(),
                        open: open.clone(),
                    }),
                }
            }
            [kind, id, start, at, next] if kind == "ended" => {
                let at = millis(at, board)?;
                let ended = Season { id: id.clone(), start_ms: millis(start, board)?, end_ms: at };
                tracing::info!(%board, ended = %ended.id, opened = %next, at, "manual season reset");
                Ok(ResetOutcome::Ended {
                    ended,
                    opened: Season { id: next.clone(), start_ms: at, end_ms: OPEN_END_MS },
                })
            }
            _ => Err(corrupt()),
        }
    }

    /// The seasons of the `manual` board `board` that hold the times
    /// `from_ms..=to_ms` (and the one before the first of them). With
    /// `assigning`, a writer is about to put events of those times in them:
    /// every later reset then ends its season after `to_ms` (see the module docs).
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for resets this crate did not write.
    pub async fn view_manual(&self, board: &BoardId, from_ms: i64, to_ms: i64, assigning: bool) -> Result<ManualView> {
        let mut cmd = redis::cmd("EVAL");
        if assigning {
            cmd.arg(ASSIGN).arg(2).arg(keys::resets(board)).arg(keys::viewed(board));
        } else {
            cmd.arg(VIEW).arg(1).arg(keys::resets(board));
        }
        cmd.arg(from_ms).arg(to_ms.max(from_ms));
        let reply: Vec<String> = self.store().query(&cmd).await?;
        ManualView::parse(board, reply)
    }

    /// Gives the `manual` board `board` the season starts it lacks of
    /// `starts` (what the players log kept: resets a restore's snapshot
    /// predates), and its seasons not closed yet the ends those say; returns
    /// how many starts it lacked.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub async fn give_back_resets(&self, board: &BoardId, starts: &[SeasonStart]) -> Result<usize> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(GIVE_BACK).arg(2).arg(keys::seasons(board)).arg(keys::resets(board)).arg(OPEN_END_MS);
        for start in starts {
            cmd.arg(&start.id).arg(start.start_ms);
        }
        let added: usize = self.store().query(&cmd).await?;
        Ok(added)
    }

    /// Season `id` of the `manual` board `board`; `None` when it names no season kept.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub async fn manual_season(&self, board: &BoardId, id: &str) -> Result<Option<Season>> {
        if manual_index(id).is_none() {
            return Ok(None);
        }
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SEASON).arg(1).arg(keys::resets(board)).arg(id);
        let reply: Option<(String, Option<String>)> = self.store().query(&cmd).await?;
        let Some((start, next)) = reply else { return Ok(None) };
        let end_ms = next.map(|n| millis(&n, board)).transpose()?.unwrap_or(OPEN_END_MS);
        Ok(Some(Season { id: id.to_string(), start_ms: millis(&start, board)?, end_ms }))
    }
}
