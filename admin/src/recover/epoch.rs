//! The store's epoch: `epoch` shows it or adopts the store as it is, and every recovery ends by
//! installing a new one ([`install_epoch`]).

use std::time::{Duration, Instant};

use anyhow::ensure;
use leaderboard_store::Store;
use leaderboard_store::marker::applied;
use leaderboard_store::marker::epoch::{self, Origin, State};
use leaderboard_store::marker::loss;
use serde::Serialize;

use leaderboard_runtime::RedisArgs;

/// Longest wait for the replicas to confirm a new epoch.
const EPOCH_REPLICA_TIMEOUT: Duration = Duration::from_secs(10);
/// One `WAIT` of it: shorter than a Redis reply may take (`StoreOptions::response_timeout`).
const EPOCH_WAIT_STEP: Duration = Duration::from_secs(1);

/// Installs a new epoch of `origin` and returns once every replica connected now has it (`WAIT`,
/// as ingest waits for its batches): a failover right after recovery must not promote a replica
/// without it, or the store would look lost again and ingest pause once more.
pub(super) async fn install_epoch(store: &Store, redis: &RedisArgs, origin: Origin) -> anyhow::Result<()> {
    // `WAIT 0` on a connection that never wrote counts the replicas connected now.
    let probe = redis.connect().await?;
    let installed = epoch::install(store, origin).await?;
    let connected = probe.wait_for_replicas(0, Duration::from_millis(1)).await?;
    let deadline = Instant::now() + EPOCH_REPLICA_TIMEOUT;
    let mut acked = store.wait_for_replicas(connected, EPOCH_WAIT_STEP).await?;
    while acked < connected && Instant::now() < deadline {
        // Each `WAIT` covers every write of this connection so far: the epoch, again.
        acked = store.wait_for_replicas(connected, EPOCH_WAIT_STEP).await?;
    }
    ensure!(
        acked >= connected,
        "the new epoch {} reached {acked} of the {connected} connected replicas in {EPOCH_REPLICA_TIMEOUT:?}: a \
         failover now would make the store look lost; see to the replicas, then run `lb-admin epoch --adopt`",
        installed.id
    );
    Ok(())
}

/// The store's epoch, as `epoch` prints it.
#[derive(Debug, Serialize)]
pub struct EpochReport {
    /// `intact`, `missing` or `damaged`.
    pub state: &'static str,
    /// The epoch, when intact.
    pub epoch: Option<epoch::Epoch>,
    /// Why a process marked the store lost, when one did (a rollback).
    pub loss: Option<loss::Loss>,
}

/// Shows the store's epoch, or with `adopt` installs a new one (see the module
/// docs); adopting also forgets the store's applied offsets, which the store
/// as it is now no longer answers for: the next batch of each partition
/// records them again ([`leaderboard_store::marker::applied`]).
///
/// # Errors
/// When Redis fails, or the connected replicas do not confirm the new epoch in time.
pub async fn epoch_command(store: &Store, redis: &RedisArgs, adopt: bool) -> anyhow::Result<EpochReport> {
    if adopt {
        applied::forget(store).await?;
        install_epoch(store, redis, Origin::Adopt).await?;
    }
    let loss = loss::loss(store).await?;
    Ok(match epoch::read(store).await? {
        State::Intact(e) => EpochReport { state: "intact", epoch: Some(e), loss: None },
        State::Missing => EpochReport { state: "missing", epoch: None, loss },
        State::Damaged => EpochReport { state: "damaged", epoch: None, loss },
    })
}
