//! Which layout each board is stored with, its layout migration, and the list of boards.
//!
//! `lb:{<board>}:layout` holds the board's [`BoardRecord`]: the layout it is
//! read from (`single`, `hash:<n>` or `range`; a range board's boundaries live
//! in its metadata and move with rebalances), a migration to another layout in
//! progress, the layout it was last migrated from, and replaced layouts whose
//! keys are not deleted yet. A record with nothing but a layout is stored as
//! the bare layout name, as records were before migrations existed.
//!
//! The first write to a board records the writer's layout (`SET NX`) and adds
//! the board to `lb:boards`. A router accepts a board whose record names its
//! configured layout as the current one, as the target of the migration in
//! progress, or as the one the board was migrated from (so processes can be
//! reconfigured at any time around a migration), and then follows the record:
//! it reads where the record says and writes to every layout the record lists
//! ([`BoardRecord::write_set`]). Any other board fails with
//! [`Error::LayoutMismatch`] naming both, on reads and writes alike, before a
//! key of another layout is touched: a misconfigured process can neither read
//! the wrong keys nor write a second copy of the board beside the first.
//!
//! Boards written before layouts were recorded have no record: they are read
//! with the configured layout, and their next write records it. Reading a
//! board that has no record creates nothing, in Redis or in memory.
//!
//! A router keeps each record it read for [`RECORD_TTL`] (at most
//! [`MAX_CACHED`] boards, then it starts over). Writers re-read it after every
//! batch (see [`crate::board::migrate`]), so only readers use a record that old; a
//! replaced layout is therefore kept, and written, for a grace period longer
//! than `RECORD_TTL` plus the longest read.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use leaderboard_contract::BoardId;
use leaderboard_semantics::rules::Rules;
use serde::{Deserialize, Serialize};

use crate::connection::store::Store;
use crate::layout::keys;
use crate::layout::spec::LayoutSpec;
use crate::{Error, Result};

/// The set of every board's name.
pub const BOARDS_KEY: &str = "lb:boards";

/// Most boards a router keeps records of.
pub const MAX_CACHED: usize = 100_000;

/// How long a router reads with a record before reading it again.
pub const RECORD_TTL: Duration = Duration::from_secs(1);

/// The recorded form of a layout: what decides the keys a board lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RecordedLayout {
    /// `single`.
    Single,
    /// `hash:<shards>`.
    Hash {
        /// Shard count.
        shards: usize,
    },
    /// `range` (boundaries in the board's range metadata).
    Range,
}

impl RecordedLayout {
    /// The strategy name used in stats and metrics: `single`, `hash` or `range`.
    pub fn strategy(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Hash { .. } => "hash",
            Self::Range => "range",
        }
    }

    /// The recorded form of a configured layout.
    pub fn of(spec: &LayoutSpec) -> Self {
        match spec {
            LayoutSpec::Single => Self::Single,
            LayoutSpec::Hash { shards } => Self::Hash { shards: *shards },
            LayoutSpec::Range { .. } => Self::Range,
        }
    }
}

impl fmt::Display for RecordedLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Single => f.write_str("single"),
            Self::Hash { shards } => write!(f, "hash:{shards}"),
            Self::Range => f.write_str("range"),
        }
    }
}

impl FromStr for RecordedLayout {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s == "range" {
            return Ok(Self::Range);
        }
        match s.parse::<LayoutSpec>()? {
            LayoutSpec::Range { .. } => {
                Err(Error::InvalidLayout(format!("a recorded range layout is `range`, got {s:?}")))
            }
            spec => Ok(Self::of(&spec)),
        }
    }
}

impl TryFrom<String> for RecordedLayout {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<RecordedLayout> for String {
    fn from(layout: RecordedLayout) -> Self {
        layout.to_string()
    }
}

/// A migration of a board to another layout, in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutMigration {
    /// The layout being filled.
    pub to: RecordedLayout,
    /// The source key the copy is at (keys below it are copied).
    pub key: usize,
    /// The `ZSCAN` cursor inside that key.
    pub cursor: u64,
}

/// A layout the board no longer reads, kept (and written) until no read can still be using it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredLayout {
    /// The layout.
    pub layout: RecordedLayout,
    /// When it stopped being read, in milliseconds since the Unix epoch.
    pub retired_at_ms: u64,
    /// Its keys are being deleted: writers no longer write it (the entry goes once they are gone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

/// What `lb:{<board>}:layout` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardRecord {
    /// The layout the board is read from.
    pub layout: RecordedLayout,
    /// A migration to another layout in progress; writers write to both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<LayoutMigration>,
    /// The layout the board was last migrated from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<RecordedLayout>,
    /// Replaced or abandoned layouts whose keys are not deleted yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredLayout>,
    /// The board's rules ([`leaderboard_semantics::rules`]).
    #[serde(default, skip_serializing_if = "Rules::is_default")]
    pub rules: Rules,
}

impl BoardRecord {
    /// Whether the board keeps its players' values in homes
    /// ([`crate::layout::keys::tally_home`]): a `range` board of `last` or `sum`.
    pub fn keeps_homes(&self) -> bool {
        self.layout == RecordedLayout::Range && self.rules.operator.exactly_once()
    }

    /// A record with nothing but a layout.
    pub fn plain(layout: RecordedLayout) -> Self {
        Self { layout, migration: None, previous: None, retired: Vec::new(), rules: Rules::default() }
    }

    /// Parses a stored record: a bare layout name or the JSON form.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for anything else.
    pub fn parse(raw: &str) -> Result<Self> {
        let parsed = if raw.starts_with('{') {
            serde_json::from_str(raw).map_err(|e| e.to_string())
        } else {
            raw.parse().map(Self::plain).map_err(|e| e.to_string())
        };
        parsed.map_err(|e| Error::Corrupt(format!("layout record {raw:?}: {e}")))
    }

    /// The stored form: the bare layout name when there is nothing else to say.
    pub fn to_stored(&self) -> String {
        if self.migration.is_none() && self.previous.is_none() && self.retired.is_empty() && self.rules.is_default() {
            self.layout.to_string()
        } else {
            serde_json::to_string(self).unwrap_or_default()
        }
    }

    /// Every layout a write must reach: the current one, the migration's
    /// target, and retired layouts not yet being deleted (readers may still be on them).
    pub fn write_set(&self) -> Vec<RecordedLayout> {
        let mut set = vec![self.layout];
        let retired = self.retired.iter().filter(|r| !r.deleting).map(|r| r.layout);
        let others = self.migration.iter().map(|m| m.to).chain(retired);
        for layout in others {
            if !set.contains(&layout) {
                set.push(layout);
            }
        }
        set
    }

    /// Whether a process configured with `configured` may use the board.
    pub fn accepts(&self, configured: RecordedLayout) -> bool {
        self.layout == configured
            || self.migration.as_ref().is_some_and(|m| m.to == configured)
            || self.previous == Some(configured)
    }
}

/// The board's record, if any.
///
/// # Errors
/// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for an unreadable record.
pub async fn recorded(store: &Store, board: &BoardId) -> Result<Option<BoardRecord>> {
    Ok(load(store, board).await?.map(|(record, _)| record))
}

/// The board's record and its exact stored text (compare-and-set needs it).
pub(crate) async fn load(store: &Store, board: &BoardId) -> Result<Option<(BoardRecord, String)>> {
    let raw: Option<String> = store.query(redis::cmd("GET").arg(keys::layout(board))).await?;
    raw.map(|raw| Ok((BoardRecord::parse(&raw)?, raw))).transpose()
}

/// Replaces the record if it is still `expected_raw`; returns whether it did.
pub(crate) async fn compare_and_set(
    store: &Store,
    board: &BoardId,
    expected_raw: &str,
    next: &BoardRecord,
) -> Result<bool> {
    crate::layout::range::meta::compare_and_set_raw(store, &keys::layout(board), expected_raw, &next.to_stored()).await
}

/// Sets `board`'s rules. A board without a record is created with `layout`
/// and the rules (listed in `lb:boards`); an existing board keeps its layout
/// and may change its bounds, but not its order or ties ([`leaderboard_semantics::rules`]).
/// Returns the record now stored.
///
/// # Errors
/// [`Error::InvalidRules`] for bounds that cannot hold; [`Error::RulesFixed`]
/// when order or ties differ from the board's; [`Error::Contended`] when the
/// record kept changing; [`Error::Redis`] when Redis fails.
pub async fn set_rules(store: &Store, board: &BoardId, layout: RecordedLayout, rules: Rules) -> Result<BoardRecord> {
    Ok(set_rules_reporting(store, board, layout, rules).await?.0)
}

/// [`set_rules`], also saying whether it created the board.
pub(crate) async fn set_rules_reporting(
    store: &Store,
    board: &BoardId,
    layout: RecordedLayout,
    rules: Rules,
) -> Result<(BoardRecord, bool)> {
    rules.validate()?;
    for _ in 0..8 {
        match load(store, board).await? {
            None => {
                let record = BoardRecord { rules, ..BoardRecord::plain(layout) };
                let created: Option<String> =
                    store.query(redis::cmd("SET").arg(keys::layout(board)).arg(record.to_stored()).arg("NX")).await?;
                if created.is_some() {
                    list(store, board, &rules).await?;
                    return Ok((record, true));
                }
            }
            Some((record, raw)) => {
                if !record.rules.same_storage(&rules) {
                    return Err(Error::RulesFixed {
                        board: board.to_string(),
                        recorded: format!(
                            "order {}, ties {} and operator {}",
                            record.rules.order, record.rules.ties, record.rules.operator
                        ),
                    });
                }
                if let Some(recorded) = record.rules.reset.filter(|r| rules.reset != Some(*r)) {
                    return Err(Error::ResetFixed { board: board.to_string(), recorded: recorded.to_string() });
                }
                let next = BoardRecord { rules, ..record };
                if compare_and_set(store, board, &raw, &next).await? {
                    list(store, board, &rules).await?;
                    return Ok((next, false));
                }
            }
        }
    }
    Err(Error::Contended(board.to_string()))
}

/// Lists a board in `lb:boards` and, with a reset schedule, in
/// [`keys::SEASONAL_BOARDS`] (seasons are listed by their board's registry, not here).
async fn list(store: &Store, board: &BoardId, rules: &Rules) -> Result<()> {
    if board.is_season() {
        return Ok(());
    }
    let _: i64 = store.query(redis::cmd("SADD").arg(BOARDS_KEY).arg(board.as_str())).await?;
    if rules.reset.is_some() {
        let _: i64 = store.query(redis::cmd("SADD").arg(keys::SEASONAL_BOARDS).arg(board.as_str())).await?;
    }
    Ok(())
}

/// Every board with a recorded layout, sorted by name.
///
/// # Errors
/// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for a name that is not a valid board.
pub async fn boards(store: &Store) -> Result<Vec<BoardId>> {
    let names: Vec<String> = store.query(redis::cmd("SMEMBERS").arg(BOARDS_KEY)).await?;
    let mut boards = names
        .into_iter()
        .map(|n| BoardId::new(n.clone()).map_err(|_| Error::Corrupt(format!("{BOARDS_KEY} holds {n:?}"))))
        .collect::<Result<Vec<_>>>()?;
    boards.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(boards)
}

#[derive(Debug)]
struct Cached {
    record: Arc<BoardRecord>,
    read_at: Instant,
}

/// The records one router has read, checked against its configured layout.
#[derive(Debug)]
pub(crate) struct Records {
    configured: RecordedLayout,
    any_layout: bool,
    boards: DashMap<BoardId, Cached>,
}

impl Records {
    /// Records checked against `configured`, unless `any_layout` ([`crate::RouterOptions::any_layout`]).
    pub(crate) fn new(configured: RecordedLayout, any_layout: bool) -> Self {
        Self { configured, any_layout, boards: DashMap::new() }
    }

    /// The record a read follows: the cached one while younger than
    /// [`RECORD_TTL`], else read again. `None` (and nothing cached) when the
    /// board has no record.
    pub(crate) async fn for_read(&self, store: &Store, board: &BoardId) -> Result<Option<Arc<BoardRecord>>> {
        if let Some(cached) = self.fresh(board) {
            return Ok(Some(cached));
        }
        if let Some((record, _)) = load(store, board).await? {
            return self.keep(board, record).map(Some);
        }
        self.boards.remove(board);
        Ok(None)
    }

    /// The record a write starts from: the cached one while young, else
    /// [`Records::reload_for_write`].
    pub(crate) async fn for_write(&self, store: &Store, board: &BoardId) -> Result<Arc<BoardRecord>> {
        match self.fresh(board) {
            Some(cached) => Ok(cached),
            None => self.reload_for_write(store, board).await,
        }
    }

    /// Reads the record now, recording the configured layout for a new board
    /// (`SET NX GET`) and listing it in `lb:boards`. A season is never created
    /// here ([`crate::board::seasons`] creates it with its board's layout):
    /// [`Error::NoSeason`] when it has no record (it was removed, or never opened).
    pub(crate) async fn reload_for_write(&self, store: &Store, board: &BoardId) -> Result<Arc<BoardRecord>> {
        if board.is_season() {
            let Some((record, _)) = load(store, board).await? else {
                self.boards.remove(board);
                return Err(Error::NoSeason(board.to_string()));
            };
            return self.keep(board, record);
        }
        let mine = BoardRecord::plain(self.configured);
        let previous: Option<String> =
            store.query(redis::cmd("SET").arg(keys::layout(board)).arg(mine.to_stored()).arg("NX").arg("GET")).await?;
        let record = previous.as_deref().map(BoardRecord::parse).transpose()?.unwrap_or(mine);
        let known = self.boards.contains_key(board);
        let record = self.keep(board, record)?;
        if !known {
            // Listed by every writer the first time it meets the board, so a writer that
            // died between recording and listing leaves no board unlisted for long.
            let _: i64 = store.query(redis::cmd("SADD").arg(BOARDS_KEY).arg(board.as_str())).await?;
        }
        Ok(record)
    }

    fn fresh(&self, board: &BoardId) -> Option<Arc<BoardRecord>> {
        let cached = self.boards.get(board)?;
        (cached.read_at.elapsed() < RECORD_TTL).then(|| cached.record.clone())
    }

    /// Checks `record` against the configured layout and caches it.
    fn keep(&self, board: &BoardId, record: BoardRecord) -> Result<Arc<BoardRecord>> {
        // A season keeps the layout its board had when it opened, whatever routers are configured with since.
        if !board.is_season() && !self.any_layout && !record.accepts(self.configured) {
            self.boards.remove(board);
            return Err(Error::LayoutMismatch {
                board: board.to_string(),
                recorded: record.layout.to_string(),
                configured: self.configured.to_string(),
            });
        }
        if self.boards.len() >= MAX_CACHED {
            self.boards.clear();
        }
        let record = Arc::new(record);
        self.boards.insert(board.clone(), Cached { record: record.clone(), read_at: Instant::now() });
        Ok(record)
    }

    /// Forgets `board` (its record changed: a migration, a deletion).
    pub(crate) fn forget(&self, board: &BoardId) {
        self.boards.remove(board);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(s: &str) -> RecordedLayout {
        s.parse().expect("layout")
    }

    #[test]
    fn records_what_decides_the_keys() {
        assert_eq!(RecordedLayout::of(&"single".parse().expect("spec")).to_string(), "single");
        assert_eq!(RecordedLayout::of(&"hash:16".parse().expect("spec")).to_string(), "hash:16");
        assert_eq!(RecordedLayout::of(&"range:10,20".parse().expect("spec")).to_string(), "range");
        assert_eq!(RecordedLayout::of(&"range:5".parse().expect("spec")), RecordedLayout::Range, "boundaries move");
        assert!("range:5".parse::<RecordedLayout>().is_err());
        assert!("tree".parse::<RecordedLayout>().is_err());
    }

    #[test]
    fn plain_records_stay_bare_names_and_others_round_trip() {
        let plain = BoardRecord::plain(layout("hash:4"));
        assert_eq!(plain.to_stored(), "hash:4");
        assert_eq!(BoardRecord::parse("hash:4").expect("bare"), plain);
        let moving = BoardRecord {
            layout: layout("single"),
            migration: Some(LayoutMigration { to: layout("range"), key: 0, cursor: 12 }),
            previous: Some(layout("hash:4")),
            retired: vec![RetiredLayout { layout: layout("hash:4"), retired_at_ms: 7, deleting: false }],
            rules: Rules::default(),
        };
        let ruled = BoardRecord { rules: Rules { min_score: 3, ..Rules::default() }, ..plain.clone() };
        assert_eq!(BoardRecord::parse(&ruled.to_stored()).expect("json"), ruled, "rules make the record JSON");
        assert_eq!(BoardRecord::parse(&moving.to_stored()).expect("json"), moving);
        assert!(BoardRecord::parse("{nonsense").is_err());
        assert!(BoardRecord::parse("hash:0").is_err());
    }

    #[test]
    fn writes_reach_every_listed_layout_once_and_configs_around_a_migration_are_accepted() {
        let record = BoardRecord {
            layout: layout("hash:8"),
            migration: None,
            previous: Some(layout("single")),
            retired: vec![RetiredLayout { layout: layout("single"), retired_at_ms: 1, deleting: false }],
            rules: Rules::default(),
        };
        assert_eq!(record.write_set(), [layout("hash:8"), layout("single")]);
        let deleting = BoardRecord {
            retired: vec![RetiredLayout { layout: layout("single"), retired_at_ms: 1, deleting: true }],
            ..record.clone()
        };
        assert_eq!(deleting.write_set(), [layout("hash:8")], "keys being deleted get no more writes");
        assert!(record.accepts(layout("hash:8")) && record.accepts(layout("single")));
        assert!(!record.accepts(layout("range")) && !record.accepts(layout("hash:4")));
        let migrating = BoardRecord {
            migration: Some(LayoutMigration { to: layout("range"), key: 3, cursor: 0 }),
            ..BoardRecord::plain(layout("single"))
        };
        assert_eq!(migrating.write_set(), [layout("single"), layout("range")]);
        assert!(migrating.accepts(layout("range")) && !migrating.accepts(layout("hash:8")));
    }
}
