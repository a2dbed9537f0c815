//! The write script of `last` and `sum` boards (docs/ingest.md#exactly-once-operators):
//! each record's effect applied exactly once, atomically with the shard's
//! applied offsets.
//!
//! Beside each shard of such a board (same hash tag, so the same node and
//! slot) live:
//! - `:o`, the applied offsets: per `<topic>:<partition>`, the offset after
//!   the last record of that partition the shard has taken. A record below it
//!   is skipped: the shard has applied it (or refused it) already.
//! - `:i`, the idempotency keys: per player, their newest keys within the
//!   board's `dedup_window` ([`leaderboard_semantics::tally::RecentIds`]),
//!   22 bytes each (8 of key, 14 digits of Kafka timestamp).
//! - `:x`, the refusals awaiting their dead letter: `<topic>:<partition>:<offset>`
//!   of each record refused for overflowing. A replayed refused record is
//!   reported again until the writer has dead-lettered it and removed it
//!   ([`settle`]), so a crash between the two loses no dead letter.
//!
//! The script reads every key it needs, checks their types and every
//! record's fate before writing anything, so it writes all or nothing: a
//! refusal (`WRONGTYPE`) leaves no effect behind, and a retried or replayed
//! chunk finds its records below the offsets and skips them.
//!
//! A record is taken when its offset is at or above what the shard (and the
//! records before it in the same call) reached, so a partition redelivered
//! within one batch (its records again, from an earlier offset) is skipped
//! too. Chunks of one call follow each other: a chunk names, per partition, the
//! offset its predecessors reached, and answers `-2` (nothing written) when
//! the shard is behind it. Redis runs a pipeline's commands after an error,
//! so without this a chunk after a failed one would move the offsets past
//! records that were never applied.

use leaderboard_contract::Meta;
use leaderboard_semantics::tally::{IDS_PER_PLAYER, Source, start_key};
use leaderboard_semantics::{Operator, Rules};
use redis::{Cmd, Value};

use crate::connection::reply::{as_array, as_u64};
use crate::layout::{keys, member};
use crate::{Error, Result};

/// `TALLY z meta offsets ids refusals [versions unplaced] [index] [marker] op
/// dir start window keep flags nf (field need)* (record [meta])*`
/// → `{replayed, duplicates, {refused ordinals}}`, `-1` behind a closed
/// fence, `-2` when a predecessor chunk did not apply.
///
/// The chunk names each partition field it touches once, with the offset
/// the chunks before it reached (`need`, 0 for none); a record names its
/// field by its 1-based index `fi`; each record is one argument ([`packed`]:
/// `fi`, offset, value, `at`, id, member, prefix). `value` is a ranking key on `last` boards
/// and an increment of the score on `sum` boards (`dir` -1 on `asc` boards,
/// whose key falls as the score grows; `start` is the key of a score of 0).
/// `id` is 8 bytes or empty; `at` 14 digits; `prefix` the member's time
/// prefix, on `earliest` boards only; `meta` only when `flag` is `m` (some
/// record of the chunk carries one), empty for a record without (the entry
/// keeps the last it had). `flags` holds `v` on the homes of a `range` board
/// ([`crate::layout::range`]): each player whose value or metadata changes
/// gets the next version, in `versions` and in `unplaced` (the placement in
/// the shards is still to come). Leaving out what a chunk does not need spares
/// Redis work per record for each.
///
/// A player's remembered ids are one string of 22-byte entries, oldest
/// first: a repeat is found with a plain `string.find` (C speed), and an
/// applied id drops from the front the entries stamped more than the window
/// before it, then the oldest beyond `keep - 1`, and is appended
/// ([`leaderboard_semantics::tally::RecentIds`] does the same).
const TALLY: &str = concat!(
    fence!(),
    r"
local z, mk, ok, ik, xk = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local vk, uk, idx
if string.find(ARGV[6], 'v', 1, true) then
  vk, uk, idx = KEYS[6], KEYS[7], KEYS[8]
else
  idx = KEYS[6]
end
local want = {[z] = 'zset', [mk] = 'hash', [ok] = 'hash', [ik] = 'hash', [xk] = 'set'}
if idx then want[idx] = 'hash' end
if vk then
  want[vk] = 'hash'
  want[uk] = 'hash'
end
for k, t in pairs(want) do
  local has = redis.call('TYPE', k)['ok']
  if has ~= 'none' and has ~= t then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  end
end
local sum = ARGV[1] == 'sum'
local dir, start = tonumber(ARGV[2]), tonumber(ARGV[3])
local window, keepn = tonumber(ARGV[4]), tonumber(ARGV[5])
local MAXS = 9007199254740991
local withmeta = string.find(ARGV[6], 'm', 1, true) ~= nil
local nf = tonumber(ARGV[7])
local names = {}
for r = 1, nf do names[r] = ARGV[6 + 2 * r] end
local have = redis.call('HMGET', ok, unpack(names))
local applied, moved = {}, {}
for r = 1, nf do
  local h = tonumber(have[r] or '0')
  if h < tonumber(ARGV[7 + 2 * r]) then return -2 end
  applied[r] = h
end
local first = 8 + 2 * nf
local step = withmeta and 2 or 1
local pending = redis.call('SCARD', xk) > 0
local live, members, seen = {}, {}, {}
local FI, OFF, VAL, ID, AT, M0, PRE, META = {}, {}, {}, {}, {}, {}, {}, {}
local replayed, dups, refused, withid = 0, 0, {}, false
local n = 0
for i = first, #ARGV, step do
  n = n + 1
  local r = ARGV[i]
  local fi, off, val, il, ml = struct.unpack('>HddBB', r)
  if off < applied[fi] then
    replayed = replayed + 1
    if pending and redis.call('SISMEMBER', xk, names[fi] .. ':' .. string.format('%.0f', off)) == 1 then
      refused[#refused + 1] = n
    end
  else
    applied[fi] = off + 1
    moved[fi] = true
    live[#live + 1] = n
    local m0 = string.sub(r, 35 + il, 34 + il + ml)
    FI[n], OFF[n], VAL[n], M0[n] = fi, off, val, m0
    if il > 0 then
      ID[n], AT[n] = string.sub(r, 35, 34 + il), string.sub(r, 21, 34)
      withid = true
    else
      ID[n] = ''
    end
    if idx then PRE[n] = string.sub(r, 35 + il + ml, 42 + il + ml) end
    if withmeta then META[n] = ARGV[i + 1] end
    if not seen[m0] then
      seen[m0] = true
      members[#members + 1] = m0
    end
  end
end
if #live == 0 then return {replayed, dups, refused} end
local cur, old, ids = {}, {}, {}
if idx then
  local pre = redis.call('HMGET', idx, unpack(members))
  for j, m0 in ipairs(members) do
    if pre[j] then
      old[m0] = pre[j]
      cur[m0] = tonumber(redis.call('ZSCORE', z, pre[j] .. m0))
    end
  end
else
  local s = redis.call('ZMSCORE', z, unpack(members))
  for j, m0 in ipairs(members) do
    if s[j] then cur[m0] = tonumber(s[j]) end
  end
end
if withid then
  local got = redis.call('HMGET', ik, unpack(members))
  for j, m0 in ipairs(members) do ids[m0] = got[j] or '' end
end
local changed, pre, metas, dirty, over = {}, {}, {}, {}, {}
for _, n in ipairs(live) do
  local m0, id = M0[n], ID[n]
  local dup, atn = false, nil
  if id ~= '' then
    atn = tonumber(AT[n])
    local list = ids[m0]
    local p = string.find(list, id, 1, true)
    while p do
      if (p - 1) % 22 == 0 and math.abs(tonumber(string.sub(list, p + 8, p + 21)) - atn) <= window then
        dup = true
        break
      end
      p = string.find(list, id, p + 1, true)
    end
  end
  if dup then
    dups = dups + 1
  else
    local k = VAL[n]
    if sum then k = (cur[m0] or start) + dir * k end
    if k < 0 or k > MAXS then
      refused[#refused + 1] = n
      over[#over + 1] = names[FI[n]] .. ':' .. string.format('%.0f', OFF[n])
    else
      if k ~= cur[m0] then
        cur[m0] = k
        changed[m0] = true
        if idx then pre[m0] = PRE[n] end
      end
      if withmeta and META[n] ~= '' then metas[m0] = META[n] end
      if id ~= '' then
        local list = ids[m0]
        local from = 1
        while from <= #list and tonumber(string.sub(list, from + 8, from + 21)) < atn - window do
          from = from + 22
        end
        local count = (#list - from + 1) / 22
        if count >= keepn then from = from + (count - keepn + 1) * 22 end
        ids[m0] = string.sub(list, from) .. id .. AT[n]
        dirty[m0] = true
      end
    end
  end
end
local vset = {}
if vk then
  local bump = {}
  for _, m0 in ipairs(members) do
    if changed[m0] or metas[m0] then bump[#bump + 1] = m0 end
  end
  if #bump > 0 then
    local vs = redis.call('HMGET', vk, unpack(bump))
    for j, m0 in ipairs(bump) do
      vset[#vset + 1] = m0
      vset[#vset + 1] = string.format('%.0f', tonumber(vs[j] or '0') + 1)
    end
  end
end
local zadd, zrem, pres, mset, iset = {}, {}, {}, {}, {}
for _, m0 in ipairs(members) do
  if changed[m0] then
    local s = string.format('%.0f', cur[m0])
    if idx then
      if old[m0] then zrem[#zrem + 1] = old[m0] .. m0 end
      zadd[#zadd + 1] = s
      zadd[#zadd + 1] = pre[m0] .. m0
      pres[#pres + 1] = m0
      pres[#pres + 1] = pre[m0]
    else
      zadd[#zadd + 1] = s
      zadd[#zadd + 1] = m0
    end
  end
  if metas[m0] then
    mset[#mset + 1] = m0
    mset[#mset + 1] = metas[m0]
  end
  if dirty[m0] then
    iset[#iset + 1] = m0
    iset[#iset + 1] = ids[m0]
  end
end
if #zrem > 0 then redis.call('ZREM', z, unpack(zrem)) end
if #zadd > 0 then redis.call('ZADD', z, unpack(zadd)) end
if #pres > 0 then redis.call('HSET', idx, unpack(pres)) end
if #mset > 0 then redis.call('HSET', mk, unpack(mset)) end
if #iset > 0 then redis.call('HSET', ik, unpack(iset)) end
if #over > 0 then redis.call('SADD', xk, unpack(over)) end
if #vset > 0 then
  redis.call('HSET', vk, unpack(vset))
  redis.call('HSET', uk, unpack(vset))
end
local offs = {}
for r = 1, nf do
  if moved[r] then
    offs[#offs + 1] = names[r]
    offs[#offs + 1] = string.format('%.0f', applied[r])
  end
end
if #offs > 0 then redis.call('HSET', ok, unpack(offs)) end
return {replayed, dups, refused}
"
);

/// How far the chunks of one call before this one took a partition.
#[derive(Debug, Clone)]
pub(crate) struct Reached {
    topic: std::sync::Arc<str>,
    partition: i32,
    /// The offset after the last record of the partition those chunks held.
    pub next: i64,
}

impl Reached {
    /// Just after the record `source`.
    pub(crate) fn after(source: &Source) -> Self {
        Self { topic: source.topic.clone(), partition: source.partition, next: source.offset + 1 }
    }

    /// Whether `source` is of this partition.
    pub(crate) fn is(&self, source: &Source) -> bool {
        self.partition == source.partition && self.topic == source.topic
    }
}

/// One record's write as [`TALLY`] takes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tallied<'a> {
    /// The ranking key (`last`) or the score's increment (`sum`).
    pub value: u64,
    /// When the event happened (`earliest` boards: the time prefix of a changed score).
    pub time_ms: u64,
    /// The player.
    pub player: &'a leaderboard_contract::PlayerId,
    /// The event's metadata.
    pub meta: Option<&'a Meta>,
    /// The record.
    pub source: &'a Source,
}

/// What one [`TALLY`] chunk did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TallyReply {
    /// A closed season's fence refused the whole chunk.
    pub closed: bool,
    /// Records skipped: applied before.
    pub replayed: u64,
    /// Records skipped: a re-sent id within the window.
    pub duplicates: u64,
    /// 0-based indexes in the chunk of the records refused for overflowing.
    pub refused: Vec<usize>,
}

/// The `TALLY` call for one chunk of one shard (`key`) of a board with
/// `rules`: `earlier` holds, per partition field, the offset the chunks
/// before it in the same call reached (empty for the first). `versioned`: the
/// shard is a `range` board's home, whose changes are versioned for placement.
pub(crate) fn tally(
    key: &str,
    index: Option<&str>,
    fence: Option<&str>,
    rules: &Rules,
    earlier: &[Reached],
    writes: &[Tallied<'_>],
    versioned: bool,
) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    let extra = usize::from(index.is_some()) + usize::from(fence.is_some()) + 2 * usize::from(versioned);
    cmd.arg(TALLY)
        .arg(5 + extra)
        .arg(key)
        .arg(keys::entry_meta(key))
        .arg(keys::applied_offsets(key))
        .arg(keys::recent_ids(key))
        .arg(keys::overflow_refusals(key));
    if versioned {
        cmd.arg(keys::versions(key)).arg(keys::unplaced(key));
    }
    if let Some(index) = index {
        cmd.arg(index);
    }
    if let Some(fence) = fence {
        cmd.arg(fence);
    }
    // Each partition the chunk touches, once: its field and the offset the chunks before reached.
    let mut fields: Vec<(&Source, String, i64)> = Vec::new();
    let mut field_of = Vec::with_capacity(writes.len());
    for w in writes {
        let at = fields.iter().position(|(s, ..)| s.partition == w.source.partition && s.topic == w.source.topic);
        field_of.push(at.unwrap_or_else(|| {
            let need = earlier.iter().find(|r| r.is(w.source)).map_or(0, |r| r.next);
            fields.push((w.source, w.source.field(), need));
            fields.len() - 1
        }));
    }
    let asc = rules.order == leaderboard_semantics::Order::Asc;
    cmd.arg(if rules.operator == Operator::Sum { "sum" } else { "last" })
        .arg(if asc { "-1" } else { "1" })
        .arg(start_key(rules.order))
        .arg(u64::try_from(rules.dedup_window.as_millis()).unwrap_or(u64::MAX))
        .arg(IDS_PER_PLAYER);
    let with_meta = writes.iter().any(|w| w.meta.is_some());
    let flags = match (with_meta, versioned) {
        (true, true) => "mv",
        (true, false) => "m",
        (false, true) => "v",
        (false, false) => "-",
    };
    cmd.arg(flags).arg(fields.len());
    for (_, field, need) in &fields {
        cmd.arg(field).arg(*need);
    }
    let earliest = index.is_some();
    for (w, at) in writes.iter().zip(field_of) {
        cmd.arg(packed(w, at + 1, earliest));
        if with_meta {
            cmd.arg(w.meta.map_or(&b""[..], Meta::as_bytes));
        }
    }
    cmd
}

/// One record as [`TALLY`] unpacks it (`struct.unpack('>HddBB')`, then the
/// strings): its partition field's 1-based index (u16), offset and value
/// (f64, exact below 2^53: a score never passes it, nor does a Kafka offset),
/// the lengths of its id (0 or 8) and member (at most 65), its Kafka timestamp
/// as 14 digits, the id, the member and, on `earliest` boards, the time
/// prefix. One argument per record instead of six spares Redis the parsing
/// and the Lua strings of the other five, and the script two `tonumber`s.
fn packed(w: &Tallied<'_>, field: usize, earliest: bool) -> Vec<u8> {
    let id = w.source.id.as_ref().map_or(&[][..], |k| &k.0[..]);
    let m0 = member::encode(w.player);
    debug_assert!(w.source.offset < 1 << 53 && w.value < 1 << 53, "exact as f64");
    let mut out = Vec::with_capacity(34 + id.len() + m0.len() + 8);
    out.extend_from_slice(&u16::try_from(field).unwrap_or(u16::MAX).to_be_bytes());
    #[allow(clippy::cast_precision_loss)] // below 2^53: exact
    {
        out.extend_from_slice(&(w.source.offset as f64).to_be_bytes());
        out.extend_from_slice(&(w.value as f64).to_be_bytes());
    }
    out.push(u8::try_from(id.len()).unwrap_or(0));
    out.push(u8::try_from(m0.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(format!("{:014}", w.source.at_ms.clamp(0, 99_999_999_999_999)).as_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(&m0);
    if earliest {
        out.extend_from_slice(&member::time_prefix(w.time_ms));
    }
    out
}

/// Decodes a [`TALLY`] reply.
///
/// # Errors
/// [`Error::OutOfOrder`] when a chunk before it in its call did not apply;
/// [`Error::Corrupt`] for any other reply.
pub(crate) fn parse_tally(v: Value, key: &str) -> Result<TallyReply> {
    match v {
        Value::Int(-1) => Ok(TallyReply { closed: true, ..TallyReply::default() }),
        Value::Int(-2) => Err(Error::OutOfOrder(key.to_string())),
        v => {
            let mut parts = as_array(v)?.into_iter();
            let (Some(replayed), Some(duplicates), Some(refused)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(Error::Corrupt(format!("{key}: a short tally reply")));
            };
            let refused =
                as_array(refused)?.iter().map(|i| as_u64(i).map(|i| i as usize - 1)).collect::<Result<_>>()?;
            Ok(TallyReply { closed: false, replayed: as_u64(&replayed)?, duplicates: as_u64(&duplicates)?, refused })
        }
    }
}

/// The `SREM` that settles refusals of one shard once their dead letters are sent.
pub(crate) fn settle<'a>(key: &str, refused: impl Iterator<Item = &'a Source>) -> Cmd {
    let mut cmd = redis::cmd("SREM");
    cmd.arg(keys::overflow_refusals(key));
    for s in refused {
        cmd.arg(format!("{}:{}", s.field(), s.offset));
    }
    cmd
}
