//! How many Redis replicas must acknowledge a batch before its offsets are stored.
//!
//! Redis replicates asynchronously: a write the primary acknowledged can be
//! lost when a replica that has not received it yet is promoted. `WAIT n`
//! after a batch blocks until `n` replicas confirm every write of the
//! connection so far. Sentinel promotes the replica with the largest offset it
//! *last saw*, which can be a second old, so waiting for one replica of two
//! does not make every acknowledged batch survive a failover; waiting for
//! every connected replica does, whichever one is promoted. That is the
//! default (`all`); a replica that dies stops being waited for, so a failover
//! or a lost replica does not stop ingest. A number instead (`--wait-replicas
//! 2`) is a floor: writes block, visibly, while fewer replicas are connected.
//!
//! When `WAIT` times out, the writer writes the whole batch again and waits
//! again (see [`crate::write`]), until the replicas confirm it or shutdown
//! abandons the batch; its offsets are never stored before.

use std::time::Duration;

use shard_router::Store;

use crate::config::WaitReplicas;

/// The replica acknowledgement policy of a writer.
#[derive(Debug, Clone)]
pub struct ReplicaAck {
    policy: WaitReplicas,
    /// Longest `WAIT`.
    pub timeout: Duration,
    /// A connection that never writes, so `WAIT 0` on it counts the replicas connected now.
    probe: Store,
}

impl ReplicaAck {
    /// The policy, with `probe` (a connection without writes) to count replicas.
    pub fn new(policy: WaitReplicas, timeout: Duration, probe: Store) -> Self {
        Self { policy, timeout, probe }
    }

    /// How many replicas the next batch must reach.
    ///
    /// # Errors
    /// When the primary does not answer (the caller retries the batch).
    pub async fn required(&self) -> Result<u32, shard_router::Error> {
        match self.policy {
            WaitReplicas::Count(n) => Ok(n),
            // `WAIT 0` returns at once with the replicas whose acknowledged offset reaches this
            // connection's last write: with no writes, every connected replica (on a cluster,
            // the fewest of any primary).
            WaitReplicas::All => self.probe.wait_for_replicas(0, Duration::from_millis(1)).await,
        }
    }
}
