//! Noticing a Redis that lost its data ([`leaderboard_store::marker::epoch`]), so the api
//! never serves a wiped or half-wiped store as the truth.
//!
//! The api reads the store's epoch at start and every `--loss-check`. The
//! store is *lost* while the epoch it knew is missing or replaced by one that
//! no recovery made, and also when there is no epoch at all (a store that no
//! ingest worker initialised, or one wiped before this api first saw it).
//! While lost, every read route answers 503 `store_lost` (cached top-N pages
//! included), `/readyz` fails with `store_intact: false` and `api_store_lost`
//! is 1. A recovery's epoch (`lb-admin restore`, `rebuild`, `epoch adopt`)
//! ends it; the top-N cache is then refilled from the recovered store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leaderboard_store::Store;
use leaderboard_store::marker::epoch::{self, Known, Verdict};
use tokio_util::sync::CancellationToken;

/// The epoch this api knows and whether the store is lost.
#[derive(Debug)]
pub struct StoreEpoch {
    store: Store,
    known: Known,
    lost: AtomicBool,
}

impl StoreEpoch {
    /// Watches the epoch of `store`; lost until the first [`StoreEpoch::check`] finds one.
    pub fn new(store: Store) -> Self {
        // Any intact epoch is taken first: this api may have started before ingest set the store up.
        Self { store, known: Known::new(None, true), lost: AtomicBool::new(true) }
    }

    /// Whether the store is lost, as of the last check.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Reads the epoch and judges it; returns whether the store was recovered
    /// by this check (cached answers must then be dropped).
    ///
    /// # Errors
    /// When Redis does not answer: the last verdict stays.
    pub async fn check(&self) -> leaderboard_store::Result<bool> {
        let now = epoch::read(&self.store).await?;
        let first = !self.known.is_known();
        let verdict = self.known.judge(&now);
        let was_lost = self.lost.load(Ordering::Relaxed);
        let lost = verdict == Verdict::Lost;
        if let Verdict::Recovered(e) = verdict
            && !first
        {
            tracing::info!(epoch = %e.id, origin = ?e.origin, "the store was recovered; serving it");
        }
        if lost && !was_lost {
            tracing::error!("the store lost its data (its epoch is gone or changed): reads answer 503 until recovery");
        }
        self.lost.store(lost, Ordering::Relaxed);
        metrics::gauge!("api_store_lost").set(if lost { 1.0 } else { 0.0 });
        Ok(was_lost && !lost)
    }

    /// Checks every `interval` until `shutdown`; `on_recovered` runs after a
    /// check that ended a loss.
    pub async fn run(&self, interval: Duration, shutdown: CancellationToken, on_recovered: impl Fn()) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => match self.check().await {
                    Ok(true) => on_recovered(),
                    Ok(false) => {}
                    Err(e) => tracing::debug!(class = e.failure().as_str(), "epoch not read this round"),
                },
            }
        }
    }
}
