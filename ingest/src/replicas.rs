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
//! `all` counts only the replicas connected *now*: a primary cut off from
//! every replica (a network blip, the moments after a failover before the
//! others re-attach) acknowledges alone, and if one of those replicas is then
//! promoted, the batches acknowledged meanwhile are gone with their offsets
//! stored. `--min-replicas` is the floor under `all`, as Kafka's
//! `min.insync.replicas` is under `acks=all`: with 1, such batches wait until a
//! replica is back.
//!
//! When `WAIT` times out, the writer writes the whole batch again and waits
//! again (see [`crate::write`]), until the replicas confirm it or shutdown
//! abandons the batch; its offsets are never stored before.

use std::time::Duration;

use leaderboard_store::Store;

use crate::config::WaitReplicas;

/// The replica acknowledgement policy of a writer.
#[derive(Debug, Clone)]
pub struct ReplicaAck {
    policy: WaitReplicas,
    /// The floor under what `policy` counts (`--min-replicas`).
    min: u32,
    /// Longest `WAIT`.
    pub timeout: Duration,
    /// A connection that never writes, so `WAIT 0` on it counts the replicas connected now.
    probe: Store,
}

impl ReplicaAck {
    /// The policy and its floor `min`, with `probe` (a connection without writes) to count replicas.
    pub fn new(policy: WaitReplicas, min: u32, timeout: Duration, probe: Store) -> Self {
        Self { policy, min, timeout, probe }
    }

    /// How many replicas the next batch must reach.
    ///
    /// # Errors
    /// When the primary does not answer (the caller retries the batch).
    pub async fn required(&self) -> Result<u32, leaderboard_store::Error> {
        let counted = match self.policy {
            WaitReplicas::Count(n) => n,
            // `WAIT 0` returns at once with the replicas whose acknowledged offset reaches this
            // connection's last write: with no writes, every connected replica (on a cluster,
            // the fewest of any primary).
            WaitReplicas::All => self.probe.wait_for_replicas(0, Duration::from_millis(1)).await?,
        };
        Ok(counted.max(self.min))
    }
}
