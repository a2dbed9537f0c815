//! How far the store has applied the topic: the applied offsets, and how a
//! store that went back in time (a rollback) is told from the one processes knew.
//!
//! The epoch ([`crate::marker::epoch`]) notices a store that lost everything. A store
//! that comes back from an older persisted state keeps its epoch: a primary
//! restarted on an RDB file or on an `appendfsync everysec` AOF that missed
//! its last second, a replica promoted without the last writes, a restored VM
//! or managed backup. Its data is then behind the consumer group's committed
//! offsets, and nothing else says so.
//!
//! So every node keeps, in the hash `lb:applied` (one copy per Cluster
//! primary, beside the epoch's copy and in its slot), the offset after the
//! last record applied, per `<topic>:<partition>`. Ingest advances it on
//! every primary after each batch's effects are acknowledged and before the
//! batch's offsets are stored, and the replicas confirm it with the batch
//! (`WAIT`). A node's persisted state is a prefix of the commands it ran, and
//! a replica's is a prefix of its primary's, so whatever state a node comes
//! back from holds every effect up to its own applied offsets. Hence, on an
//! intact store, every node's applied offset is at least the group's
//! committed offset; a node below it has forgotten acknowledged records: the
//! store is lost ([`crate::marker::epoch::mark_lost`]).
//!
//! The applied offsets only grow ([`advance`] keeps the larger), so a worker
//! that lost its partition in a rebalance cannot lower them. A partition with
//! no applied offset yet on a node is not judged: a new deployment writes 0
//! for every partition when it creates its epoch ([`init`]), so only a store
//! upgraded from a version without applied offsets has that gap, until its
//! next batch on each partition.
//!
//! After a rollback, `lb-admin catch-up` replays the topic from the lowest
//! applied offset of each partition ([`lowest`]): no snapshot is needed.
//! The same offsets, kept atomically with each board's effects, are what
//! exactly-once operators build on (docs/ingest.md).

use std::collections::BTreeMap;

use redis::{Pipeline, Value};

use crate::connection::reply::{as_array, as_bytes};
use crate::connection::store::Store;
use crate::{Error, Result};

/// The hash's key (on a Cluster, the base of one key per primary).
pub const KEY: &str = "lb:applied";

/// Offsets by partition.
pub type Offsets = BTreeMap<i32, i64>;

/// One partition's progress to record after a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The partition.
    pub partition: i32,
    /// The offset after the batch's last record of it.
    pub next: i64,
    /// An offset known to be applied already (committed, or stored by this
    /// worker): a node whose applied offset is below it went back in time.
    /// `None`: nothing known.
    pub floor: Option<i64>,
}

/// A node whose applied offset of a partition is below what is known applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Behind {
    /// The partition.
    pub partition: i32,
    /// The node's applied offset.
    pub applied: i64,
    /// The offset known applied (committed).
    pub expected: i64,
}

/// What [`advance`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advanced {
    /// Every node holds the epoch asked for and none was behind: the marks are recorded.
    Recorded,
    /// A node is behind: nothing was recorded there.
    Behind(Behind),
    /// A node does not hold the epoch asked for: nothing was recorded there
    /// (the caller judges the epoch, [`crate::marker::epoch::read`]).
    OtherEpoch,
}

/// Records `marks` of `topic` on every primary, keeping the larger offset,
/// where that primary holds the epoch `epoch_id` (any, or none, when `None`:
/// a recovery's replay into a lost store) and no mark's floor is above the
/// node's applied offset.
///
/// # Errors
/// [`Error::Redis`] when a node fails.
pub async fn advance(store: &Store, topic: &str, marks: &[Mark], epoch_id: Option<&str>) -> Result<Advanced> {
    let keys = node_keys(store).await?;
    let pipes: Vec<Pipeline> = keys
        .iter()
        .map(|[applied, epoch]| {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(ADVANCE).arg(2).arg(applied).arg(epoch).arg(epoch_id.unwrap_or(""));
            for m in marks {
                cmd.arg(field(topic, m.partition)).arg(m.floor.unwrap_or(-1)).arg(m.next);
            }
            let mut pipe = redis::pipe();
            pipe.add_command(cmd);
            pipe
        })
        .collect();
    let mut outcome = Advanced::Recorded;
    for replies in store.run_all(&pipes).await? {
        match replies.into_iter().next() {
            Some(Value::Int(0)) => outcome = Advanced::OtherEpoch,
            Some(Value::Int(_)) => {}
            Some(v) => {
                let behind = as_array(v)?;
                let mut it = behind.into_iter();
                let (Some(partition), Some(applied), Some(expected)) = (it.next(), it.next(), it.next()) else {
                    return Err(Error::Corrupt(format!("{KEY}: a short reply")));
                };
                return Ok(Advanced::Behind(Behind {
                    partition: int(partition)? as i32,
                    applied: int(applied)?,
                    expected: int(expected)?,
                }));
            }
            None => return Err(Error::Corrupt(format!("{KEY}: no reply"))),
        }
    }
    Ok(outcome)
}

/// Records, for every partition in `partitions` without one, applied offset 0
/// on every primary (a new deployment's start: nothing applied yet, so a
/// rollback to before its first batch is noticed too).
///
/// # Errors
/// [`Error::Redis`] when a node fails.
pub async fn init(store: &Store, topic: &str, partitions: &[i32]) -> Result<()> {
    if partitions.is_empty() {
        return Ok(());
    }
    for [applied, _] in node_keys(store).await? {
        let mut pipe = redis::pipe();
        for &p in partitions {
            pipe.cmd("HSETNX").arg(&applied).arg(field(topic, p)).arg(0).ignore();
        }
        store.run(&pipe).await?;
    }
    Ok(())
}

/// Forgets every applied offset on every primary (`lb-admin epoch --adopt`:
/// the store as it is now is accepted, and answers for no offset until the
/// next batch of each partition records it again).
///
/// # Errors
/// [`Error::Redis`] when a node fails.
pub async fn forget(store: &Store) -> Result<()> {
    for [applied, _] in node_keys(store).await? {
        let _: i64 = store.query(redis::cmd("DEL").arg(applied)).await?;
    }
    Ok(())
}

/// The applied offsets of `topic` on each primary (partitions without one absent).
///
/// # Errors
/// [`Error::Redis`] when a node fails; [`Error::Corrupt`] for a value that is not an offset.
pub async fn read(store: &Store, topic: &str) -> Result<Vec<Offsets>> {
    let keys = node_keys(store).await?;
    let pipes: Vec<Pipeline> = keys
        .iter()
        .map(|[applied, _]| {
            let mut pipe = redis::pipe();
            pipe.cmd("HGETALL").arg(applied);
            pipe
        })
        .collect();
    let prefix = format!("{topic}:");
    let mut nodes = Vec::with_capacity(keys.len());
    for replies in store.run_all(&pipes).await? {
        let mut offsets = Offsets::new();
        let pairs = as_array(replies.into_iter().next().unwrap_or(Value::Nil)).unwrap_or_default();
        let mut it = pairs.into_iter();
        while let (Some(name), Some(value)) = (it.next(), it.next()) {
            let name = String::from_utf8(as_bytes(name)?).map_err(|_| Error::Corrupt(format!("{KEY}: a field")))?;
            let Some(partition) = name.strip_prefix(&prefix).and_then(|p| p.parse::<i32>().ok()) else { continue };
            offsets.insert(partition, int(value)?);
        }
        nodes.push(offsets);
    }
    Ok(nodes)
}

/// The lowest applied offset of each partition over every primary: where a
/// replay must start so that every node has every record. `None` when a
/// primary has none of the topic (it was wiped, not rolled back).
///
/// # Errors
/// As [`read`].
pub async fn lowest(store: &Store, topic: &str) -> Result<Option<Offsets>> {
    Ok(lowest_of(&read(store, topic).await?))
}

fn lowest_of(nodes: &[Offsets]) -> Option<Offsets> {
    if nodes.is_empty() || nodes.iter().any(BTreeMap::is_empty) {
        return None;
    }
    let mut lowest = Offsets::new();
    for node in nodes {
        for (&p, &o) in node {
            lowest.entry(p).and_modify(|l: &mut i64| *l = (*l).min(o)).or_insert(o);
        }
    }
    // A partition some node never recorded: that node holds none of it.
    for node in nodes {
        for (p, l) in &mut lowest {
            if !node.contains_key(p) {
                *l = 0;
            }
        }
    }
    Some(lowest)
}

/// The first partition whose applied offset on some node is below `committed`.
pub fn first_behind(nodes: &[Offsets], committed: &Offsets) -> Option<Behind> {
    nodes.iter().find_map(|node| {
        committed.iter().find_map(|(&partition, &expected)| {
            let applied = *node.get(&partition)?;
            (applied < expected).then_some(Behind { partition, applied, expected })
        })
    })
}

/// The hash field of `topic`'s `partition`.
fn field(topic: &str, partition: i32) -> String {
    format!("{topic}:{partition}")
}

/// Each primary's (applied, epoch) keys: the same hash tag, so one script reads both.
async fn node_keys(store: &Store) -> Result<Vec<[String; 2]>> {
    crate::connection::node::per_primary_each(store, [KEY, crate::marker::epoch::KEY]).await
}

fn int(v: Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(i),
        other => std::str::from_utf8(&as_bytes(other)?)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::Corrupt(format!("{KEY}: a value that is not an offset"))),
    }
}

/// KEYS: the applied hash, the epoch copy of the same node. ARGV: the epoch id
/// required (empty: any), then (field, floor or -1, next) triples. Returns 0
/// when the node holds another epoch (nothing written), the first (partition,
/// applied, floor) behind its floor (nothing written), else 1 (each field
/// raised to `next` where lower or missing).
const ADVANCE: &str = r"
if ARGV[1] ~= '' then
  local copy = redis.call('GET', KEYS[2])
  if not copy then return 0 end
  local ok, epoch = pcall(cjson.decode, copy)
  if not ok or type(epoch) ~= 'table' or epoch['id'] ~= ARGV[1] then return 0 end
end
for i = 2, #ARGV, 3 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  local floor = tonumber(ARGV[i + 1])
  if cur and floor >= 0 and cur < floor then
    local partition = string.match(ARGV[i], ':(%-?%d+)$')
    return {tonumber(partition), cur, floor}
  end
end
for i = 2, #ARGV, 3 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  local next = tonumber(ARGV[i + 2])
  if not cur or cur < next then redis.call('HSET', KEYS[1], ARGV[i], next) end
end
return 1
";

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(pairs: &[(i32, i64)]) -> Offsets {
        pairs.iter().copied().collect()
    }

    #[test]
    fn the_lowest_offsets_start_where_every_node_has_every_record() {
        let nodes = [offsets(&[(0, 10), (1, 7)]), offsets(&[(0, 4), (1, 9)])];
        assert_eq!(lowest_of(&nodes), Some(offsets(&[(0, 4), (1, 7)])));
        assert_eq!(lowest_of(&[offsets(&[(0, 10), (1, 7)]), offsets(&[(0, 4)])]), Some(offsets(&[(0, 4), (1, 0)])));
        assert_eq!(lowest_of(&[offsets(&[(0, 10)]), Offsets::new()]), None, "a wiped node");
        assert_eq!(lowest_of(&[]), None);
    }

    #[test]
    fn a_node_below_the_committed_offsets_is_behind() {
        let nodes = [offsets(&[(0, 10), (1, 7)]), offsets(&[(0, 10), (1, 3)])];
        assert_eq!(
            first_behind(&nodes, &offsets(&[(0, 10), (1, 7)])),
            Some(Behind { partition: 1, applied: 3, expected: 7 })
        );
        assert_eq!(first_behind(&nodes, &offsets(&[(0, 9), (1, 3)])), None);
        assert_eq!(
            first_behind(&nodes, &offsets(&[(2, 100)])),
            None,
            "a partition without an applied offset is not judged"
        );
    }
}
