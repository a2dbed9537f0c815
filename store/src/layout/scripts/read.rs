//! The read scripts (pages, seeks, locates, lookups, counts before anchors),
//! their calls, and the decoding of their replies, metadata included.

use leaderboard_contract::{Meta, PlayerId};
use leaderboard_semantics::model::Row;
use redis::{Cmd, Value};

use crate::connection::reply::{as_array, as_bytes, as_score, as_u64};
use crate::layout::{keys, member};
use crate::{Error, Result};

/// How a read script answers: `reply(r)` returns `r` as it is, or (the
/// `*_SIZED` variants) with the key's size first, read in the same atomic step
/// (an around places rows of several shards by their sizes at the time).
macro_rules! as_is {
    () => {
        "local function reply(r) return r end\n"
    };
}
macro_rules! with_size {
    () => {
        "local function reply(r) table.insert(r, 1, redis.call('ZCARD', KEYS[1])) return r end\n"
    };
}

/// `rows_reply(head, rows)`: the reply of a script that returns rows: the
/// `head` values, the rows' metadata ([`prelude`]'s `metas`, from `KEYS[2]`),
/// then the flat `member, score` rows.
macro_rules! rows_reply {
    () => {
        r"
local function rows_reply(head, rows)
  head[#head + 1] = metas(KEYS[2], rows)
  for i = 1, #rows do head[#head + 1] = rows[i] end
  return reply(head)
end
"
    };
}

/// `PAGE key meta offset limit` → `[above_first, metas, m1, s1, m2, s2, ...]`, or `[-1]` when empty:
/// rows at positions `offset..offset+limit` of the shard (a negative `offset`
/// counts from its end), their metadata, and the number of members strictly
/// above the first row's score. A `limit` of 0 reads nothing (`ZREVRANGE 0 -1`
/// would read the whole set).
macro_rules! page_body {
    () => {
        r"
if tonumber(ARGV[2]) <= 0 then return reply({-1}) end
local rows = redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[1] + ARGV[2] - 1, 'WITHSCORES')
if #rows == 0 then return reply({-1}) end
return rows_reply({redis.call('ZCOUNT', KEYS[1], '(' .. rows[2], '+inf')}, rows)
"
    };
}
const PAGE: &str = concat!(prelude!(), as_is!(), rows_reply!(), page_body!());
const PAGE_SIZED: &str = concat!(prelude!(), with_size!(), rows_reply!(), page_body!());

/// `LOCATE key meta [index] m0` → `[card]` when absent, else
/// `[card, score, position, above, equal, member, meta]` (`meta` false when none).
const LOCATE: &str = concat!(
    prelude!(),
    r"
local card = redis.call('ZCARD', KEYS[1])
local m = find(KEYS[3], ARGV[1])
if not m then return {card} end
local s = redis.call('ZSCORE', KEYS[1], m)
if not s then return {card} end
local pos = redis.call('ZREVRANK', KEYS[1], m)
local above = redis.call('ZCOUNT', KEYS[1], '(' .. s, '+inf')
local equal = redis.call('ZCOUNT', KEYS[1], s, s)
return {card, s, pos, above, equal, m, redis.call('HGET', KEYS[2], ARGV[1])}
"
);

/// `LOOKUP key meta [index] m0 ...` → `[card, s1, before1, tied1, member1, meta1, ...]`:
/// for each player their score (false when absent), the members of the key
/// ahead of them (strictly better score; on boards with an index, every
/// member sorting before theirs), the members of the key with their score
/// (themselves included; 1 on boards with an index, whose ranks are
/// positions), their member and their metadata (false when none).
const LOOKUP: &str = concat!(
    prelude!(),
    r"
local out = {redis.call('ZCARD', KEYS[1])}
for i = 1, #ARGV do
  local m = find(KEYS[3], ARGV[i])
  local s = m and redis.call('ZSCORE', KEYS[1], m)
  if s then
    out[#out + 1] = s
    if KEYS[3] then
      out[#out + 1] = redis.call('ZREVRANK', KEYS[1], m)
      out[#out + 1] = 1
    else
      out[#out + 1] = redis.call('ZCOUNT', KEYS[1], '(' .. s, '+inf')
      out[#out + 1] = redis.call('ZCOUNT', KEYS[1], s, s)
    end
    out[#out + 1] = m
    out[#out + 1] = redis.call('HGET', KEYS[2], ARGV[i])
  else
    out[#out + 1] = false
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = false
    out[#out + 1] = false
  end
end
return out
"
);

/// `BEFORE key s1 m1 s2 m2 ...` → `[c1, c2, ...]`: members of the key ahead
/// of each anchor: with a score better than `s`, and, when `m` is not empty
/// (`ties: earliest`), with score `s` and a member sorting before `m` (binary
/// search over ranks, O(log(group) * log(n))).
const BEFORE: &str = concat!(
    prelude!(),
    r"
local out = {}
for i = 1, #ARGV, 2 do out[#out + 1] = before(KEYS[1], ARGV[i], ARGV[i + 1]) end
return out
"
);

/// `RANKS key s1 m1 s2 m2 ...` → `[card, before1, tied1, before2, tied2, ...]`: the key's
/// size and, for each anchor, the members ahead of it (as [`BEFORE`]) and, when `m` is empty
/// (`ties: shared`), the members with score `s` (0 otherwise), all at one moment of the shard.
const RANKS: &str = concat!(
    prelude!(),
    r"
local out = {redis.call('ZCARD', KEYS[1])}
for i = 1, #ARGV, 2 do
  out[#out + 1] = before(KEYS[1], ARGV[i], ARGV[i + 1])
  out[#out + 1] = ARGV[i + 1] == '' and redis.call('ZCOUNT', KEYS[1], ARGV[i], ARGV[i]) or 0
end
return out
"
);

/// `SEEK key meta [index] member radius [score]` → `[position, above_first, metas, m1, s1, ...]`,
/// or `[-1]` when no score is given and the member is absent.
///
/// With a score, `member` is the anchor's whole member; without, it is the
/// plain member of a player of this shard, found through the index if any.
/// `position` is the number of the shard's members that sort before the
/// anchor `(score, member)`, whether or not the member is in this shard; the
/// rows are positions `position-radius ..= position+radius`.
macro_rules! seek_body {
    () => {
        r"
local key, m, r = KEYS[1], ARGV[1], tonumber(ARGV[2])
local s = ARGV[3]
if s == nil or s == '' then
  m = find(KEYS[3], m)
  if not m then return reply({-1}) end
  s = redis.call('ZSCORE', key, m)
  if not s then return reply({-1}) end
end
local pos = redis.call('ZREVRANK', key, m)
if (not pos) or tonumber(redis.call('ZSCORE', key, m)) ~= tonumber(s) then
  pos = before(key, s, m)
end
local from = pos - r
if from < 0 then from = 0 end
local rows = redis.call('ZREVRANGE', key, from, pos + r, 'WITHSCORES')
local above = 0
if #rows > 0 then above = redis.call('ZCOUNT', key, '(' .. rows[2], '+inf') end
return rows_reply({pos, above}, rows)
"
    };
}
const SEEK: &str = concat!(prelude!(), as_is!(), rows_reply!(), seek_body!());
const SEEK_SIZED: &str = concat!(prelude!(), with_size!(), rows_reply!(), seek_body!());

/// A read-only script call: `EVAL_RO` (Redis 7.0+) runs on replicas, and
/// the cluster client routes it to them when reads may use replicas.
fn eval_ro(script: &str, key: &str) -> Cmd {
    let mut cmd = redis::cmd("EVAL_RO");
    cmd.arg(script).arg(1).arg(key);
    cmd
}

/// A read-only script call on one shard, its metadata (the second key) and,
/// when given, its player index (`ties: earliest` boards) as the third.
fn eval_ro_rows(script: &str, key: &str, index: Option<&str>) -> Cmd {
    let mut cmd = redis::cmd("EVAL_RO");
    cmd.arg(script).arg(2 + usize::from(index.is_some())).arg(key).arg(keys::entry_meta(key));
    if let Some(i) = index {
        cmd.arg(i);
    }
    cmd
}

/// The `PAGE` call for one shard.
pub(crate) fn page(key: &str, offset: u64, limit: u64) -> Cmd {
    let mut cmd = eval_ro_rows(PAGE, key, None);
    cmd.arg(offset).arg(limit);
    cmd
}

/// The sized `PAGE` call ([`parse_sized`]) for `limit` rows of one shard: its
/// highest (`Edge::Top`) or its lowest (`Edge::Bottom`, counted from its end,
/// so they are its last rows whatever its size is by then).
pub(crate) fn edge_sized(key: &str, edge: Edge, limit: u64) -> Cmd {
    let mut cmd = eval_ro_rows(PAGE_SIZED, key, None);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    cmd.arg(if edge == Edge::Bottom { -limit } else { 0 }).arg(limit);
    cmd
}

/// An end of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edge {
    /// Its highest rows.
    Top,
    /// Its lowest rows.
    Bottom,
}

/// The sized `SEEK` call ([`parse_sized`]) around a player of one shard.
pub(crate) fn seek_sized(key: &str, index: Option<&str>, player: &PlayerId, radius: u64) -> Cmd {
    let mut cmd = eval_ro_rows(SEEK_SIZED, key, index);
    cmd.arg(member::encode(player)).arg(radius);
    cmd
}

/// Splits a `*_SIZED` reply into the key's size and the plain reply.
pub(crate) fn parse_sized(v: Value) -> Result<(u64, Value)> {
    let mut items = as_array(v)?;
    if items.is_empty() {
        return Err(Error::Corrupt("a sized reply without its size".into()));
    }
    let card = as_u64(&items.remove(0))?;
    Ok((card, Value::Array(items)))
}

/// The `LOOKUP` call for some players on one shard (at least one player).
pub(crate) fn lookup<'a>(key: &str, index: Option<&str>, players: impl Iterator<Item = &'a PlayerId>) -> Cmd {
    let mut cmd = eval_ro_rows(LOOKUP, key, index);
    for p in players {
        cmd.arg(member::encode(p));
    }
    cmd
}

/// The `RANKS` call for one shard and the anchors `(score, member)` (an empty member on
/// `shared` boards).
pub(crate) fn ranks<'a>(key: &str, anchors: impl Iterator<Item = (u64, &'a [u8])>) -> Cmd {
    let mut cmd = eval_ro(RANKS, key);
    for (score, m) in anchors {
        cmd.arg(score).arg(m);
    }
    cmd
}

/// A `RANKS` reply: the shard's size, and per anchor the members ahead and tied.
pub(crate) fn parse_ranks(v: Value) -> Result<(u64, Vec<(u64, u64)>)> {
    let items = as_array(v)?;
    let card = items.first().map(as_u64).transpose()?.unwrap_or(0);
    let counts = items
        .get(1..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|pair| Ok((as_u64(&pair[0])?, as_u64(&pair[1])?)))
        .collect::<Result<Vec<_>>>()?;
    Ok((card, counts))
}

/// The `BEFORE` call: members of one shard ahead of each anchor `(score,
/// member)`; an empty member counts strictly better scores only.
pub(crate) fn before<'a>(key: &str, anchors: impl Iterator<Item = (u64, &'a [u8])>) -> Cmd {
    let mut cmd = eval_ro(BEFORE, key);
    for (score, m) in anchors {
        cmd.arg(score).arg(m);
    }
    cmd
}

/// Decodes a `BEFORE` reply.
pub(crate) fn parse_before(v: Value) -> Result<Vec<u64>> {
    as_array(v)?.iter().map(as_u64).collect()
}

/// One player found by `LOOKUP` in one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LookedUp {
    /// Their ranking key.
    pub score: u64,
    /// Members of the shard ahead of them.
    pub before: u64,
    /// Members of the shard with their score, themselves included (1 on `earliest` boards).
    pub tied: u64,
    /// Their member (with its time prefix on `earliest` boards).
    pub member: Vec<u8>,
    /// Their entry's metadata.
    pub meta: Option<Meta>,
}

/// A `LOOKUP` reply: the key's size, and per player asked where they stand
/// in the key, when it holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Looked {
    /// Members of the key.
    pub card: u64,
    /// Per player asked, in order.
    pub found: Vec<Option<LookedUp>>,
}

pub(crate) fn parse_lookup(v: Value) -> Result<Looked> {
    let items = as_array(v)?;
    let card = items.first().map(as_u64).transpose()?.unwrap_or(0);
    let found = items
        .get(1..)
        .unwrap_or_default()
        .chunks_exact(5)
        .map(|row| match &row[0] {
            Value::Nil => Ok(None),
            score => Ok(Some(LookedUp {
                score: as_score(score)?,
                before: as_u64(&row[1])?,
                tied: as_u64(&row[2])?,
                member: as_bytes(row[3].clone())?,
                meta: decode_meta(&row[4])?,
            })),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Looked { card, found })
}

/// The `LOCATE` call for one shard and its player index, if any.
pub(crate) fn locate(key: &str, index: Option<&str>, player: &PlayerId) -> Cmd {
    let mut cmd = eval_ro_rows(LOCATE, key, index);
    cmd.arg(member::encode(player));
    cmd
}

/// Where a `SEEK` is anchored.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Anchor<'a> {
    /// A player of this shard, found through its index if it has one.
    Player(&'a PlayerId),
    /// A `(score, member)` that need not be in this shard.
    At(u64, &'a [u8]),
}

/// The `SEEK` call for one shard.
pub(crate) fn seek(key: &str, index: Option<&str>, anchor: Anchor<'_>, radius: u64) -> Cmd {
    match anchor {
        Anchor::Player(player) => {
            let mut cmd = eval_ro_rows(SEEK, key, index);
            cmd.arg(member::encode(player)).arg(radius);
            cmd
        }
        Anchor::At(score, m) => {
            let mut cmd = eval_ro_rows(SEEK, key, None);
            cmd.arg(m).arg(radius).arg(score);
            cmd
        }
    }
}

/// A decoded `PAGE` or `SEEK` row list.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    /// Members strictly above the first row's score, in this shard.
    pub above_first: u64,
    /// Rows in board order.
    pub rows: Vec<Row>,
}

/// Decodes a stored metadata value (`Nil`: none).
pub(crate) fn decode_meta(v: &Value) -> Result<Option<Meta>> {
    match v {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Meta::try_from(b.as_slice())
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("stored metadata is not valid: {e}"))),
        other => Err(Error::Corrupt(format!("expected metadata, got {other:?}"))),
    }
}

/// Decodes flat `member, score` rows and their metadata (empty: none kept) into rows.
pub(crate) fn decode_rows(flat: &[Value], metas: &[Value]) -> Result<Vec<Row>> {
    flat.chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| {
            let mut row = decode_row(&pair[0], &pair[1])?;
            row.meta = metas.get(i).map(decode_meta).transpose()?.flatten();
            Ok(row)
        })
        .collect()
}

/// Decodes the `metas, m1, s1, ...` tail of a reply that returns rows.
fn parse_rows(above: u64, mut items: impl Iterator<Item = Value>) -> Result<Rows> {
    let metas = items.next().map(as_array).transpose()?.unwrap_or_default();
    let flat: Vec<Value> = items.collect();
    Ok(Rows { above_first: above, rows: decode_rows(&flat, &metas)? })
}

fn int(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(Error::Corrupt(format!("expected an integer, got {other:?}"))),
    }
}

/// Decodes a `PAGE` reply.
pub(crate) fn parse_page(v: Value) -> Result<Rows> {
    let mut items = as_array(v)?.into_iter();
    let above = items.next().map_or(Ok(-1), |v| int(&v))?;
    if above < 0 {
        return Ok(Rows::default());
    }
    parse_rows(above as u64, items)
}

/// Decodes a `SEEK` reply: `None` when the member was absent and no score given.
pub(crate) fn parse_seek(v: Value) -> Result<Option<(u64, Rows)>> {
    let mut items = as_array(v)?.into_iter();
    let pos = items.next().map_or(Ok(-1), |v| int(&v))?;
    if pos < 0 {
        return Ok(None);
    }
    let above = items.next().map_or(Ok(0), |v| int(&v))?;
    Ok(Some((pos as u64, parse_rows(above as u64, items)?)))
}

/// A decoded `LOCATE` reply.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    /// Members of the shard.
    pub card: u64,
    /// Where the player stands in the shard, when it holds them.
    pub found: Option<InShard>,
}

/// A player's place inside one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InShard {
    /// Their score there.
    pub score: u64,
    /// Members sorting before them (score descending, id ascending).
    pub position: u64,
    /// Members with a strictly better score.
    pub above: u64,
    /// Members with the same score, themselves included.
    pub equal: u64,
    /// Their member.
    pub member: Vec<u8>,
    /// Their entry's metadata.
    pub meta: Option<Meta>,
}

impl InShard {
    /// Members of the shard ahead of the player: with a better score, or
    /// on `earliest` boards sorting before them.
    pub fn ahead(&self, ties: leaderboard_semantics::rules::Ties) -> u64 {
        match ties {
            leaderboard_semantics::rules::Ties::Shared => self.above,
            leaderboard_semantics::rules::Ties::Earliest => self.position,
        }
    }
}

/// Decodes a `LOCATE` reply.
pub(crate) fn parse_locate(v: Value) -> Result<Located> {
    let items = as_array(v)?;
    let card = items.first().map(as_u64).transpose()?.unwrap_or(0);
    let found = match items.as_slice() {
        [_, s, pos, above, equal, m, meta] => Some(InShard {
            score: as_score(s)?,
            position: as_u64(pos)?,
            above: as_u64(above)?,
            equal: as_u64(equal)?,
            member: as_bytes(m.clone())?,
            meta: decode_meta(meta)?,
        }),
        [_] => None,
        other => return Err(Error::Corrupt(format!("unexpected LOCATE reply {other:?}"))),
    };
    Ok(Located { card, found })
}

/// Decodes a shard's `member, score` reply pair.
fn decode_row(member: &redis::Value, score: &redis::Value) -> Result<Row> {
    let bytes = as_bytes(member.clone())?;
    let decoded = member::decode_any(&bytes).ok_or_else(|| {
        Error::Corrupt(format!("member {:?} was not written by the router", String::from_utf8_lossy(&bytes)))
    })?;
    let score = as_score(score)?;
    Ok(Row { player: decoded.player, score, time_ms: decoded.time_ms.unwrap_or(0), meta: None })
}
