//! The scripts that keep a `range` board of `last` or `sum` placed
//! ([`crate::layout::range`]): its homes hold each player's value and
//! version; the shards are an index of them, written by version, so placing
//! the same state twice, or an older state after a newer one, changes nothing.
//!
//! Beside each shard, `:v` holds the version of each copy it has; a copy and
//! its version are written and removed together. Placing follows the
//! `range` layout's add-then-remove order, with versions where best-score
//! boards compare scores:
//! 1. [`place`] in the shard of the player's value: written when it is newer
//!    than the copy there (or there is none); reports *arrivals* (not in that
//!    shard before, or still pending from a placement that did not finish).
//! 2. [`clean`] in every other shard, for arrivals: removes older copies and
//!    reports a newer one.
//! 3. [`take_back`] in the shard of the value: removes the copy just placed
//!    when a newer one exists elsewhere, and ends the pending move.

use leaderboard_contract::PlayerId;
use redis::{Cmd, Value};

use crate::connection::reply::{as_array, as_bytes, as_score, as_u64};
use crate::layout::{keys, member};
use crate::{Error, Result};

/// `STATE z meta versions [index] m0...` → per player `{key, version,
/// prefix, meta}`, or nil when they have no value: read right after `TALLY`
/// in the same pipeline, so it is at least as new as what that wrote.
const STATE: &str = r"
local z, mk, vk, idx = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local vs = redis.call('HMGET', vk, unpack(ARGV))
local ms = redis.call('HMGET', mk, unpack(ARGV))
local pres = {}
if idx then pres = redis.call('HMGET', idx, unpack(ARGV)) end
local scores = {}
if not idx then scores = redis.call('ZMSCORE', z, unpack(ARGV)) end
local out = {}
for j, m0 in ipairs(ARGV) do
  local s = scores[j]
  if idx and pres[j] then s = redis.call('ZSCORE', z, pres[j] .. m0) end
  if s then
    out[j] = {s, vs[j] or '0', pres[j] or '', ms[j] or ''}
  else
    out[j] = false
  end
end
return out
";

/// The placement step 1 script. `PLACE z pending meta versions [index]
/// (m0 key version prefix meta)*` → 1-based indexes of the arrivals. The
/// players of one call are distinct (one home's, each once): every read is
/// one variadic command for all of them, and so is every write.
const PLACE: &str = r"
local z, pend, mk, vk, idx = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local m, n = {}, 0
for i = 1, #ARGV, 5 do
  n = n + 1
  m[n] = ARGV[i]
end
local have = redis.call('HMGET', vk, unpack(m))
local pres, present = {}, {}
if idx then
  pres = redis.call('HMGET', idx, unpack(m))
  local asked, at = {}, {}
  for j = 1, n do
    if pres[j] then
      asked[#asked + 1] = pres[j] .. m[j]
      at[#asked] = j
    end
  end
  if #asked > 0 then
    local s = redis.call('ZMSCORE', z, unpack(asked))
    for k = 1, #asked do present[at[k]] = s[k] end
  end
else
  present = redis.call('ZMSCORE', z, unpack(m))
end
local pending = {}
if redis.call('SCARD', pend) > 0 then pending = redis.call('SMISMEMBER', pend, unpack(m)) end
local zadd, zrem, iset, vset, mset, mdel = {}, {}, {}, {}, {}, {}
local arrived, moving = {}, {}
for j = 1, n do
  local i = (j - 1) * 5 + 1
  local m0, v, h = m[j], tonumber(ARGV[i + 2]), have[j]
  if (not present[j]) or (not h) or tonumber(h) < v then
    zadd[#zadd + 1] = ARGV[i + 1]
    if idx then
      if present[j] then zrem[#zrem + 1] = pres[j] .. m0 end
      zadd[#zadd + 1] = ARGV[i + 3] .. m0
      iset[#iset + 1] = m0
      iset[#iset + 1] = ARGV[i + 3]
    else
      zadd[#zadd + 1] = m0
    end
    vset[#vset + 1] = m0
    vset[#vset + 1] = ARGV[i + 2]
    if ARGV[i + 4] ~= '' then
      mset[#mset + 1] = m0
      mset[#mset + 1] = ARGV[i + 4]
    else
      mdel[#mdel + 1] = m0
    end
    if (not present[j]) or pending[j] == 1 then
      arrived[#arrived + 1] = j
      moving[#moving + 1] = m0
    end
  elseif tonumber(h) == v and pending[j] == 1 then
    arrived[#arrived + 1] = j
  end
end
if #zrem > 0 then redis.call('ZREM', z, unpack(zrem)) end
if #zadd > 0 then redis.call('ZADD', z, unpack(zadd)) end
if #iset > 0 then redis.call('HSET', idx, unpack(iset)) end
if #vset > 0 then redis.call('HSET', vk, unpack(vset)) end
if #mset > 0 then redis.call('HSET', mk, unpack(mset)) end
if #mdel > 0 then redis.call('HDEL', mk, unpack(mdel)) end
if #moving > 0 then redis.call('SADD', pend, unpack(moving)) end
return arrived
";

/// Removes plain member `m0`'s copy from a shard: member, index entry,
/// metadata, version and pending move together.
macro_rules! drop_copy {
    () => {
        r"
local function drop(z, pend, mk, vk, idx, m0)
  if idx then
    local pre = redis.call('HGET', idx, m0)
    if pre then redis.call('ZREM', z, pre .. m0) end
    redis.call('HDEL', idx, m0)
  else
    redis.call('ZREM', z, m0)
  end
  redis.call('HDEL', mk, m0)
  redis.call('HDEL', vk, m0)
  redis.call('SREM', pend, m0)
end
"
    };
}

/// The placement step 2 script. `CLEAN z pending meta versions [index] (m0
/// version)*` → 1-based indexes of the players with a newer copy here; older
/// copies are removed.
const CLEAN: &str = concat!(
    drop_copy!(),
    r"
local z, pend, mk, vk, idx = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local m = {}
for i = 1, #ARGV, 2 do m[#m + 1] = ARGV[i] end
local versions = redis.call('HMGET', vk, unpack(m))
local newer, n = {}, 0
for i = 1, #ARGV, 2 do
  n = n + 1
  local have = versions[n]
  if have then
    local h, v = tonumber(have), tonumber(ARGV[i + 1])
    if h < v then
      drop(z, pend, mk, vk, idx, ARGV[i])
    elseif h > v then
      newer[#newer + 1] = n
    end
  end
end
return newer
"
);

/// The placement step 3 script. `TAKE_BACK z pending meta versions [index]
/// (m0 version stale)*`: a stale copy (`1`) still at its version is removed;
/// every move whose copy is still at its version leaves the pending set.
const TAKE_BACK: &str = concat!(
    drop_copy!(),
    r"
local z, pend, mk, vk, idx = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
for i = 1, #ARGV, 3 do
  local m0 = ARGV[i]
  local have = redis.call('HGET', vk, m0)
  if have == ARGV[i + 1] then
    if ARGV[i + 2] == '1' then
      drop(z, pend, mk, vk, idx, m0)
    else
      redis.call('SREM', pend, m0)
    end
  elseif not have then
    redis.call('SREM', pend, m0)
  end
end
return 0
"
);

/// `PLACED unplaced (m0 version)*`: players whose placement at `version`
/// finished leave the home's unplaced set, unless a newer version came meanwhile.
const PLACED: &str = r"
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    n = n + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return n
";

/// A player's value as their home holds it, to be placed in the shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    /// The player.
    pub player: PlayerId,
    /// Their ranking key.
    pub key: u64,
    /// How many changes their home made (0: loaded by a restore, never changed since).
    pub version: u64,
    /// Their member's time prefix (`earliest` boards), else empty.
    pub prefix: Vec<u8>,
    /// Their entry's metadata, else empty.
    pub meta: Vec<u8>,
}

/// Names the keys every placement script takes, in order.
fn shard_cmd(script: &str, shard: &str, index: Option<&str>) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script)
        .arg(4 + usize::from(index.is_some()))
        .arg(shard)
        .arg(keys::pending_moves(shard))
        .arg(keys::entry_meta(shard))
        .arg(keys::versions(shard));
    if let Some(index) = index {
        cmd.arg(index);
    }
    cmd
}

/// The [`STATE`] of `players` in `home`.
pub(crate) fn state<'a>(home: &str, index: Option<&str>, players: impl Iterator<Item = &'a PlayerId>) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(STATE)
        .arg(3 + usize::from(index.is_some()))
        .arg(home)
        .arg(keys::entry_meta(home))
        .arg(keys::versions(home));
    if let Some(index) = index {
        cmd.arg(index);
    }
    for p in players {
        cmd.arg(member::encode(p));
    }
    cmd
}

/// Decodes a [`STATE`] reply for `players` (in the order asked): the placements of those with a value.
///
/// # Errors
/// [`Error::Corrupt`] for a reply of another shape.
pub(crate) fn parse_state(v: Value, players: &[&PlayerId]) -> Result<Vec<Placement>> {
    let rows = as_array(v)?;
    if rows.len() != players.len() {
        return Err(Error::Corrupt(format!("a state reply of {} rows for {} players", rows.len(), players.len())));
    }
    let mut out = Vec::with_capacity(rows.len());
    for (row, player) in rows.into_iter().zip(players) {
        if row == Value::Nil {
            continue;
        }
        let mut parts = as_array(row)?.into_iter();
        let (Some(key), Some(version), Some(prefix), Some(meta)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Corrupt("a short state row".into()));
        };
        let version = as_score(&version)?;
        out.push(Placement {
            player: (*player).clone(),
            key: as_score(&key)?,
            version,
            prefix: as_bytes(prefix)?,
            meta: as_bytes(meta)?,
        });
    }
    Ok(out)
}

/// Step 1: [`PLACE`] each of `placements` in `shard`.
pub(crate) fn place<'a>(shard: &str, index: Option<&str>, placements: impl Iterator<Item = &'a Placement>) -> Cmd {
    let mut cmd = shard_cmd(PLACE, shard, index);
    for p in placements {
        cmd.arg(member::encode(&p.player)).arg(p.key).arg(p.version).arg(&p.prefix[..]).arg(&p.meta[..]);
    }
    cmd
}

/// Step 2: [`CLEAN`] `shard` of every copy older than each of `placements`.
pub(crate) fn clean<'a>(shard: &str, index: Option<&str>, placements: impl Iterator<Item = &'a Placement>) -> Cmd {
    let mut cmd = shard_cmd(CLEAN, shard, index);
    for p in placements {
        cmd.arg(member::encode(&p.player)).arg(p.version);
    }
    cmd
}

/// Step 3: [`TAKE_BACK`] from `shard` the arrivals found stale, ending every move.
pub(crate) fn take_back<'a>(
    shard: &str,
    index: Option<&str>,
    arrivals: impl Iterator<Item = (&'a Placement, bool)>,
) -> Cmd {
    let mut cmd = shard_cmd(TAKE_BACK, shard, index);
    for (p, stale) in arrivals {
        cmd.arg(member::encode(&p.player)).arg(p.version).arg(if stale { "1" } else { "0" });
    }
    cmd
}

/// [`PLACED`]: `placements` leave `home`'s unplaced set.
pub(crate) fn placed<'a>(home: &str, placements: impl Iterator<Item = &'a Placement>) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(PLACED).arg(1).arg(keys::unplaced(home));
    for p in placements {
        cmd.arg(member::encode(&p.player)).arg(p.version);
    }
    cmd
}

/// 1-based indexes in a step's reply, as 0-based.
///
/// # Errors
/// [`Error::Corrupt`] for a reply of another shape.
pub(crate) fn parse_indexes(v: Value) -> Result<Vec<usize>> {
    as_array(v)?.iter().map(|i| as_u64(i).map(|i| i as usize - 1)).collect()
}
