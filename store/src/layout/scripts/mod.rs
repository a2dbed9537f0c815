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
//!
//! Entry metadata ([`leaderboard_contract::Meta`]) lives in a hash beside each
//! sorted set ([`crate::layout::keys::entry_meta`], same hash tag): the
//! write scripts set a player's field when their score changes (to the
//! event's `meta`, or delete it when the event has none), and every read
//! script that returns rows or a player appends their metadata from it, so a
//! read with metadata is still one script per shard. A shard whose hash does
//! not exist (a board that never saw metadata) is written with one plain
//! `ZADD GT`, as before metadata existed, and read without a single `HMGET`.
//!
//! [`write`] holds the best-score write scripts and their calls, [`tally`]
//! the `last` and `sum` write script, [`place`] the scripts that place a
//! `range` board's `last` and `sum` values in its shards, [`read`] the read scripts, their calls
//! and the decoding of their replies; the Lua helpers they share are here.

/// Lua helpers every script that compares or finds members starts with:
/// `greater(a, b)` compares bytes; `find(idx, m0)` is the member of plain
/// member `m0`: `m0` itself on boards without a player index (`idx` nil),
/// else its time prefix from the index followed by `m0`, or nil when absent;
/// `plain(m)` is a member without its time prefix (the metadata's field);
/// `metas(mk, rows)` is the metadata of flat `member, score` rows, aligned
/// (false where none), or an empty table when the shard keeps none;
/// `before(key, s, m)` counts the members ahead of an anchor.
macro_rules! prelude {
    () => {
        r"
local function greater(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local function find(idx, m0)
  if idx == nil then return m0 end
  local pre = redis.call('HGET', idx, m0)
  if not pre then return nil end
  return pre .. m0
end
local function plain(m)
  if string.byte(m, 1) == 255 then return string.sub(m, 9) end
  return m
end
local function metas(mk, rows)
  if #rows == 0 or redis.call('EXISTS', mk) == 0 then return {} end
  local fields = {}
  for i = 1, #rows, 2 do fields[#fields + 1] = plain(rows[i]) end
  return redis.call('HMGET', mk, unpack(fields))
end
local function before(key, s, m)
  local n = redis.call('ZCOUNT', key, '(' .. s, '+inf')
  if m == '' then return n end
  local lo, hi = 0, redis.call('ZCOUNT', key, s, s)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local e = redis.call('ZREVRANGE', key, n + mid, n + mid)[1]
    if greater(e, m) then lo = mid + 1 else hi = mid end
  end
  return n + lo
end
"
    };
}

/// The season fence every write script starts with: when the last key is a
/// closed marker (its name ends in `:closed`, [`crate::layout::keys::closed_marker`]),
/// the script writes nothing and answers `-1` if the marker exists, and the
/// rest of the script never sees that key. The marker shares the shard's hash
/// tag, so the check and the write are one atomic step on one node.
macro_rules! fence {
    () => {
        r"
do
  local last = KEYS[#KEYS]
  if string.sub(last, -7) == ':closed' then
    if redis.call('EXISTS', last) == 1 then return -1 end
    KEYS[#KEYS] = nil
  end
end
"
    };
}

pub(crate) mod place;
mod read;
mod tally;
mod write;

pub(crate) use read::*;
pub(crate) use tally::*;
pub(crate) use write::*;
