//! The write scripts: best-score writes of every board form (`BEST`,
//! `ADD`, `TIMED_ADD`), with their metadata and season fence, and removals.

use leaderboard_contract::{Meta, PlayerId};
use redis::{Cmd, Value};

use crate::Result;
use crate::connection::reply::{as_array, as_u64};
use crate::layout::{keys, member};

/// The reply of a fenced write script whose season was closed.
const CLOSED: i64 = -1;

/// Whether a write script's reply says its season's fence was up (nothing written).
pub(crate) fn refused_by_fence(v: &Value) -> bool {
    matches!(v, Value::Int(CLOSED))
}

/// The Lua helpers every write script shares, so a chunk's metadata costs
/// at most one `HSET` and one `HDEL` whatever its size:
/// - `note(set, del, m0, meta)` lists the metadata of a player whose score
///   changes: the event's `meta` into `set` (field, value), or, when it has
///   none (`''`), the field into `del`;
/// - `keep(mk, kept, set, del)` writes them (`del` only when the shard keeps
///   any: `kept`);
/// - `split(step)` reads `flag s1 m1 [meta1] ...` into the members and the
///   `ZADD` pairs;
/// - `improved(before, members, step)` lists, as `note` does, the players whose
///   score in `ARGV` beats `before` (their `ZMSCORE`; absent ones included).
macro_rules! keep {
    () => {
        r"
local function note(set, del, m0, meta)
  if meta ~= '' then
    set[#set + 1] = m0
    set[#set + 1] = meta
  else
    del[#del + 1] = m0
  end
end
local function keep(mk, kept, set, del)
  if #set > 0 then redis.call('HSET', mk, unpack(set)) end
  if kept and #del > 0 then redis.call('HDEL', mk, unpack(del)) end
end
local function split(step)
  local members, pairs = {}, {}
  for i = 2, #ARGV, step do
    members[#members + 1] = ARGV[i + 1]
    pairs[#pairs + 1] = ARGV[i]
    pairs[#pairs + 1] = ARGV[i + 1]
  end
  return members, pairs
end
local function improved(before, members, step)
  local set, del = {}, {}
  for j = 1, #members do
    local at = 2 + (j - 1) * step
    if (not before[j]) or tonumber(ARGV[at]) > tonumber(before[j]) then
      note(set, del, members[j], step == 3 and ARGV[at + 2] or '')
    end
  end
  return set, del
end
"
    };
}

/// `BEST key meta [marker] flag s1 m1 [meta1] ...`: best-score writes of a
/// shard of a `shared` board. `flag` is `m` when each pair carries its
/// metadata (triples), `-` when none does. Without metadata to write or
/// kept, it is one `ZADD GT`; otherwise one `ZMSCORE` finds the players
/// whose score improves, whose metadata is then set (or cleared) with one
/// `HSET` (and one `HDEL`) beside the same `ZADD GT`.
const BEST: &str = concat!(
    fence!(),
    keep!(),
    r"
local z, mk = KEYS[1], KEYS[2]
local step = ARGV[1] == 'm' and 3 or 2
local kept = redis.call('EXISTS', mk) == 1
if step == 2 and not kept then
  redis.call('ZADD', z, 'GT', unpack(ARGV, 2))
  return 0
end
local members, pairs = split(step)
local set, del = improved(redis.call('ZMSCORE', z, unpack(members)), members, step)
redis.call('ZADD', z, 'GT', unpack(pairs))
keep(mk, kept, set, del)
return 0
"
);

/// `ADD key pending meta [marker] flag s1 m1 [meta1] ...` → `[i, j, ...]`:
/// best-score `ZADD GT` of every player (`flag` as in [`BEST`], and their
/// metadata set or cleared when their score changes), returning the 1-based
/// indexes of players who must be cleaned out of other shards: players that
/// were not in the key before (new, or arriving from another shard), and
/// players still listed in the `pending` set because an earlier attempt of
/// the same move failed or crashed before its cleanup finished. Those
/// players are (re-)added to `pending` atomically with the write; the writer
/// removes them once the cleanup is done, so a move interrupted at any point
/// is completed by the redelivered batch.
const ADD: &str = concat!(
    fence!(),
    keep!(),
    r"
local z, pend, mk = KEYS[1], KEYS[2], KEYS[3]
local step = ARGV[1] == 'm' and 3 or 2
local members, pairs = split(step)
local before = redis.call('ZMSCORE', z, unpack(members))
local pending = {}
if redis.call('SCARD', pend) > 0 then pending = redis.call('SMISMEMBER', pend, unpack(members)) end
local kept = redis.call('EXISTS', mk) == 1
if step == 3 or kept then
  local set, del = improved(before, members, step)
  keep(mk, kept, set, del)
end
redis.call('ZADD', z, 'GT', unpack(pairs))
local arrived, moving = {}, {}
for i = 1, #before do
  if (not before[i]) or pending[i] == 1 then
    arrived[#arrived + 1] = i
    moving[#moving + 1] = members[i]
  end
end
if #moving > 0 then redis.call('SADD', pend, unpack(moving)) end
return arrived
"
);

/// `TIMED_ADD key index meta [pending] [marker] flag s1 prefix1 m1 [meta1] ...`
/// → `[i, j, ...]`: the `ties: earliest` form of a best-score write (`flag`
/// as in [`BEST`]). A player's member is replaced (member, index entry and
/// metadata together) when the new score is better, or equal with an
/// earlier time (a greater prefix). With a pending-moves set (`range`),
/// returns the arrivals as `ADD` does; else nothing.
const TIMED_ADD: &str = concat!(
    fence!(),
    prelude!(),
    keep!(),
    r"
local z, idx, mk, pend = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local step = ARGV[1] == 'm' and 4 or 3
local kept = redis.call('EXISTS', mk) == 1
local pending = pend and redis.call('SCARD', pend) > 0
local arrived, moving, n, set, del = {}, {}, 0, {}, {}
for i = 2, #ARGV, step do
  n = n + 1
  local s, pre, m0 = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  local old = redis.call('HGET', idx, m0)
  local olds = old and redis.call('ZSCORE', z, old .. m0)
  if olds then olds = tonumber(olds) end
  if (not olds) or s > olds or (s == olds and greater(pre, old)) then
    if olds then redis.call('ZREM', z, old .. m0) end
    redis.call('ZADD', z, ARGV[i], pre .. m0)
    redis.call('HSET', idx, m0, pre)
    note(set, del, m0, step == 4 and ARGV[i + 3] or '')
  end
  if pend and ((not olds) or (pending and redis.call('SISMEMBER', pend, m0) == 1)) then
    arrived[#arrived + 1] = n
    moving[#moving + 1] = m0
  end
end
keep(mk, kept, set, del)
if #moving > 0 then redis.call('SADD', pend, unpack(moving)) end
return arrived
"
);

/// `TIMED_REMOVE key index meta m0 ...`: removes players (member, index
/// entry and metadata) from a shard; returns how many members it removed.
const TIMED_REMOVE: &str = r"
local removed = 0
for i = 1, #ARGV do
  local pre = redis.call('HGET', KEYS[2], ARGV[i])
  if pre then
    removed = removed + redis.call('ZREM', KEYS[1], pre .. ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
redis.call('HDEL', KEYS[3], unpack(ARGV))
return removed
";

/// One player's write as the write scripts take it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Write<'a> {
    /// The ranking key.
    pub score: u64,
    /// When the player reached it (`earliest` boards only).
    pub time_ms: u64,
    /// The player.
    pub player: &'a PlayerId,
    /// The event's metadata.
    pub meta: Option<&'a Meta>,
}

impl<'a> From<&'a leaderboard_semantics::ScoreUpdate> for Write<'a> {
    fn from(u: &'a leaderboard_semantics::ScoreUpdate) -> Self {
        Self { score: u.score, time_ms: u.time_ms, player: &u.player, meta: u.meta.as_ref() }
    }
}

/// A write script call: `EVAL script` with `keys` (the fence last, when
/// given), the metadata flag, then per write its `fields` and, when any
/// write of the call carries metadata, its metadata (`''` for none).
fn eval_writes(
    script: &str,
    keys: &[&str],
    fence: Option<&str>,
    writes: &[Write<'_>],
    fields: impl Fn(&mut Cmd, &Write<'_>),
) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len() + usize::from(fence.is_some()));
    for k in keys {
        cmd.arg(*k);
    }
    if let Some(f) = fence {
        cmd.arg(f);
    }
    let with_meta = writes.iter().any(|w| w.meta.is_some());
    cmd.arg(if with_meta { "m" } else { "-" });
    for w in writes {
        fields(&mut cmd, w);
        if with_meta {
            cmd.arg(w.meta.map_or(&b""[..], Meta::as_bytes));
        }
    }
    cmd
}

/// The `BEST` call for one shard of a `shared` board with at most [`ADD_CHUNK`] writes.
pub(crate) fn best(key: &str, fence: Option<&str>, writes: &[Write<'_>]) -> Cmd {
    let meta = keys::entry_meta(key);
    eval_writes(BEST, &[key, &meta], fence, writes, |cmd, w| {
        cmd.arg(w.score).arg(member::encode(w.player));
    })
}

/// The `ADD` call for one `range` shard with at most [`ADD_CHUNK`] writes;
/// `pending` is the shard's pending-moves set (same hash tag, so same slot).
pub(crate) fn add(key: &str, pending: &str, fence: Option<&str>, writes: &[Write<'_>]) -> Cmd {
    let meta = keys::entry_meta(key);
    eval_writes(ADD, &[key, pending, &meta], fence, writes, |cmd, w| {
        cmd.arg(w.score).arg(member::encode(w.player));
    })
}

/// The `TIMED_ADD` call for one shard with at most [`ADD_CHUNK`] writes.
pub(crate) fn timed_add(
    key: &str,
    index: &str,
    pending: Option<&str>,
    fence: Option<&str>,
    writes: &[Write<'_>],
) -> Cmd {
    let meta = keys::entry_meta(key);
    let mut shard_keys = vec![key, index, meta.as_str()];
    shard_keys.extend(pending);
    eval_writes(TIMED_ADD, &shard_keys, fence, writes, |cmd, w| {
        cmd.arg(w.score).arg(&member::time_prefix(w.time_ms)[..]).arg(member::encode(w.player));
    })
}

/// The `TIMED_REMOVE` call for some players of one shard.
pub(crate) fn timed_remove<'a>(key: &str, index: &str, players: impl Iterator<Item = &'a PlayerId>) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(TIMED_REMOVE).arg(3).arg(key).arg(index).arg(keys::entry_meta(key));
    for p in players {
        cmd.arg(member::encode(p));
    }
    cmd
}

/// Most writes per write-script call: Lua's `unpack` is limited to a few
/// thousand values.
pub(crate) const ADD_CHUNK: usize = 1000;

/// Decodes an `ADD` reply into 0-based pair indexes.
pub(crate) fn parse_add(v: Value) -> Result<Vec<usize>> {
    as_array(v)?.iter().map(|i| as_u64(i).map(|i| i as usize - 1)).collect()
}
