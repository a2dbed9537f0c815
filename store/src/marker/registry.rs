//! The player registry: erasures and bans, in one Redis hash (`lb:players`).
//!
//! | field | value |
//! |---|---|
//! | `e:<player>` | when the player was erased, in milliseconds since the Unix epoch |
//! | `d:<player>` | the version at which the erasure's removal finished; `0` while it runs |
//! | `b:<player>` | the player's ban ([`Ban`], JSON) |
//! | `version` | raised by every change, so a writer can tell whether marks changed during its batch |
//!
//! One key, so every change and its version move together (one node on a
//! Cluster; the registry is read once per write batch, which is far below a
//! node's capacity). It holds ids and times only, never a score or `meta`:
//! what an erasure must remember is that the player's earlier records are
//! never to be applied again.

use std::collections::HashMap;

use leaderboard_contract::{BoardId, PlayerId};
use redis::Value;
use serde::{Deserialize, Serialize};

use crate::connection::reply::{as_array, as_bytes};
use crate::connection::store::Store;
use crate::{Error, Result};

/// The registry's key.
pub const KEY: &str = "lb:players";

/// The field holding the registry's version.
const VERSION: &str = "version";

/// Most boards one ban may list.
pub const MAX_BAN_BOARDS: usize = 100;

/// Longest ban reason, in characters (at most 1 KiB of UTF-8).
pub const MAX_REASON_CHARS: usize = 256;

/// Which boards a ban covers (with their seasons).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BanScope {
    /// Every board: `"all"`.
    All(AllBoards),
    /// The boards listed.
    Boards(Vec<BoardId>),
}

/// The word `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllBoards {
    /// Every board.
    All,
}

impl BanScope {
    /// Every board.
    pub const ALL: Self = Self::All(AllBoards::All);

    /// Whether the scope covers `board` (a season counts as its board).
    pub fn covers(&self, board: &BoardId) -> bool {
        match self {
            Self::All(_) => true,
            Self::Boards(boards) => {
                let base = board.season_parts().map_or(board.as_str(), |(b, _)| b);
                boards.iter().any(|b| b.as_str() == base)
            }
        }
    }
}

/// A player's ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// The boards it covers.
    pub boards: BanScope,
    /// Whether the player was also removed from those boards' closed seasons.
    pub closed_seasons: bool,
    /// Why, as the operator wrote it (at most [`MAX_REASON_CHARS`] characters).
    pub reason: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

impl Ban {
    /// Checks the stated bounds: at most [`MAX_BAN_BOARDS`] boards and a reason of at most
    /// [`MAX_REASON_CHARS`] characters.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bound exceeded.
    pub fn validate(&self) -> Result<()> {
        if let BanScope::Boards(boards) = &self.boards {
            if boards.is_empty() || boards.len() > MAX_BAN_BOARDS {
                return Err(Error::Config(format!("a ban lists 1 to {MAX_BAN_BOARDS} boards, or \"all\"")));
            }
            if boards.iter().any(BoardId::is_season) {
                return Err(Error::Config("a ban lists boards, not seasons".into()));
            }
        }
        if self.reason.chars().count() > MAX_REASON_CHARS {
            return Err(Error::Config(format!("a ban's reason is at most {MAX_REASON_CHARS} characters")));
        }
        Ok(())
    }
}

/// What the registry says of some players, and its version when read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    /// The registry's version.
    pub version: u64,
    /// Erased players and when.
    pub erased: HashMap<PlayerId, i64>,
    /// Erased players whose removal has finished, with the version it finished at.
    /// An erased player missing here is still being removed (or their eraser
    /// stopped short: erasing again finishes it).
    pub removed_at_version: HashMap<PlayerId, u64>,
    /// Banned players and their bans.
    pub bans: HashMap<PlayerId, Ban>,
}

impl Marks {
    /// Whether a record of `player` stamped `timestamp_ms` (Kafka time) predates their erasure:
    /// such a record is never applied.
    pub fn erased_before(&self, player: &PlayerId, timestamp_ms: i64) -> bool {
        self.erased.get(player).is_some_and(|&at| timestamp_ms < at)
    }

    /// The ban that covers `player` on `board`, if any.
    pub fn ban_on(&self, player: &PlayerId, board: &BoardId) -> Option<&Ban> {
        self.bans.get(player).filter(|ban| ban.boards.covers(board))
    }

    /// Whether a copy of `board` (a rebalance's or a migration's chunk) read
    /// after the registry stood at version `since` may hold a record of
    /// `player` that an erasure or a ban is taking away: the player is banned
    /// from the board, or erased by an erasure whose removal had not finished
    /// by `since`. Such a player is left out of the chunk, or taken out of the
    /// target after it was written. An erasure finished before `since`
    /// removed everything of the player before the chunk was read: what the
    /// chunk holds of them is a new start, and it is copied.
    pub fn stale_in_copy(&self, player: &PlayerId, board: &BoardId, since: u64) -> bool {
        self.ban_on(player, board).is_some()
            || (self.erased.contains_key(player) && self.removed_at_version.get(player).is_none_or(|&v| v > since))
    }

    /// Whether nothing is marked.
    pub fn is_empty(&self) -> bool {
        self.erased.is_empty() && self.bans.is_empty()
    }
}

/// Where one player stands in the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// When they were erased, if ever.
    pub erased_at_ms: Option<i64>,
    /// Their ban, if any.
    pub ban: Option<Ban>,
    /// Whether an erasure's removal is marked but not finished (its eraser
    /// is running, or stopped short: erasing again finishes it).
    pub erasure_unfinished: bool,
}

/// A player's marks as they are kept outside Redis (the players log, a
/// snapshot file): what a store that lost its registry is given back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerMarks {
    /// When they were erased, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at_ms: Option<i64>,
    /// Their ban.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban: Option<Ban>,
}

impl PlayerMarks {
    /// Whether nothing is marked (the player's entry can go).
    pub fn is_empty(&self) -> bool {
        self.erased_at_ms.is_none() && self.ban.is_none()
    }
}

impl Status {
    /// The marks kept outside Redis.
    pub fn marks(&self) -> PlayerMarks {
        PlayerMarks { erased_at_ms: self.erased_at_ms, ban: self.ban.clone() }
    }
}

/// What [`give_back`] changed for one player.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GivenBack {
    /// The erasure was missing or older: it is recorded, its removal unfinished.
    pub erasure: bool,
    /// The ban was missing: it is recorded.
    pub ban: bool,
}

/// Gives the registry back what `marks` holds and it lacks: an erasure it
/// does not have (or has an earlier time of), a ban where it has none. What
/// it holds already stays (it is as new as anything kept outside: every
/// change is made in Redis first). An erasure given back is left unfinished:
/// the caller removes the player and then calls [`finish_erasure`].
///
/// # Errors
/// [`Error::Redis`] when Redis fails; [`Error::Config`] for a ban that cannot be written.
pub async fn give_back(store: &Store, marks: &[(PlayerId, PlayerMarks)]) -> Result<Vec<GivenBack>> {
    let mut given = Vec::with_capacity(marks.len());
    // Pipelines of a bounded size: one round trip per chunk to the registry's node.
    for chunk in marks.chunks(GIVE_BACK_CHUNK) {
        let mut pipe = redis::pipe();
        for (player, m) in chunk {
            let ban = match &m.ban {
                Some(ban) => serde_json::to_string(ban).map_err(|e| Error::Config(format!("ban: {e}")))?,
                None => String::new(),
            };
            pipe.cmd("EVAL")
                .arg(GIVE_BACK)
                .arg(1)
                .arg(KEY)
                .arg(erased_field(player))
                .arg(removed_field(player))
                .arg(ban_field(player))
                .arg(VERSION)
                .arg(m.erased_at_ms.map_or_else(String::new, |at| at.to_string()))
                .arg(ban);
        }
        for reply in store.run(&pipe).await? {
            let flags = int(Some(reply))?.unwrap_or(0);
            given.push(GivenBack { erasure: flags & 1 != 0, ban: flags & 2 != 0 });
        }
    }
    Ok(given)
}

/// Players given back per pipeline.
const GIVE_BACK_CHUNK: usize = 500;

/// Every player the registry marks, with their marks, read in pages (`HSCAN`).
///
/// # Errors
/// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for a field that is not what it should be.
pub async fn all(store: &Store) -> Result<Vec<(PlayerId, PlayerMarks)>> {
    let mut found: std::collections::BTreeMap<PlayerId, PlayerMarks> = std::collections::BTreeMap::new();
    let mut cursor = 0u64;
    loop {
        let reply: Value = store.query(redis::cmd("HSCAN").arg(KEY).arg(cursor).arg("COUNT").arg(1000)).await?;
        let mut parts = as_array(reply)?.into_iter();
        let next = as_bytes(parts.next().unwrap_or(Value::Nil))?;
        cursor = String::from_utf8_lossy(&next).parse().map_err(|_| Error::Corrupt(format!("{KEY}: HSCAN cursor")))?;
        let flat = parts.next().map(as_array).transpose()?.unwrap_or_default();
        for pair in flat.chunks_exact(2) {
            let field = String::from_utf8_lossy(&as_bytes(pair[0].clone())?).into_owned();
            let Some((kind, player)) = field.split_once(':') else { continue };
            let player = PlayerId::new(player).map_err(|e| Error::Corrupt(format!("{KEY}: field {field:?}: {e}")))?;
            match kind {
                "e" => found.entry(player).or_default().erased_at_ms = int(Some(pair[1].clone()))?,
                "b" => found.entry(player).or_default().ban = parse_ban(Some(pair[1].clone()))?,
                _ => {}
            }
        }
        if cursor == 0 {
            return Ok(found.into_iter().collect());
        }
    }
}

/// The registry's version now.
///
/// # Errors
/// [`Error::Redis`] when Redis fails.
pub async fn version(store: &Store) -> Result<u64> {
    let v: Option<u64> = store.query(redis::cmd("HGET").arg(KEY).arg(VERSION)).await?;
    Ok(v.unwrap_or(0))
}

/// The marks of `players` and the version, in one read.
///
/// # Errors
/// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for a field that is not what it should be.
pub async fn marks<'a>(store: &Store, players: impl IntoIterator<Item = &'a PlayerId>) -> Result<Marks> {
    let players: Vec<&PlayerId> = players.into_iter().collect();
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(KEY).arg(VERSION);
    for p in &players {
        cmd.arg(erased_field(p)).arg(removed_field(p)).arg(ban_field(p));
    }
    let reply: Value = store.query(&cmd).await?;
    let mut values = as_array(reply)?.into_iter();
    let mut marks = Marks { version: int(values.next())?.map_or(0, |v| v.max(0).cast_unsigned()), ..Marks::default() };
    for p in players {
        let erased = int(values.next())?;
        let removed = int(values.next())?;
        if let Some(at) = erased {
            marks.erased.insert(p.clone(), at);
            // No field: an erasure recorded before removals were tracked, long finished.
            match removed {
                Some(0) => {}
                other => {
                    marks.removed_at_version.insert(p.clone(), other.unwrap_or(0).max(0).cast_unsigned());
                }
            }
        }
        if let Some(ban) = parse_ban(values.next())? {
            marks.bans.insert(p.clone(), ban);
        }
    }
    Ok(marks)
}

/// Where `player` stands.
///
/// # Errors
/// As [`marks`].
pub async fn status(store: &Store, player: &PlayerId) -> Result<Status> {
    let mut marks = marks(store, [player]).await?;
    let erasure_unfinished = marks.erased.contains_key(player) && !marks.removed_at_version.contains_key(player);
    Ok(Status { erased_at_ms: marks.erased.remove(player), ban: marks.bans.remove(player), erasure_unfinished })
}

/// Marks `player` erased now by Redis's own clock (`TIME`: one clock for
/// every eraser, whichever machine it runs on; a later erasure moves the time
/// forward, never back) with its removal unfinished, raises the version, and
/// returns the erasure's time in milliseconds since the Unix epoch.
///
/// # Errors
/// [`Error::Redis`] when Redis fails.
pub async fn mark_erased(store: &Store, player: &PlayerId) -> Result<i64> {
    store
        .query(
            redis::cmd("EVAL")
                .arg(MARK_ERASED)
                .arg(1)
                .arg(KEY)
                .arg(erased_field(player))
                .arg(removed_field(player))
                .arg(VERSION),
        )
        .await
}

/// Records that `player`'s erasure has removed them everywhere: raises the
/// version and notes it as the removal's (copies compare it with the version
/// they read before a chunk, [`Marks::stale_in_copy`]).
///
/// # Errors
/// [`Error::Redis`] when Redis fails.
pub async fn finish_erasure(store: &Store, player: &PlayerId) -> Result<()> {
    let _: i64 = store
        .query(redis::cmd("EVAL").arg(FINISH_ERASURE).arg(1).arg(KEY).arg(removed_field(player)).arg(VERSION))
        .await?;
    Ok(())
}

/// Records `ban` for `player` (replacing any earlier ban) and raises the version.
///
/// # Errors
/// [`Error::Config`] for a ban beyond the bounds ([`Ban::validate`]); [`Error::Redis`] when Redis fails.
pub async fn ban(store: &Store, player: &PlayerId, ban: &Ban) -> Result<()> {
    ban.validate()?;
    let json = serde_json::to_string(ban).map_err(|e| Error::Config(format!("ban: {e}")))?;
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("HSET").arg(KEY).arg(ban_field(player)).arg(json).ignore();
    pipe.cmd("HINCRBY").arg(KEY).arg(VERSION).arg(1).ignore();
    store.run(&pipe).await?;
    Ok(())
}

/// Lifts `player`'s ban, if any (for future events; what it removed stays
/// removed), and raises the version. Returns whether there was one.
///
/// # Errors
/// [`Error::Redis`] when Redis fails.
pub async fn unban(store: &Store, player: &PlayerId) -> Result<bool> {
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("HDEL").arg(KEY).arg(ban_field(player));
    pipe.cmd("HINCRBY").arg(KEY).arg(VERSION).arg(1).ignore();
    let replies = store.run(&pipe).await?;
    Ok(replies.first().and_then(|v| int(Some(v.clone())).ok().flatten()).is_some_and(|n| n > 0))
}

/// Raises the version alone: after an erasure's or a ban's removal, so a
/// reader that sees this raise also sees the removal.
///
/// # Errors
/// [`Error::Redis`] when Redis fails.
pub async fn touch(store: &Store) -> Result<()> {
    let _: i64 = store.query(redis::cmd("HINCRBY").arg(KEY).arg(VERSION).arg(1)).await?;
    Ok(())
}

/// KEYS: the registry; ARGV: the erasure field, the removal field, the version field. Returns the erasure's time.
/// (`TIME` in a script: Redis 7 replicates scripts by their effects, so replicas get the value.)
const MARK_ERASED: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local at = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if now > at then
  redis.call('HSET', KEYS[1], ARGV[1], now)
  at = now
end
redis.call('HSET', KEYS[1], ARGV[2], 0)
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
return at
";

/// KEYS: the registry; ARGV: the removal field, the version field. Returns the new version.
const FINISH_ERASURE: &str = r"
local version = redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('HSET', KEYS[1], ARGV[1], version)
return version
";

/// KEYS: the registry; ARGV: the erasure, removal, ban and version fields, the erasure's time
/// (or empty), the ban's JSON (or empty). Returns 1 for an erasure given back, plus 2 for a ban.
const GIVE_BACK: &str = r"
local given = 0
if ARGV[5] ~= '' and tonumber(ARGV[5]) > tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[5], ARGV[2], 0)
  given = 1
end
if ARGV[6] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[3]) == 0 then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[6])
  given = given + 2
end
if given > 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[4], 1)
end
return given
";

fn erased_field(player: &PlayerId) -> String {
    format!("e:{player}")
}

fn removed_field(player: &PlayerId) -> String {
    format!("d:{player}")
}

fn ban_field(player: &PlayerId) -> String {
    format!("b:{player}")
}

fn int(v: Option<Value>) -> Result<Option<i64>> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Int(i)) => Ok(Some(i)),
        Some(other) => {
            let bytes = as_bytes(other)?;
            let text = String::from_utf8_lossy(&bytes);
            text.parse().map(Some).map_err(|_| Error::Corrupt(format!("{KEY}: {text:?} is not an integer")))
        }
    }
}

fn parse_ban(v: Option<Value>) -> Result<Option<Ban>> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => {
            let bytes = as_bytes(v)?;
            serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Corrupt(format!("{KEY}: ban: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(name: &str) -> BoardId {
        BoardId::new(name).expect("board")
    }

    #[test]
    fn a_scope_covers_its_boards_and_their_seasons() {
        let scope = BanScope::Boards(vec![board("weekly")]);
        assert!(scope.covers(&board("weekly")));
        assert!(scope.covers(&board("weekly").season("2026-12-07")));
        assert!(!scope.covers(&board("daily")));
        assert!(BanScope::ALL.covers(&board("daily")));
    }

    #[test]
    fn bans_round_trip_as_the_contract_spells_them() {
        let all: Ban =
            serde_json::from_str(r#"{"boards":"all","closed_seasons":true,"reason":"x","at_ms":1}"#).expect("all");
        assert_eq!(all.boards, BanScope::ALL);
        let listed: Ban =
            serde_json::from_str(r#"{"boards":["a","b"],"closed_seasons":false,"reason":"","at_ms":2}"#).expect("list");
        assert_eq!(listed.boards, BanScope::Boards(vec![board("a"), board("b")]));
        assert!(serde_json::to_string(&all).expect("json").contains(r#""boards":"all""#));
        assert!(
            serde_json::from_str::<Ban>(r#"{"boards":"some","closed_seasons":false,"reason":"","at_ms":2}"#).is_err()
        );
    }

    #[test]
    fn bans_are_bounded() {
        let ban =
            |boards: BanScope, reason: &str| Ban { boards, closed_seasons: false, reason: reason.into(), at_ms: 0 };
        assert!(ban(BanScope::ALL, "cheating").validate().is_ok());
        assert!(ban(BanScope::Boards(vec![]), "").validate().is_err());
        let many = (0..=MAX_BAN_BOARDS).map(|i| board(&format!("b{i}"))).collect();
        assert!(ban(BanScope::Boards(many), "").validate().is_err());
        assert!(ban(BanScope::Boards(vec![board("b").season("2026-12-07")]), "").validate().is_err());
        assert!(ban(BanScope::ALL, &"x".repeat(MAX_REASON_CHARS + 1)).validate().is_err());
    }

    #[test]
    fn a_record_before_the_erasure_is_never_applied_and_one_after_is_a_new_start() {
        let p = PlayerId::new("p").expect("player");
        let marks = Marks { erased: [(p.clone(), 100)].into(), ..Marks::default() };
        assert!(marks.erased_before(&p, 99));
        assert!(!marks.erased_before(&p, 100));
        assert!(!marks.erased_before(&PlayerId::new("q").expect("player"), 0));
    }

    #[test]
    fn a_copy_leaves_out_what_an_unfinished_or_later_erasure_takes_away_and_keeps_a_new_start() {
        let p = |name: &str| PlayerId::new(name).expect("player");
        let weekly = board("weekly");
        let marks = Marks {
            version: 9,
            erased: [(p("running"), 1), (p("before"), 1), (p("after"), 1)].into(),
            removed_at_version: [(p("before"), 4), (p("after"), 7)].into(),
            bans: [(p("cheat"), Ban { boards: BanScope::ALL, closed_seasons: false, reason: String::new(), at_ms: 0 })]
                .into(),
        };
        assert!(marks.stale_in_copy(&p("running"), &weekly, 5), "removal still running");
        assert!(!marks.stale_in_copy(&p("before"), &weekly, 5), "finished before the chunk: a new start");
        assert!(marks.stale_in_copy(&p("after"), &weekly, 5), "finished after the chunk was read");
        assert!(marks.stale_in_copy(&p("cheat"), &weekly, 5), "banned");
        assert!(!marks.stale_in_copy(&p("clean"), &weekly, 5));
    }
}
