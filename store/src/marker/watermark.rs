//! The freshness watermark: what ingest promises has been applied, stored next to the data.
//!
//! Ingest claims, per Kafka partition, a time `T` such that every record of
//! the partition with a timestamp earlier than `T` is applied (the contract's
//! `as_of`, docs/contract.md#freshness). It writes the claims into one hash per source topic
//! (`lb:watermark:<topic>`): field `<partition>`, value `T` in milliseconds,
//! plus the field `partitions` (how many the topic has), **after** the writes
//! they cover were acknowledged. The api dates every answer with the smallest
//! claim, and claims nothing while any partition has none.
//!
//! The hash lives in Redis itself, beside the data, so a replica's copy of it
//! is exactly as old as that replica's copy of the data: reading the
//! watermark through the connection the data is read through dates an answer
//! from a lagging replica by the replica's state, with no clock comparison.
//! On a Redis Cluster each primary has its own copy (a key whose hash tag
//! falls in one of that primary's slots), because replication is per node:
//! the answer's date is the smallest claim over every node.
//!
//! A claim stays true once made (what was applied stays applied, short of a
//! Redis data loss), so claims may be written by any worker in any order.
//! Only partitions below `partitions` count, so a topic that shrank (deleted
//! and created again) leaves no stale claim holding the minimum back.

use std::collections::BTreeMap;

use redis::{Pipeline, Value};

use crate::connection::node::per_primary;
use crate::connection::reply::{as_array, as_bytes};
use crate::connection::store::Store;
use crate::{Error, Result};

/// The prefix of the hashes' keys.
pub const KEY_PREFIX: &str = "lb:watermark";

/// The field holding the topic's partition count.
const PARTITIONS_FIELD: &str = "partitions";

/// One partition's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The partition.
    pub partition: i32,
    /// Every record of the partition with a timestamp earlier than this (ms since the epoch) is applied.
    pub applied_before_ms: i64,
}

/// The keys `topic`'s watermark is kept under: one, or one per cluster primary.
///
/// # Errors
/// [`Error::Redis`] when the cluster's slot map cannot be read.
pub async fn keys(store: &Store, topic: &str) -> Result<Vec<String>> {
    per_primary(store, &format!("{KEY_PREFIX}:{topic}")).await
}

/// Writes `claims` about `topic`, which has `partitions` partitions, to
/// every copy of its watermark. Call only after the writes the claims cover
/// were acknowledged.
///
/// # Errors
/// [`Error::Redis`] when a node fails.
pub async fn publish(store: &Store, topic: &str, partitions: u32, claims: &[Claim]) -> Result<()> {
    if claims.is_empty() {
        return Ok(());
    }
    let pipes: Vec<Pipeline> = keys(store, topic)
        .await?
        .iter()
        .map(|key| {
            let mut pipe = redis::pipe();
            let cmd = pipe.cmd("HSET").arg(key).arg(PARTITIONS_FIELD).arg(partitions);
            for claim in claims {
                cmd.arg(claim.partition).arg(claim.applied_before_ms);
            }
            pipe.ignore();
            pipe
        })
        .collect();
    store.run_all(&pipes).await?;
    Ok(())
}

/// The smallest claim about `topic` over every copy, read through `store`
/// (so through the replicas its read policy routes to); `None` while some
/// copy lacks a claim for one of the topic's partitions.
///
/// # Errors
/// [`Error::Redis`] when a node fails; [`Error::Corrupt`] for a field that is not a number.
pub async fn read(store: &Store, topic: &str) -> Result<Option<i64>> {
    let pipes: Vec<Pipeline> = keys(store, topic)
        .await?
        .iter()
        .map(|key| {
            let mut pipe = redis::pipe();
            pipe.cmd("HGETALL").arg(key);
            pipe
        })
        .collect();
    let mut smallest: Option<i64> = None;
    for replies in store.run_all(&pipes).await? {
        let Some(copy) = smallest_claim(replies.into_iter().next().unwrap_or(Value::Nil))? else { return Ok(None) };
        smallest = Some(smallest.map_or(copy, |s| s.min(copy)));
    }
    Ok(smallest)
}

/// The smallest claim of one copy (an `HGETALL` reply), if every partition has one.
fn smallest_claim(reply: Value) -> Result<Option<i64>> {
    let number = |v: Value| -> Result<i64> {
        let bytes = as_bytes(v)?;
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| Error::Corrupt("a watermark field is not a number".into()))
    };
    let mut partitions: Option<i64> = None;
    let mut claims: BTreeMap<i64, i64> = BTreeMap::new();
    let fields = match reply {
        Value::Map(pairs) => pairs,
        other => {
            let mut flat = as_array(other)?.into_iter();
            std::iter::from_fn(|| Some((flat.next()?, flat.next()?))).collect()
        }
    };
    for (field, value) in fields {
        let field = as_bytes(field)?;
        if field == PARTITIONS_FIELD.as_bytes() {
            partitions = Some(number(value)?);
        } else {
            let partition = number(Value::BulkString(field))?;
            claims.insert(partition, number(value)?);
        }
    }
    let Some(partitions) = partitions else { return Ok(None) };
    let mut smallest: Option<i64> = None;
    for partition in 0..partitions {
        let Some(&claim) = claims.get(&partition) else { return Ok(None) };
        smallest = Some(smallest.map_or(claim, |s| s.min(claim)));
    }
    Ok(smallest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_claims_only_when_every_partition_has_a_claim() {
        let reply = |fields: &[(&str, &str)]| {
            Value::Array(
                fields
                    .iter()
                    .flat_map(|(f, v)| {
                        [Value::BulkString(f.as_bytes().to_vec()), Value::BulkString(v.as_bytes().to_vec())]
                    })
                    .collect(),
            )
        };
        assert_eq!(smallest_claim(reply(&[("partitions", "2"), ("0", "50"), ("1", "40")])).unwrap(), Some(40));
        assert_eq!(smallest_claim(reply(&[("partitions", "2"), ("0", "50")])).unwrap(), None, "partition 1 unclaimed");
        assert_eq!(
            smallest_claim(reply(&[("partitions", "1"), ("0", "50"), ("7", "1")])).unwrap(),
            Some(50),
            "a partition the topic no longer has does not count"
        );
        assert_eq!(smallest_claim(reply(&[("0", "50")])).unwrap(), None, "partition count unknown");
        assert_eq!(smallest_claim(Value::Array(vec![])).unwrap(), None);
        assert!(smallest_claim(reply(&[("partitions", "x")])).is_err());
    }
}
