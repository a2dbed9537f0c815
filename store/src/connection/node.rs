//! Keys that must exist on every node: one copy per Cluster primary.
//!
//! Store-wide markers (the epoch, the loss note, applied offsets, the
//! watermark) describe the node they sit on, because a node can be wiped,
//! rolled back or lag alone. On a single Redis they are one key; on a Cluster
//! one key per primary, `<base>:{n}`, with `n` the first number whose slot
//! that primary serves. Paired keys share the hash tag, so one script on a
//! node can use them together.

use std::collections::BTreeMap;

use redis::Value;

use crate::connection::reply::{as_array, as_bytes};
use crate::connection::slot::slot_of;
use crate::connection::store::Store;
use crate::{Error, Result};

/// `base` on a single Redis; on a Cluster, one key per primary (`<base>:{n}`,
/// the first `n` whose slot that primary serves), in the order of the
/// primaries' addresses: for data that must be on every node.
///
/// # Errors
/// [`Error::Redis`] when the cluster's slot map cannot be read.
pub async fn per_primary(store: &Store, base: &str) -> Result<Vec<String>> {
    if !store.is_cluster() {
        return Ok(vec![base.to_string()]);
    }
    let slots: Value = store.query(redis::cmd("CLUSTER").arg("SLOTS")).await?;
    let ranges = primary_ranges(slots)?;
    ranges.values().map(|owned| key_in(base, owned)).collect()
}

/// [`per_primary`] for several bases with one read of the slot map: per
/// primary, one key per base, all in that primary's slot (the keys share the
/// hash tag), so one script on that node can use them together.
///
/// # Errors
/// [`Error::Redis`] when the cluster's slot map cannot be read.
pub async fn per_primary_each<const N: usize>(store: &Store, bases: [&str; N]) -> Result<Vec<[String; N]>> {
    let Some(first) = bases.first() else { return Ok(Vec::new()) };
    let keys = per_primary(store, first).await?;
    Ok(keys.iter().map(|key| bases.map(|base| format!("{base}{}", &key[first.len()..]))).collect())
}

/// The slot ranges each primary serves, by primary address.
fn primary_ranges(reply: Value) -> Result<BTreeMap<String, Vec<(u16, u16)>>> {
    let mut by_primary: BTreeMap<String, Vec<(u16, u16)>> = BTreeMap::new();
    for range in as_array(reply)? {
        let mut fields = as_array(range)?.into_iter();
        let (Some(Value::Int(start)), Some(Value::Int(end)), Some(primary)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(Error::Corrupt("CLUSTER SLOTS entry without a range and a primary".into()));
        };
        let mut node = as_array(primary)?.into_iter();
        let host = String::from_utf8_lossy(&as_bytes(node.next().unwrap_or(Value::Nil))?).into_owned();
        let Some(Value::Int(port)) = node.next() else {
            return Err(Error::Corrupt("CLUSTER SLOTS primary without a port".into()));
        };
        let (Ok(start), Ok(end)) = (u16::try_from(start), u16::try_from(end)) else {
            return Err(Error::Corrupt("CLUSTER SLOTS range out of bounds".into()));
        };
        by_primary.entry(format!("{host}:{port}")).or_default().push((start, end));
    }
    Ok(by_primary)
}

/// The first key `<base>:{n}` whose slot one of `owned` covers.
fn key_in(base: &str, owned: &[(u16, u16)]) -> Result<String> {
    // A primary may own a single slot: 2^20 candidates miss it with probability e^-64.
    (0..1_u32 << 20)
        .map(|n| format!("{base}:{{{n}}}"))
        .find(|key| {
            let slot = slot_of(key);
            owned.iter().any(|&(start, end)| (start..=end).contains(&slot))
        })
        .ok_or_else(|| Error::Corrupt("no key falls in a primary's slots".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_key_in_every_range() {
        for owned in [vec![(0, 5460)], vec![(5461, 10922)], vec![(10923, 16383)], vec![(42, 42)]] {
            let key = key_in("lb:watermark:scores", &owned).expect("a key");
            let slot = slot_of(&key);
            assert!(owned.iter().any(|&(a, b)| (a..=b).contains(&slot)), "{key} in {owned:?}");
        }
    }
}
