//! The `range` layout's metadata: boundaries, generation and rebalance progress.
//!
//! Stored as JSON in `lb:{<board>}:range` and changed only by compare-and-set,
//! so concurrent rebalancers cannot overwrite each other. Writers and readers
//! cache it and re-check it (see [`crate::layout::range`]).

use serde::{Deserialize, Serialize};

use crate::connection::store::Store;
use crate::{Error, Result};

/// The boundaries of one generation of shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// Generation number; shard keys carry it.
    pub generation: u64,
    /// Lower bounds of shards 1.., strictly increasing.
    pub boundaries: Vec<u64>,
}

impl Generation {
    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.boundaries.len() + 1
    }

    /// The shard that holds `score`.
    pub fn shard_of(&self, score: u64) -> usize {
        self.boundaries.partition_point(|&b| b <= score)
    }

    /// The score range `[min, max]` of shard `index`; `max` is `None` for the top shard.
    pub fn range_of(&self, index: usize) -> (u64, Option<u64>) {
        let min = if index == 0 { 0 } else { self.boundaries[index - 1] };
        (min, self.boundaries.get(index).map(|b| b - 1))
    }
}

/// A rebalance in progress: the next generation and how far the copy got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    /// The generation being filled.
    pub target: Generation,
    /// The source shard the copy is at; shards below it are copied.
    pub shard: usize,
    /// The `ZSCAN` cursor inside that shard.
    pub cursor: u64,
}

/// A generation a rebalance replaced: its keys are deleted once no read can still be using them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    /// The replaced generation.
    pub generation: Generation,
    /// When it stopped being active, in milliseconds since the Unix epoch.
    pub retired_at_ms: u64,
}

/// The metadata of one board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeMeta {
    /// The generation readers use.
    pub active: Generation,
    /// A rebalance in progress, if any; writers write to both generations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<Migration>,
    /// Replaced generations whose keys are not deleted yet (reads may still be on them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<Retired>,
}

impl RangeMeta {
    /// The generations a writer must write to.
    pub fn write_generations(&self) -> impl Iterator<Item = &Generation> {
        std::iter::once(&self.active).chain(self.migration.as_ref().map(|m| &m.target))
    }

    /// The numbers of the generations a writer must write to: two metadata
    /// values with the same numbers need the same writes, whatever the
    /// rebalance's scan position.
    pub fn write_set(&self) -> Vec<u64> {
        self.write_generations().map(|g| g.generation).collect()
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn from_json(raw: &str) -> Result<Self> {
        serde_json::from_str(raw).map_err(|e| Error::Corrupt(format!("range metadata {raw:?}: {e}")))
    }
}

/// Compare-and-set: replace the value only if it still equals `expected`.
const CAS: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
";

/// A board's metadata as read: parsed, and the exact stored text (compare-and-set needs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedMeta {
    /// The metadata.
    pub meta: RangeMeta,
    /// The stored JSON it was parsed from.
    pub raw: String,
}

impl LoadedMeta {
    fn parse(raw: String) -> Result<Self> {
        Ok(Self { meta: RangeMeta::from_json(&raw)?, raw })
    }
}

/// Reads the board's metadata; `None` when the board has none (it does not exist).
pub(crate) async fn load(store: &Store, key: &str) -> Result<Option<LoadedMeta>> {
    let raw: Option<String> = store.query(redis::cmd("GET").arg(key)).await?;
    raw.map(LoadedMeta::parse).transpose()
}

/// Reads the board's metadata, creating it from `initial` boundaries when
/// absent (writers only: a read never creates a board).
pub(crate) async fn load_or_create(store: &Store, key: &str, initial: &[u64]) -> Result<LoadedMeta> {
    if let Some(loaded) = load(store, key).await? {
        return Ok(loaded);
    }
    let fresh = RangeMeta {
        active: Generation { generation: 0, boundaries: initial.to_vec() },
        migration: None,
        retired: Vec::new(),
    };
    let _: Option<String> = store.query(redis::cmd("SET").arg(key).arg(fresh.to_json()).arg("NX")).await?;
    load(store, key).await?.ok_or_else(|| Error::Corrupt(format!("{key} vanished right after creation")))
}

/// Replaces the metadata if it is still `expected_raw`; returns whether it did.
pub(crate) async fn compare_and_set(store: &Store, key: &str, expected_raw: &str, next: &RangeMeta) -> Result<bool> {
    compare_and_set_raw(store, key, expected_raw, &next.to_json()).await
}

/// Replaces the string at `key` by `next` if it is still `expected`; returns whether it did.
pub(crate) async fn compare_and_set_raw(store: &Store, key: &str, expected: &str, next: &str) -> Result<bool> {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(CAS).arg(1).arg(key).arg(expected).arg(next);
    let swapped: i64 = store.query(&cmd).await?;
    Ok(swapped == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_of_and_ranges_agree() {
        let g = Generation { generation: 0, boundaries: vec![10, 100] };
        assert_eq!((g.shard_of(0), g.shard_of(9), g.shard_of(10), g.shard_of(99), g.shard_of(100)), (0, 0, 1, 1, 2));
        assert_eq!(g.range_of(0), (0, Some(9)));
        assert_eq!(g.range_of(1), (10, Some(99)));
        assert_eq!(g.range_of(2), (100, None));
        assert_eq!(Generation { generation: 0, boundaries: vec![] }.shard_of(5), 0);
    }

    #[test]
    fn meta_round_trips_json() {
        let mut m = RangeMeta {
            active: Generation { generation: 1, boundaries: vec![5] },
            migration: Some(Migration {
                target: Generation { generation: 2, boundaries: vec![3, 9] },
                shard: 1,
                cursor: 77,
            }),
            retired: vec![Retired { generation: Generation { generation: 0, boundaries: vec![] }, retired_at_ms: 9 }],
        };
        assert_eq!(RangeMeta::from_json(&m.to_json()).expect("valid"), m);
        assert_eq!(m.write_generations().count(), 2);
        // The rebalancer moving on changes the JSON, not what writers must do.
        let before = m.write_set();
        if let Some(migration) = m.migration.as_mut() {
            migration.cursor = 4242;
            migration.shard = 2;
        }
        assert_eq!(m.write_set(), before);
        assert_eq!(before, [1, 2]);
        // Metadata written before `retired` existed still reads.
        let old = r#"{"active":{"generation":3,"boundaries":[10]}}"#;
        assert!(RangeMeta::from_json(old).expect("old form").retired.is_empty());
    }
}
