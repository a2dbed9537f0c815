//! Server-side scripts, one sorted set each, so they are valid on a Redis Cluster.
//!
//! Each script reads one key atomically and returns everything a read needs
//! from that shard in one round trip. They are sent with `EVAL` (`EVAL_RO`
//! for the reads, so replicas serve them; Redis 7.0 or later) (Redis caches
//! the compiled script by digest), so a Redis restart that empties the script
//! cache costs nothing and needs no `NOSCRIPT` handling.
//!
//! Lua compares strings with `strcoll`, which depends on the server's locale,
//! so member comparisons use an explicit byte-wise `greater`.

use leaderboard_contract::PlayerId;
use redis::{Cmd, Value};

use crate::member;
use crate::store::{as_array, as_bytes, as_score, as_u64};
use crate::{Error, Result};

/// `PAGE key offset limit` → `[above_first, m1, s1, m2, s2, ...]`, or `[-1]` when empty:
/// rows at positions `offset..offset+limit` of the shard and the number of
/// members strictly above the first row's score. A `limit` of 0 reads nothing
/// (`ZREVRANGE 0 -1` would read the whole set).
const PAGE: &str = r"
if tonumber(ARGV[2]) <= 0 then return {-1} end
local rows = redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[1] + ARGV[2] - 1, 'WITHSCORES')
if #rows == 0 then return {-1} end
local above = redis.call('ZCOUNT', KEYS[1], '(' .. rows[2], '+inf')
table.insert(rows, 1, above)
return rows
";

/// `LOCATE key member` → `[card]` when absent, else `[card, score, position, above, equal]`.
const LOCATE: &str = r"
local card = redis.call('ZCARD', KEYS[1])
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then return {card} end
local pos = redis.call('ZREVRANK', KEYS[1], ARGV[1])
local above = redis.call('ZCOUNT', KEYS[1], '(' .. s, '+inf')
local equal = redis.call('ZCOUNT', KEYS[1], s, s)
return {card, s, pos, above, equal}
";

/// `LOOKUP key m1 m2 ...` → `[card, s1, above1, s2, above2, ...]`: for each
/// member its score (nil when absent) and the members of the key strictly
/// above that score (0 when absent).
const LOOKUP: &str = r"
local out = {redis.call('ZCARD', KEYS[1])}
local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV))
for i = 1, #ARGV do
  local s = scores[i]
  if s then
    out[#out + 1] = s
    out[#out + 1] = redis.call('ZCOUNT', KEYS[1], '(' .. s, '+inf')
  else
    out[#out + 1] = false
    out[#out + 1] = 0
  end
end
return out
";

/// `COUNT_ABOVE key s1 s2 ...` → `[c1, c2, ...]`: members strictly above each score.
const COUNT_ABOVE: &str = r"
local out = {}
for i = 1, #ARGV do out[i] = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[i], '+inf') end
return out
";

/// `SEEK key member radius [score]` → `[position, above_first, m1, s1, ...]`, or `[-1]`
/// when no score is given and the member is absent.
///
/// `position` is the number of the shard's members that sort before the
/// anchor `(score, member)`, whether or not the member is in this shard; the
/// rows are positions `position-radius ..= position+radius`. For an absent
/// member the position inside its tie group is found by binary search over
/// ranks, O(log(group) * log(n)).
const SEEK: &str = r"
local function greater(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local key, m, r = KEYS[1], ARGV[1], tonumber(ARGV[2])
local s = ARGV[3]
if s == nil or s == '' then
  s = redis.call('ZSCORE', key, m)
  if not s then return {-1} end
end
local pos = redis.call('ZREVRANK', key, m)
if (not pos) or tonumber(redis.call('ZSCORE', key, m)) ~= tonumber(s) then
  local first = redis.call('ZCOUNT', key, '(' .. s, '+inf')
  local lo, hi = 0, redis.call('ZCOUNT', key, s, s)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local e = redis.call('ZREVRANGE', key, first + mid, first + mid)[1]
    if greater(e, m) then lo = mid + 1 else hi = mid end
  end
  pos = first + lo
end
local from = pos - r
if from < 0 then from = 0 end
local rows = redis.call('ZREVRANGE', key, from, pos + r, 'WITHSCORES')
local above = 0
if #rows > 0 then above = redis.call('ZCOUNT', key, '(' .. rows[2], '+inf') end
table.insert(rows, 1, above)
table.insert(rows, 1, pos)
return rows
";

/// `ADD key pending s1 m1 s2 m2 ...` → `[i, j, ...]`: best-score `ZADD GT` of
/// every pair, returning the 1-based indexes of pairs whose player must be
/// cleaned out of other shards: players that were not in the key before
/// (new, or arriving from another shard), and players still listed in the
/// `pending` set because an earlier attempt of the same move failed or
/// crashed before its cleanup finished. Those players are (re-)added to
/// `pending` atomically with the write; the writer removes them once the
/// cleanup is done, so a move interrupted at any point is completed by the
/// redelivered batch.
const ADD: &str = r"
local members = {}
for i = 2, #ARGV, 2 do members[#members + 1] = ARGV[i] end
local before = redis.call('ZMSCORE', KEYS[1], unpack(members))
local pending = {}
if redis.call('SCARD', KEYS[2]) > 0 then pending = redis.call('SMISMEMBER', KEYS[2], unpack(members)) end
redis.call('ZADD', KEYS[1], 'GT', unpack(ARGV))
local arrived, moving = {}, {}
for i = 1, #before do
  if (not before[i]) or pending[i] == 1 then
    arrived[#arrived + 1] = i
    moving[#moving + 1] = members[i]
  end
end
if #moving > 0 then redis.call('SADD', KEYS[2], unpack(moving)) end
return arrived
";

/// A read-only script call: `EVAL_RO` (Redis 7.0+) runs on replicas, and
/// the cluster client routes it to them when reads may use replicas.
fn eval_ro(script: &str, key: &str) -> Cmd {
    let mut cmd = redis::cmd("EVAL_RO");
    cmd.arg(script).arg(1).arg(key);
    cmd
}

/// The `PAGE` call for one shard.
pub(crate) fn page(key: &str, offset: u64, limit: u64) -> Cmd {
    let mut cmd = eval_ro(PAGE, key);
    cmd.arg(offset).arg(limit);
    cmd
}

/// The `LOOKUP` call for some players on one key (at least one player).
pub(crate) fn lookup<'a>(key: &str, players: impl Iterator<Item = &'a PlayerId>) -> Cmd {
    let mut cmd = eval_ro(LOOKUP, key);
    for p in players {
        cmd.arg(member::encode(p));
    }
    cmd
}

/// The `COUNT_ABOVE` call for some scores on one key.
pub(crate) fn count_above(key: &str, scores: impl Iterator<Item = u64>) -> Cmd {
    let mut cmd = eval_ro(COUNT_ABOVE, key);
    for s in scores {
        cmd.arg(s);
    }
    cmd
}

/// A `LOOKUP` reply: the key's size, and per member asked its score and the
/// members strictly above it, when the key holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Looked {
    /// Members of the key.
    pub card: u64,
    /// Per member asked, in order: `(score, above)` when present.
    pub found: Vec<Option<(u64, u64)>>,
}

pub(crate) fn parse_lookup(v: Value) -> Result<Looked> {
    let items = as_array(v)?;
    let card = items.first().map(as_u64).transpose()?.unwrap_or(0);
    let found = items
        .get(1..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|pair| match &pair[0] {
            Value::Nil => Ok(None),
            score => Ok(Some((as_score(score)?, as_u64(&pair[1])?))),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Looked { card, found })
}

/// The `LOCATE` call for one shard.
pub(crate) fn locate(key: &str, player: &PlayerId) -> Cmd {
    let mut cmd = eval_ro(LOCATE, key);
    cmd.arg(member::encode(player));
    cmd
}

/// The `SEEK` call for one shard; `score` is the anchor's score when known.
pub(crate) fn seek(key: &str, player: &PlayerId, radius: u64, score: Option<u64>) -> Cmd {
    let mut cmd = eval_ro(SEEK, key);
    cmd.arg(member::encode(player)).arg(radius);
    if let Some(s) = score {
        cmd.arg(s);
    }
    cmd
}

/// Most score/member pairs per `ADD` call: Lua's `unpack` is limited to a few
/// thousand values.
pub(crate) const ADD_CHUNK: usize = 1000;

/// The `ADD` call for one shard with at most [`ADD_CHUNK`] pairs; `pending`
/// is the shard's pending-moves set (same hash tag, so same slot).
pub(crate) fn add<'a>(key: &str, pending: &str, pairs: impl Iterator<Item = (u64, &'a PlayerId)>) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(ADD).arg(2).arg(key).arg(pending);
    for (score, player) in pairs {
        cmd.arg(score).arg(member::encode(player));
    }
    cmd
}

/// Decodes an `ADD` reply into 0-based pair indexes.
pub(crate) fn parse_add(v: Value) -> Result<Vec<usize>> {
    as_array(v)?.iter().map(|i| as_u64(i).map(|i| i as usize - 1)).collect()
}

/// A decoded `PAGE` or `SEEK` row list.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    /// Members strictly above the first row's score, in this shard.
    pub above_first: u64,
    /// Rows in contract order.
    pub rows: Vec<(PlayerId, u64)>,
}

fn parse_rows(above: u64, flat: impl Iterator<Item = Value>) -> Result<Rows> {
    let flat: Vec<Value> = flat.collect();
    let mut rows = Vec::with_capacity(flat.len() / 2);
    for pair in flat.chunks_exact(2) {
        let bytes = as_bytes(pair[0].clone())?;
        let player = member::decode(&bytes).ok_or_else(|| {
            Error::Corrupt(format!("member {:?} was not written by the router", String::from_utf8_lossy(&bytes)))
        })?;
        rows.push((player, as_score(&pair[1])?));
    }
    Ok(Rows { above_first: above, rows })
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
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    /// Members of the shard.
    pub card: u64,
    /// Where the player stands in the shard, when it holds them.
    pub found: Option<InShard>,
}

/// A player's place inside one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InShard {
    /// Their score there.
    pub score: u64,
    /// Members sorting before them (score descending, id ascending).
    pub position: u64,
    /// Members with a strictly better score.
    pub above: u64,
    /// Members with the same score, themselves included.
    pub equal: u64,
}

/// Decodes a `LOCATE` reply.
pub(crate) fn parse_locate(v: Value) -> Result<Located> {
    let items = as_array(v)?;
    let card = items.first().map(as_u64).transpose()?.unwrap_or(0);
    let found = match items.as_slice() {
        [_, s, pos, above, equal] => {
            Some(InShard { score: as_score(s)?, position: as_u64(pos)?, above: as_u64(above)?, equal: as_u64(equal)? })
        }
        [_] => None,
        other => return Err(Error::Corrupt(format!("unexpected LOCATE reply {other:?}"))),
    };
    Ok(Located { card, found })
}
