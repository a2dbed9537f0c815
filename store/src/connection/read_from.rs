//! Where reads go: the primary, or its replicas.
//!
//! Replicas take the read-heavy load (ranks, pages, the top-N refresh) off
//! the primary that ingest writes to. Their data lags the primary by the
//! replication delay; the answers say so through `as_of`, because the
//! watermark they are dated by is read from the same nodes (see
//! [`crate::marker::watermark`]).

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The read policy of a connection (the api's `--read-from`).
///
/// | policy | Sentinel group | Redis Cluster | single URL |
/// |---|---|---|---|
/// | `primary` | the primary | each slot's primary | the server |
/// | `replica` | a replica; none reachable: error (503) | a replica of each slot¹ | refused at start |
/// | `prefer-replica` | a replica; none reachable: the primary, and back to a replica once one answers | a replica of each slot¹ | the server |
///
/// ¹ Always the same replica of a slot ([`StickyReplica`]). The cluster
/// client sends a slot's reads to its primary when the slot has no replica
/// in the cluster's topology; `replica` cannot refuse that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// Every read goes to the primary: the freshest data, no load taken off it.
    Primary,
    /// Reads go to replicas only.
    Replica,
    /// Reads go to a replica, to the primary while none is available.
    #[default]
    PreferReplica,
}

impl ReadFrom {
    /// Whether reads may be served by replicas.
    pub const fn uses_replicas(self) -> bool {
        !matches!(self, Self::Primary)
    }

    /// The policy's name, as the flag spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Replica => "replica",
            Self::PreferReplica => "prefer-replica",
        }
    }
}

impl fmt::Display for ReadFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReadFrom {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "primary" => Ok(Self::Primary),
            "replica" => Ok(Self::Replica),
            "prefer-replica" => Ok(Self::PreferReplica),
            other => Err(Error::Config(format!("read policy {other:?} is not primary, replica or prefer-replica"))),
        }
    }
}

/// Cluster read routing: every read of a slot goes to the same replica (the
/// smallest address among its replicas), so the watermark copy read from a
/// node dates the data read from that node. Spreading a slot's reads over
/// several replicas would date data from one replica by another's copy.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StickyReplica;

impl redis::cluster_read_routing::ReadRoutingStrategy for StickyReplica {
    fn route_read<'a>(
        &self,
        candidates: &redis::cluster_read_routing::ReadCandidates<'a>,
    ) -> &'a redis::cluster::NodeAddress {
        use redis::cluster_read_routing::ReadCandidates;
        let replicas = match candidates {
            ReadCandidates::AnyNode(c) => c.replicas(),
            ReadCandidates::ReplicasOnly(c) => c.replicas(),
        };
        replicas.iter().min().unwrap_or_else(|| replicas.first())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_own_names() {
        for policy in [ReadFrom::Primary, ReadFrom::Replica, ReadFrom::PreferReplica] {
            assert_eq!(policy.as_str().parse::<ReadFrom>().expect("parses"), policy);
        }
        assert!("replicas".parse::<ReadFrom>().is_err());
        assert!(!ReadFrom::Primary.uses_replicas());
    }
}
